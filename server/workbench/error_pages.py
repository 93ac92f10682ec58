"""Error pages for browsers, in the page's language (issue 20, item 4).

An error answer is the problem JSON (``server/problems.py``) for every client; a browser
asking for a page (``f=html``, or no ``f`` and ``text/html`` in ``Accept``) used to get
that JSON, or pygeoapi's exception page, which pygeoapi renders in its default language
(English) whatever ``lang`` says. This ASGI middleware, around the gate, turns either into
our page (``templates/workbench/error.html`` in the pages' frame: navigation, who is
signed in, the language switch) in the language of ``lang=`` or ``Accept-Language``,
keeping the status and headers. Only bodies it recognises are replaced: problem JSON and
pygeoapi's exception page; any other page (the sign-in form's own errors) passes as is.

What the page says is ours, in both languages, per status; the server's own description
(an English sentence meant for developers) is kept under "technical details", closed.
The gate's sign-in hint for anonymous 404s is shown in the page's language only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from pygeoapi import l10n
from pygeoapi.util import get_choice_from_headers, render_j2_template
from shikong.catalog.policy import Caller

from .. import public_url
from ..signin_hint import HINT_EN, HINT_ZH

if TYPE_CHECKING:
    from ..app import Server

TEMPLATE = "workbench/error.html"
MAX_BODY = 256 << 10  # error bodies are small; a larger one is passed through
JSON_TYPES = ("application/json", "application/problem+json")
PYGEOAPI_EXCEPTION = re.compile(rb'<section id="exception">.*?<p>(.*?)</p>', re.S)

# What a page says for a status: (title, what it means), each {en, zh}.
MESSAGES: dict[int, tuple[dict[str, str], dict[str, str]]] = {
    400: (
        {"en": "Bad request", "zh": "请求有误"},
        {
            "en": "The request could not be used: a parameter or the data sent is wrong.",
            "zh": "无法处理该请求：参数或提交的数据有误。",
        },
    ),
    401: (
        {"en": "Sign-in refused", "zh": "身份验证失败"},
        {
            "en": "The key or token sent was not accepted. Sign in again.",
            "zh": "提交的密钥或令牌未被接受，请重新登录。",
        },
    ),
    403: (
        {"en": "Not allowed", "zh": "禁止访问"},
        {
            "en": "You may not do this. A form sent from another site, or a session that "
            "has ended, is refused.",
            "zh": "您无权执行此操作。来自其他网站的表单或已过期的会话会被拒绝。",
        },
    ),
    404: (
        {"en": "Page not found", "zh": "页面不存在"},
        {
            "en": "There is nothing here that you may see.",
            "zh": "此处没有您可以查看的内容。",
        },
    ),
    405: (
        {"en": "Method not allowed", "zh": "不支持该请求方法"},
        {"en": "This address does not take this kind of request.", "zh": "此地址不接受这种请求。"},
    ),
    413: (
        {"en": "Too large", "zh": "提交的内容过大"},
        {"en": "What was sent is over the server's limit.", "zh": "提交的内容超过服务器限制。"},
    ),
    429: (
        {"en": "Too many requests", "zh": "请求过于频繁"},
        {"en": "Wait a moment and try again.", "zh": "请稍候再试。"},
    ),
    500: (
        {"en": "Server error", "zh": "服务器内部错误"},
        {
            "en": "The server could not answer. The error is logged; try again later.",
            "zh": "服务器无法完成请求，错误已记录，请稍后再试。",
        },
    ),
}
OTHER = (
    {"en": "Something went wrong", "zh": "出错了"},
    {"en": "The server could not answer this request.", "zh": "服务器无法完成该请求。"},
)
LABELS = {
    "details": {"en": "Technical details", "zh": "技术信息"},
    "status": {"en": "Status", "zh": "状态码"},
    "signin": {"en": "Sign in", "zh": "登录"},
    "hint": {"en": HINT_EN, "zh": HINT_ZH},
    "home": {"en": "Back to the home page", "zh": "返回首页"},
    "workbench": {"en": "Open the workbench", "zh": "打开工作台"},
}


def wants_page(query: dict[str, list[str]], headers: dict[str, str]) -> bool:
    """A browser asks for a page: ``f=html``, or no ``f`` and ``text/html`` accepted."""
    f = query.get("f")
    if f:
        return f[0].lower() == "html"
    return "text/html" in headers.get("accept", "")


def page_locale(query: dict[str, list[str]], headers: dict[str, str], languages: list[str]):
    """The page's language, as the other pages choose it: ``lang=``, then
    ``Accept-Language``, then the server's first language."""
    for field, value in (
        ("lang", query.get("lang", [""])[0]),
        ("accept-language", headers.get("accept-language", "")),
    ):
        found = get_choice_from_headers({field: value}, field, all=True) if value else None
        if found:
            return l10n.best_match(found, languages)
    return l10n.best_match([], languages)


