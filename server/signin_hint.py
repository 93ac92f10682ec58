""" "Not visible to you: sign in" on every 404 an anonymous caller gets (issue 20, item 2).

A collection the caller may not see answers 404 exactly as a missing one, so the public
cannot learn that a restricted layer exists; but a member of staff who forgot to sign in
must not read "not found" as "the data is not there". Every 404 to an anonymous caller
therefore says, alike for hidden and missing resources, that signing in may show more.
The body is rewritten as it leaves (JSON problem bodies and HTML pages); 404 bodies are
small, larger ones are passed through untouched.
"""

from __future__ import annotations

import orjson

HINT_EN = (
    "not visible to you, or not there: sign in (a browser at /signin, or an API key: "
    "X-API-Key or Basic auth) to see your department's layers"
)
HINT_ZH = "您无权查看或不存在：请登录（浏览器访问 /signin，或使用 API 密钥）以查看本部门的图层"
MAX_BODY = 256 << 10  # a 404 page or problem body; anything larger is left alone


def hinted(body: bytes, content_type: str) -> bytes:
    """The 404 body with the sign-in hint added (JSON: to ``description``; HTML: a
    paragraph before ``</body>``); other bodies unchanged."""
    if len(body) > MAX_BODY:
        return body
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("application/json", "application/problem+json"):
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(doc, dict):
            return body
        description = str(doc.get("description") or "").rstrip(". ")
        doc["description"] = f"{description}. {HINT_EN} / {HINT_ZH}".lstrip(". ")
        return orjson.dumps(doc)
    if kind == "text/html" and b"</body>" in body:
        note = (
            '<p class="shikong-signin-hint" role="note">'
            f'{HINT_ZH} <a href="/signin">登录</a> · {HINT_EN}</p>'
        ).encode()
        head, _, tail = body.rpartition(b"</body>")
        return head + note + b"</body>" + tail
    return body
