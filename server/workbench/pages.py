"""Our HTML pages' template environments (server/templates/workbench, autoescaped), one
per language, with the zh catalogue of the other pages (``config/locale``).

Every page extends ``base.html``, whose header says who is signed in (or offers to sign
in), switches the language and loads nothing from outside the server. The language is
chosen as on the other pages (``lang=``, then ``Accept-Language``) but falls back to
Chinese: these pages are the department staff's.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import jinja2
from babel import Locale
from babel.support import NullTranslations, Translations
from shikong.catalog.departments import departments
from shikong.catalog.policy import Caller
from starlette.requests import Request

from ..i18n import locale_dir

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "workbench"
MAPLIBRE = "maplibre-gl-4.7.1"  # the version W1 vendored under server/static/vendor/
LANGUAGES = ("zh", "en")  # the first is the fallback
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
AVAILABLE = [Locale.parse(code) for code in LANGUAGES]


def page_language(request: Request) -> str:
    """``zh`` or ``en``: ``lang=``, else ``Accept-Language``, else zh (the negotiation of
    the other pages and the error pages, :func:`.error_pages.page_locale`, over our
    languages with Chinese first)."""
    from .error_pages import page_locale

    query = parse_qs(request.url.query)
    headers = {k.lower(): v for k, v in request.headers.items()}
    return page_locale(query, headers, AVAILABLE).language


def with_lang(url: str, lang: str) -> str:
    """A local URL (path and query) with ``lang=`` set to ``lang``, other parameters kept."""
    path, _, query = url.partition("?")
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "lang"]
    return f"{path}?{urlencode([*pairs, ('lang', lang)])}"


@cache
def environment(lang: str = LANGUAGES[0]) -> jinja2.Environment:
    """The environment of one language: ``{% trans %}`` and ``_()`` from the catalogue."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    translations = NullTranslations() if lang == "en" else Translations.load(locale_dir(), [lang])
    env.install_gettext_translations(translations)  # type: ignore[attr-defined]
    return env


def gettext(lang: str, message: str) -> str:
    """One catalogue string in ``lang`` (for texts the Python side writes into a page)."""
    return environment(lang).globals["gettext"](message)


def render(name: str, request: Request, caller: Caller, **context: Any) -> str:
    """A page for this caller in the request's language: ``who`` (see
    signin.caller_summary) and its ``department_name``, ``lang``, ``u(url)`` (a local
    link keeping it), ``here`` (this page's path and query) and the language switch's
    links are in every page."""
    from .signin import caller_summary

    lang = page_language(request)
    who = caller_summary(caller)
    department = departments().get(who.get("department") or "", {})
    names = (department.get("name_en"), department.get("name"))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    switch = [
        {"code": code, "name": LANGUAGE_NAMES[code], "href": with_lang(here, code)}
        for code in LANGUAGES
    ]
    return (
        environment(lang)
        .get_template(name)
        .render(
            who=who,
            department_name=names[lang == "zh"] or who.get("department"),
            u=lambda url: with_lang(url, lang),
            path=request.url.path,
            here=with_lang(here, lang),
            lang=lang,
            languages=switch,
            maplibre=MAPLIBRE,
            **context,
        )
    )