def read_error(body: bytes, content_type: str) -> tuple[str, str, bool] | None:
    """(code, description, signin hinted) of a problem body or pygeoapi's exception page;
    None for any other body (left as it is)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in JSON_TYPES:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, dict) or "description" not in doc:
            return None
        description = str(doc.get("description") or "")
        code = str(doc.get("code") or "")
    elif kind == "text/html":
        found = PYGEOAPI_EXCEPTION.search(body)
        if found is None:
            return None
        description = html.unescape(found.group(1).decode("utf-8", "replace")).strip()
        code = ""
        if b"shikong-signin-hint" in body:
            description = f"{description}. {HINT_EN}"
    else:
        return None
    hinted = HINT_EN in description or HINT_ZH in description
    for hint in (f" / {HINT_ZH}", HINT_ZH, HINT_EN):
        description = description.replace(hint, "")
    return code, description.strip().rstrip(". /") or code, hinted


def error_page_data(
    status: int, code: str, description: str, hinted: bool, path: str, lang: str
) -> dict[str, Any]:
    """What the page shows, every text in the page's language."""
    title, meaning = MESSAGES.get(status, OTHER)

    def pick(text: dict[str, str]) -> str:
        return text.get(lang) or text["en"]

    return {
        "status": status,
        "code": code,
        "title": pick(title),
        "meaning": pick(meaning),
        "description": description,
        "hint": pick(LABELS["hint"]) if hinted else None,
        "labels": {k: pick(v) for k, v in LABELS.items() if k != "hint"},
        "next": path,
        "links": [],
    }


class ErrorPages:
    """ASGI middleware: error answers to page requests become pages."""

    def __init__(self, app: Any, server: Server) -> None:
        self.app = app
        self.server = server
        self.state = getattr(app, "state", None)  # tests and tools reach the server by it

    def api(self) -> Any:
        """The public view's pygeoapi API: its page configuration and languages."""
        snapshot = self.server.publisher.snapshot
        return snapshot.view(self.server.access(Caller()), public_url.BASE_URL.get()).api

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if not wants_page(query, headers):
            await self.app(scope, receive, send)
            return
        held: dict | None = None
        parts: list[bytes] = []

        async def page_send(message: dict) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if message["status"] >= 400:
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                parts.append(message.get("body", b""))
                if message.get("more_body") and sum(map(len, parts)) <= MAX_BODY:
                    return
                start, held = held, None
                body = b"".join(parts)
                more = bool(message.get("more_body"))
                if not more:  # the whole body: a page if it is an error we know
                    start, body = self._as_page(start, body, scope, headers)
                await send(start)
                # a body over MAX_BODY goes on as it came, the rest of it after this part
                message = {"type": "http.response.body", "body": body, "more_body": more}
            await send(message)

        await self.app(scope, receive, page_send)

    def _as_page(self, start: dict, body: bytes, scope: dict, headers: dict) -> tuple[dict, bytes]:
        """The start and body to send: the page, or the answer as it was."""
        raw = start.get("headers", [])
        content_type = next(
            (v.decode("latin-1") for k, v in raw if k.lower() == b"content-type"), ""
        )
        error = read_error(body, content_type) if len(body) <= MAX_BODY else None
        if error is None or scope["method"] == "HEAD":
            return start, body
        api = self.api()
        locale = page_locale(
            parse_qs(scope.get("query_string", b"").decode("latin-1")), headers, api.locales
        )
        data = error_page_data(start["status"], *error, scope.get("path", "/"), locale.language)
        page = render_j2_template(
            api.tpl_config, api.config["server"]["templates"], TEMPLATE, data, locale
        ).encode()
        kept = [
            (k, v)
            for k, v in raw
            if k.lower() not in (b"content-type", b"content-length", b"content-language")
        ]
        kept += [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(page)).encode()),
            (b"content-language", l10n.locale2str(locale).encode()),
        ]
        return {**start, "headers": kept}, page


def middleware(app: Any, server: Server) -> ErrorPages:
    """Wrap the gate (so its refusals, too, reach a browser as pages)."""
    return ErrorPages(app, server)
