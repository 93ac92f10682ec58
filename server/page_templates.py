"""pygeoapi's HTML templates as we serve them: read from the installed pygeoapi and edited
as they load, so the repository holds our edits, never a copy of pygeoapi's pages.

Why: the pages must load nothing from outside the server (intranet, issue 20 item 1) and
stay in the caller's language (item 4). pygeoapi's templates load libraries from CDNs and
tiles from a public tile server, and write links without ``lang=``. Each edit below is a
short anchor of pygeoapi's text and our replacement. An anchor that no longer matches (a
pygeoapi upgrade) raises :class:`TemplatePatchError` naming the template and the anchor,
as does a CDN URL or a tile-server expression left after editing: a page fails loudly
instead of quietly fetching from the internet (``tests/test_page_templates.py`` loads
every template).

Order, for each pygeoapi ``.html`` template: its own :data:`EDITS` (on pygeoapi's text as
shipped), then the :data:`RULES` every page gets, then the :data:`FORBIDDEN` checks.
Our own files (``server/templates/``: the page frame ``_base.html``, the macros
``_shikong.html``, the coverage and OpenAPI pages) are found first and are not edited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
import pygeoapi

PYGEOAPI_TEMPLATES = Path(pygeoapi.__file__).resolve().parent / "templates"
OURS = Path(__file__).resolve().parent / "templates"

# Pages the server never renders through pygeoapi (its admin API is off; tiles are
# server/tiles/): they would need a vector-tile viewer from a CDN, so they are refused.
NOT_SERVED = frozenset(
    {"admin/index.html", "collections/tiles/index.html", "collections/tiles/metadata.html"}
)


class TemplatePatchError(jinja2.TemplateError):
    """A pygeoapi template no longer has the text an edit expects, or keeps a forbidden one."""

    def __init__(self, template: str, anchor: str, problem: str) -> None:
        self.template, self.anchor = template, anchor
        super().__init__(f"pygeoapi template {template}: {problem}: {anchor!r}")


Replacement = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class Edit:
    """Replace ``find`` (pygeoapi's text, or a regular expression) by ``replace``.

    ``count`` is how many times the anchor must occur (``None``: at least once). A string
    ``replace`` is inserted as written (no group references); a function gets the match."""

    find: str
    replace: Replacement
    count: int | None = 1
    regex: bool = False

    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.find if self.regex else re.escape(self.find), re.S)

    def apply(self, template: str, source: str) -> str:
        pattern = self.pattern()
        found = len(pattern.findall(source))
        if found == 0 or (self.count is not None and found != self.count):
            wanted = "at least once" if self.count is None else f"{self.count} time(s)"
            raise TemplatePatchError(template, self.find, f"anchor found {found}x, wanted {wanted}")
        replace = self.replace
        return pattern.sub(replace if callable(replace) else lambda _: replace, source)


def _sk_t(match: re.Match[str]) -> str:
    """``{{ x['title'] …`` → ``{{ sk.t(x['title']) …``: the value in the page's language."""
    return f"{{{{ sk.t({match.group(1)})"


# -- edits of one template (pygeoapi's text as shipped) ----------------------------------

_PROCESS_TEXT = r"\{\{ ?((?:p|value|data)(?:\['(?:title|description)'\]|\.(?:title|description)))"

EDITS: dict[str, list[Edit]] = {
    "landing_page.html": [
        # urlize() would write a link without lang=; the contact and licence in zh
        Edit(
            "{{ config['metadata']['identification']['terms_of_service'] | urlize() }}",
            "<a href=\"{{ config['metadata']['identification']['terms_of_service'] }}\">"
            "{{ config['metadata']['identification']['terms_of_service'] }}</a>",
        ),
        Edit(
            "{{ config['metadata']['license']['name'] or",
            "{{ sk.t(config['metadata']['license']['name']) or",
        ),
        Edit(
            "{{ config['metadata']['contact']['name'] }}",
            "{{ sk.t(config['metadata']['contact']['name']) }}",
        ),
    ],
    "collections/collection.html": [
        # the OGC API Maps overlay plugin is not vendored: the map link's image instead
        Edit(
            r"L\.imageOverlay\.ogcapi\(.*?\}\);",
            "L.imageOverlay(\"{{ link['href'] }}\", clampedBounds, {opacity: 0.7});",
            regex=True,
        ),
    ],
    "collections/items/index.html": [
        # the search form's request keeps the language
        Edit("query_string.join('&')", "query_string.concat(['lang={{ sk.lang }}']).join('&')"),
    ],
    "collections/edr/query.html": [
        Edit(
            "{% trans query_type=data.query_type %}{{ query_type }}{% endtrans %}",
            "{{ sk.t(data.query_type) }}",
        ),
        Edit("setView([40, -85], 3)", "setView([33.75, 113.2], 9)"),
        Edit(r"var baseLayers = \{.*?\.addTo\(map\)\s*\}", "{{ sk.basemap('map') }}", regex=True),
        # CoverageJSON readings as points (no CoverageJSON viewer from a CDN)
        Edit(
            r"let layerControl = .*?(?=\n\s*\{% elif data\.type == \"Feature\")",
            "{{ sk.covjson_points(data) }}",
            regex=True,
        ),
    ],
    "processes/index.html": [Edit(_PROCESS_TEXT, _sk_t, count=3, regex=True)],
    "processes/process.html": [
        Edit(_PROCESS_TEXT, _sk_t, count=8, regex=True),
        # unquoted attributes: quoted, so the link rule sees the href
        Edit(
            "title={{link.title}} type={{link.type}} rel={{link.rel}} href={{link.href}}"
            " hreflang={{link.hreflang}}",
            'title="{{ link.title }}" type="{{ link.type }}" rel="{{ link.rel }}"'
            ' href="{{ link.href }}" hreflang="{{ link.hreflang }}"',
        ),
    ],
}


# -- rules of every page ------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """An edit of every pygeoapi page, where it matches (no count: most pages lack it)."""

    name: str
    find: re.Pattern[str]
    replace: Replacement

    def apply(self, template: str, source: str) -> str:
        return self.find.sub(self.replace, source)


def _cdn_rule() -> Callable[[str], Callable[[re.Match[str]], str]]:
    """A script or style from a CDN → the macro of our vendored copy (once per page) or
    nothing (libraries of the viewers we replace); an unknown URL raises. Libraries are
    known by their package path, whatever the host."""
    libraries = [
        (r"/leaflet@[\d.]+/dist/leaflet\.(css|js)$", "{{ sk.leaflet() }}"),
        (r"/leaflet\.markercluster/dist/", "{{ sk.markercluster() }}"),
        (r"/leaflet-draw@[\d.]+/dist/", "{{ sk.leaflet_draw() }}"),
        # CoverageJSON viewer (edr/query.html: sk.covjson_points) and OGC Maps overlay
        # (collection.html: a plain image overlay): not loaded at all
        (r"/leaflet-coverage@", ""),
        (r"/npm/(c3|d3)@", ""),
        (r"/(covutils|covjson-reader)@", ""),
        (r"/leaflet-imageoverlay-ogcapi@", ""),
    ]

    def for_template(template: str) -> Callable[[re.Match[str]], str]:
        seen: set[str] = set()

        def replace(match: re.Match[str]) -> str:
            url = match.group("url")
            for pattern, macro in libraries:
                if re.search(pattern, url):
                    if macro in seen:
                        return ""
                    seen.add(macro)
                    return macro
            raise TemplatePatchError(template, url, "a CDN URL with no vendored copy")

        return replace

    return for_template


_CDN = re.compile(
    r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"(?P<url>https?://[^\"]+)\"[^>]*>(?:\s*</script>)?"
)
_cdn_for = _cdn_rule()

# a link's value: text without quotes or Jinja blocks ({{ … }}, {% … %}) — a link written
# by a script ('<a href="' + url + '">') has quotes and is left to the script
_HREF = re.compile(r"(<a\b[^<>]*?\shref=\")((?:[^\"'{]|\{\{.*?\}\}|\{%.*?%\})+)(\")", re.S)


def _keep_lang(match: re.Match[str]) -> str:
    value = match.group(2)
    if value.startswith(("#", "mailto:", "javascript:")) or "sk.u()" in value:
        return match.group(0)
    return f"{match.group(1)}{{% call sk.u() %}}{value}{{% endcall %}}{match.group(3)}"


RULES: list[Rule] = [
    Rule(  # our macros in every page
        "import",
        re.compile(r'^(\{% extends "_base\.html" %\}\n)'),
        r'\1{% import "_shikong.html" as sk with context %}\n',
    ),
    Rule(  # the basemap from SHIKONG_BASEMAP (server/workbench/basemap.py), not OSM
        "basemap",
        re.compile(
            r"map\.addLayer\(new L\.TileLayer\(\s*'\{\{ config\['server'\]\['map'\]\['url'\] \}\}'"
            r".*?\)\s*\);",
            re.S,
        ),
        "{{ sk.basemap('map') }}",
    ),
    Rule(  # every link to the server keeps the page's language
        "links",
        _HREF,
        _keep_lang,
    ),
    Rule(  # a link's title in the page's language (catalogue or {en, zh})
        "link titles",
        re.compile(r"\{\{ ?((?:link|l)(?:\['title'\]|\.title))"),
        _sk_t,
    ),
    Rule(  # English labels written without {% trans %}
        "labels",
        re.compile(r"(<(a|h[1-6]|th|label|button)\b[^<>]*>)([A-Z][A-Za-z ]*[a-z])(</\2>)"),
        r"\1{% trans %}\3{% endtrans %}\4",
    ),
    Rule(
        "label attributes",
        re.compile(r"\b(title|placeholder)=\"([A-Z][A-Za-z ]*[a-z])\""),
        r'\1="{% trans %}\2{% endtrans %}"',
    ),
    Rule(  # the page-size menu keeps the query (lang, filters), not only limit=
        "limit menu",
        re.compile(r"document\.location\.search = `limit=\$\{limit\}`;"),
        "var kept = new URLSearchParams(document.location.search);"
        " kept.set('limit', limit); kept.delete('offset');"
        " document.location.search = kept.toString();",
    ),
    Rule(  # a map popup's link keeps the language
        "popup links",
        re.compile(r"'\?f=html'"),
        "'?f=html&lang={{ sk.lang }}'",
    ),
]

# what no served page may keep after editing
FORBIDDEN = [
    re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"https?://"),
    re.compile(r"config\['server'\]\['map'\]\['url'\]"),
    re.compile(r"\{%-? trans [a-z_]+="),  # a variable as msgid: untranslatable
]


def patch(template: str, source: str) -> str:
    """pygeoapi's ``template`` source with our edits applied (raises if one does not fit)."""
    if not template.endswith(".html"):
        return source  # JSON-LD templates: data, not pages
    for edit in EDITS.get(template, []):
        source = edit.apply(template, source)
    source = _CDN.sub(_cdn_for(template), source)
    for rule in RULES:
        source = rule.apply(template, source)
    if "sk." in source and '{% import "_shikong.html" as sk' not in source:
        raise TemplatePatchError(template, '{% extends "_base.html" %}', "no place for our macros")
    for forbidden in FORBIDDEN:
        left = forbidden.search(source)
        if left:
            raise TemplatePatchError(template, left.group(0), "left after editing")
    return source


@lru_cache(maxsize=128)
def _patched(template: str, mtime: float) -> str:
    return patch(template, (PYGEOAPI_TEMPLATES / template).read_text(encoding="utf-8"))


class PatchedTemplateLoader(jinja2.BaseLoader):
    """pygeoapi's installed templates, each edited by :func:`patch` when it loads."""

    def __init__(self, folder: Path = PYGEOAPI_TEMPLATES, shadowed: Iterable[str] = ()) -> None:
        self.folder = folder
        self.refused = NOT_SERVED | frozenset(shadowed)  # ours are found first

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = self.folder / template
        if template in self.refused or ".." in Path(template).parts or not path.is_file():
            raise jinja2.TemplateNotFound(template)
        mtime = path.stat().st_mtime
        source = (
            _patched(template, mtime)
            if self.folder == PYGEOAPI_TEMPLATES
            else patch(template, path.read_text(encoding="utf-8"))
        )
        return source, str(path), lambda: path.stat().st_mtime == mtime

    def list_templates(self) -> list[str]:
        found = (p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*"))
        return sorted(t for t in found if (self.folder / t).is_file() and t not in self.refused)


def page_loader(searchpath: Iterable[str | Path] = ()) -> jinja2.BaseLoader:
    """The loader of every page: our own templates first, then pygeoapi's, patched.

    ``searchpath`` is what pygeoapi would have given its FileSystemLoader (the configured
    templates path, its own folder and ``.``); its own folder and the working directory are
    left out (a file in the working directory is no template of ours)."""
    own = [
        str(p)
        for p in searchpath
        if Path(p).resolve() not in (PYGEOAPI_TEMPLATES, Path(".").resolve())
    ]
    first = jinja2.FileSystemLoader(own or [str(OURS)])
    return jinja2.ChoiceLoader([first, PatchedTemplateLoader(shadowed=first.list_templates())])
