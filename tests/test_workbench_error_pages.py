"""Error pages for browsers follow the page's language (issue 20, item 4): a page asked
for with ``?lang=zh`` (or a browser's ``Accept-Language: zh``) that ends in 404, 400, 403
or 500 is a Chinese page in the site's frame, with none of a list of English interface
strings; in English with ``lang=en``; API clients keep the problem JSON.

Over HTTP against ``shikong serve`` on the demo city (404, 400 and the two 403s: a
sign-in form posted from another site and a session's write without its CSRF token); the
500 through the middleware itself, around an application that fails (the server has no
route that fails on purpose).
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from shikong.server.identity import KeyStore

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
# the interface strings an English error page would show (our page, pygeoapi's exception
# page and the frame's navigation)
ENGLISH_UI = [
    "Exception",
    "Page not found",
    "Not found",
    "Bad request",
    "Not allowed",
    "Forbidden",
    "Server error",
    "Internal",
    "Something went wrong",
    "Technical details",
    "Back to the home page",
    "Open the workbench",
    "Sign in",
    "sign in",
    "Home",
    "Collections",
    "Processes",
    "Workbench",
    "Powered by",
    "not visible to you",
    "Status",
]
# status → the Chinese title the page must show
ZH_TITLES = {400: "请求有误", 403: "禁止访问", 404: "页面不存在", 500: "服务器内部错误"}


def interface_text(page: str) -> str:
    """The page's text without markup, scripts and the server's own technical description
    (a developer's sentence from the problem body, shown as is under "技术信息")."""
    page = re.sub(r'<pre class="sk-error-description">.*?</pre>', " ", page, flags=re.S)
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def assert_chinese_error_page(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-language"].startswith("zh")
    text = interface_text(answer.text)
    assert ZH_TITLES[status] in text
    shown = [s for s in ENGLISH_UI if s in text]
    assert shown == [], shown


@pytest.fixture(scope="module")
def session(server, demo_data):
    """A browser's signed-in session (its cookies), opened through the sign-in form."""
    key, _ = KeyStore(demo_data).create("nrp", "error-pages")
    with httpx.Client(base_url=server.url, headers=BROWSER) as client:
        answer = client.post(
            "/signin",
            data={"key": key, "next": "/workbench"},
            headers={"origin": server.url, "sec-fetch-site": "same-origin"},
        )
        assert answer.status_code == 303, answer.text
        yield dict(client.cookies)


def test_404_page_in_chinese(server):
    for path in ("/collections/no-such-layer?f=html&lang=zh", "/no/such/page?lang=zh"):
        answer = httpx.get(f"{server.url}{path}", headers=BROWSER)
        assert_chinese_error_page(answer, 404)
        # the anonymous caller's sign-in hint, in Chinese only, with a sign-in link
        assert "请登录" in answer.text
        assert re.search(r'href="[^"]*/signin\?next=[^"]*lang=zh"', answer.text)


def test_404_page_follows_accept_language(server):
    answer = httpx.get(
        f"{server.url}/collections/no-such-layer",
        headers={**BROWSER, "accept-language": "zh-CN,zh;q=0.9,en;q=0.5"},
    )
    assert_chinese_error_page(answer, 404)


def test_400_page_in_chinese(server):
    answer = httpx.get(f"{server.url}/collections/wat-rivers/items?f=html&lang=zh&limit=abc")
    assert_chinese_error_page(answer, 400)
    assert "limit" in answer.text  # the server's own description, kept for developers


def test_403_pages_in_chinese(server, session):
    forged = httpx.post(
        f"{server.url}/signin?lang=zh",
        data={"key": "sk_whatever"},
        headers={**BROWSER, "origin": "http://elsewhere.example", "sec-fetch-site": "cross-site"},
    )
    assert_chinese_error_page(forged, 403)
    # a session's write without its CSRF token
    no_token = httpx.post(f"{server.url}/signout?lang=zh", headers=BROWSER, cookies=session)
    assert_chinese_error_page(no_token, 403)


@pytest.fixture(scope="module")
def pages_around(server, demo_data):
    """``ErrorPages`` around an ASGI application of the test's own, on the demo server's
    configuration; returns a function answering a browser's GET through it."""
    from shikong.server.app import create_app
    from shikong.server.workbench.error_pages import ErrorPages

    outer = create_app(demo_data, server.url, watch=False)

    def get(app, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=ErrorPages(app, outer.state.server))

        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url=server.url) as client:
                return await client.get(path, headers=BROWSER)

        return asyncio.run(call())

    return get


def test_500_page_in_chinese(pages_around):
    from shikong.server.problems import problem

    async def failing(scope, receive, send):
        await problem(500, "NoApplicableCode", "internal error (logged)")(scope, receive, send)

    assert_chinese_error_page(pages_around(failing, "/anything?lang=zh"), 500)


def _chunked(status: int, content_type: bytes, chunks: list[bytes]):
    async def app(scope, receive, send):
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


def test_bodies_in_parts(pages_around):
    """A problem body sent in parts is read whole; a large error body (over 256 KiB) goes
    through as it came, every part of it."""
    parts = [b'{"code": "NotFound", ', b'"description": "gone"}']
    page = pages_around(_chunked(404, b"application/json", parts), "/x?lang=zh")
    assert_chinese_error_page(page, 404)
    big = [b"<html><body>", b"x" * (200 << 10), b"y" * (200 << 10), b"</body></html>"]
    answer = pages_around(_chunked(404, b"text/html", big), "/x?lang=zh")
    assert answer.status_code == 404 and answer.content == b"".join(big)


def test_english_error_page(server):
    answer = httpx.get(f"{server.url}/collections/no-such-layer?f=html&lang=en", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-language"].startswith("en")
    text = interface_text(answer.text)
    assert "Page not found" in text and "页面不存在" not in text


def test_api_clients_keep_the_problem_json(server):
    for path, headers in (
        ("/collections/no-such-layer?f=json", BROWSER),
        ("/collections/no-such-layer", {"accept": "application/json"}),
        ("/collections/wat-rivers/items?limit=abc", {}),
    ):
        answer = httpx.get(f"{server.url}{path}", headers=headers)
        assert answer.status_code in (400, 404)
        assert answer.headers["content-type"].startswith("application/json")
        assert set(answer.json()) >= {"code", "description"}


def test_own_pages_with_an_error_status_are_kept(server):
    """The sign-in form answering a wrong key (401) is the form again, not an error page."""
    answer = httpx.post(
        f"{server.url}/signin",
        data={"key": "sk_not_a_key"},
        headers={**BROWSER, "origin": server.url, "sec-fetch-site": "same-origin"},
    )
    assert answer.status_code == 401
    assert 'id="sk-key"' in answer.text and "sk-error-page" not in answer.text
