"""Signing in from a browser: an API key typed once, or the city's OpenID Connect provider.

Either way the browser ends up with a session cookie (:mod:`.session`), never with the key
or a token: ``POST /signin`` checks the key and answers with ``Set-Cookie``;
``GET /signin/oidc`` sends the browser to the provider (authorization code with PKCE,
``state`` bound to the browser by a short HttpOnly cookie, ``nonce`` in the ID token),
and ``GET /signin/oidc/callback`` exchanges the code server to server and verifies the ID
token (the configured ``SHIKONG_JWT_*`` issuer key when it is the same issuer, else the
provider's JWKS). ``POST /signout`` (CSRF-checked by the gate) ends the session.
``GET /signin/whoami`` tells a page who is signed in.

The CSRF token travels to page scripts in the ``shikong_csrf`` cookie (readable by the
page, SameSite=Strict), so no token is ever written into HTML or a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from shikong.catalog.departments import departments
from shikong.catalog.policy import Caller
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import public_url
from ..identity import AuthError, JwtSettings, KeyStore, caller_from_claims
from ..problems import problem
from .pages import gettext, page_language, render, with_lang
from .session import (
    SessionStore,
    clear_cookie_header,
    cookie_value,
    set_cookie_header,
)

if TYPE_CHECKING:
    from ..app import Server

CSRF_COOKIE = "shikong_csrf"
STATE_COOKIE = "shikong_oidc_state"
PENDING_SECONDS = 600  # a sign-in at the provider must come back within ten minutes
DEFAULT_NEXT = "/workbench"


@dataclass(frozen=True)
class OidcSettings:
    """The city's identity provider: ``SHIKONG_OIDC_ISSUER``, ``SHIKONG_OIDC_CLIENT_ID``,
    optional ``SHIKONG_OIDC_CLIENT_SECRET`` and ``SHIKONG_OIDC_SCOPES``."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    scopes: str = "openid profile"

    @classmethod
    def from_env(cls) -> OidcSettings | None:
        issuer, client = (
            os.environ.get("SHIKONG_OIDC_ISSUER"),
            os.environ.get("SHIKONG_OIDC_CLIENT_ID"),
        )
        if not issuer:
            return None
        if not client:
            raise ValueError("SHIKONG_OIDC_ISSUER is set but SHIKONG_OIDC_CLIENT_ID is not")
        return cls(
            issuer.rstrip("/"),
            client,
            os.environ.get("SHIKONG_OIDC_CLIENT_SECRET") or None,
            os.environ.get("SHIKONG_OIDC_SCOPES") or "openid profile",
        )


class OidcClient:
    """Authorization code + PKCE against one provider; its discovery document is cached."""

    def __init__(
        self, settings: OidcSettings, jwt_settings: JwtSettings | None, sessions: SessionStore
    ) -> None:
        self.settings = settings
        self.jwt_settings = jwt_settings
        self.sessions = sessions  # holds each pending sign-in's verifier, nonce and next

    @cached_property
    def discovery(self) -> dict[str, Any]:
        url = f"{self.settings.issuer}/.well-known/openid-configuration"
        doc = httpx.get(url, timeout=10).raise_for_status().json()
        if doc.get("issuer", "").rstrip("/") != self.settings.issuer:
            raise AuthError("the provider's discovery document names another issuer")
        return doc

    def start(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """(the provider's authorization URL, the state to bind to this browser)."""
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        self.sessions.put_pending(
            state, {"verifier": verifier, "nonce": nonce, "next": next_path}, PENDING_SECONDS
        )
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
        return f"{self.discovery['authorization_endpoint']}?{urlencode(query)}", state

    def finish(self, state: str, code: str, redirect_uri: str) -> tuple[Caller, str]:
        """The caller of a completed sign-in and where it was going; AuthError if not."""
        pending = self.sessions.take_pending(state)
        if pending is None:
            raise AuthError("this sign-in was not started here or took too long; start again")
        verifier, nonce, next_path = pending["verifier"], pending["nonce"], pending["next"]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": verifier,
        }
        if self.settings.client_secret:
            form["client_secret"] = self.settings.client_secret
        answer = httpx.post(self.discovery["token_endpoint"], data=form, timeout=10)
        if answer.status_code != 200:
            raise AuthError(f"the identity provider refused the code ({answer.status_code})")
        id_token = answer.json().get("id_token")
        if not id_token:
            raise AuthError("the identity provider sent no ID token")
        claims = self.verify(id_token)
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise AuthError("the ID token's nonce is not this sign-in's")
        return caller_from_claims(claims), next_path

    def verify(self, id_token: str) -> dict[str, Any]:
        s, js = self.settings, self.jwt_settings
        if js is not None and js.issuer.rstrip("/") == s.issuer:
            key, algorithms = js.key, [js.algorithm]
        else:
            client = jwt.PyJWKClient(self.discovery["jwks_uri"])
            key, algorithms = client.get_signing_key_from_jwt(id_token).key, ["RS256"]
        try:
            return jwt.decode(
                id_token,
                key,
                algorithms=algorithms,
                issuer=s.issuer,
                audience=s.client_id,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"ID token rejected: {exc}") from None


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another host: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return value


def _secure(request: Request) -> bool:
    base = public_url.BASE_URL.get() or str(request.base_url)
    return base.startswith("https://")


def _base(request: Request) -> str:
    return (public_url.BASE_URL.get() or str(request.base_url)).rstrip("/")


def same_origin(request: Request) -> bool:
    """Whether a browser says this request comes from our own pages (no login CSRF).
    Non-browser clients send neither header and pass."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        return origin.rstrip("/") == _origin_of(_base(request))
    return origin != "null"


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def caller_summary(caller: Caller) -> dict[str, Any]:
    """What a page shows of who is signed in (no key, no token)."""
    if caller.anonymous:
        return {"signedIn": False}
    return {
        "signedIn": True,
        "user": caller.user,
        "department": caller.department,
        "departmentName": departments().get(caller.department, {}).get("name"),
        "role": caller.role,
    }


class SigninApi:
    """The sign-in pages and endpoints of one server."""

    def __init__(self, server: Server) -> None:
        root = server.catalog.paths.root
        self.keys = KeyStore(root)
        self.sessions = SessionStore(root)
        oidc = OidcSettings.from_env()
        self.oidc = OidcClient(oidc, JwtSettings.from_env(), self.sessions) if oidc else None

    def caller(self, request: Request) -> Caller:
        ctx = getattr(request.state, "shikong", None)
        return ctx.caller if ctx is not None else Caller()

    def _signed_in(self, request: Request, caller: Caller, via: str, next_path: str) -> Response:
        sid, session = self.sessions.create(caller, via)
        max_age = int(session.expires - time.time())
        response = RedirectResponse(next_path, status_code=303)
        secure = _secure(request)
        response.headers.append("set-cookie", set_cookie_header(sid, max_age, secure))
        csrf = [f"{CSRF_COOKIE}={session.csrf}", "SameSite=Strict", "Path=/", f"Max-Age={max_age}"]
        response.headers.append("set-cookie", "; ".join(csrf + (["Secure"] if secure else [])))
        response.headers["cache-control"] = "no-store"
        return response

    async def page(self, request: Request, error: str | None = None, status: int = 200):
        next_path = safe_next(request.query_params.get("next"))
        if "lang" in request.query_params and "lang=" not in next_path:
            # a language chosen on this page stays chosen where the sign-in goes
            next_path = with_lang(next_path, page_language(request))
        html = render(
            "signin.html",
            request,
            self.caller(request),
            next=next_path,
            oidc=self.oidc is not None,
            error=error,
        )
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    @staticmethod
    def failed(request: Request, what: str, why: object) -> str:
        """A sign-in failure as the page says it: ``what`` (a catalogue string) in the
        page's language, then the reason (in the catalogue for a mistyped or unknown key;
        any other as the server gives it)."""
        lang = page_language(request)
        return f"{gettext(lang, what)}{'：' if lang == 'zh' else ': '}{gettext(lang, str(why))}"

    async def signin(self, request: Request) -> Response:
        """The key form: a session for the key's caller, or the page again with why not."""
        wants_html = "text/html" in request.headers.get("accept", "")
        if not same_origin(request):
            return problem(403, "Forbidden", "sign-in is accepted from this server's own page")
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0].strip()
        next_path = safe_next((form.get("next") or [""])[0])
        try:
            if not key.startswith("sk_"):
                raise AuthError("an API key starts with sk_")
            caller = await run_in_threadpool(self.keys.lookup, key)
        except AuthError as exc:
            ctx = getattr(request.state, "shikong", None)
            if ctx is not None:
                ctx.denied, ctx.note = True, f"sign-in refused: {exc}"
            if wants_html:
                return await self.page(request, self.failed(request, "Sign-in failed", exc), 401)
            return problem(401, "Unauthorized", f"sign-in refused: {exc}")
        return self._signed_in(request, caller, "key", next_path)

    async def oidc_start(self, request: Request) -> Response:
        if self.oidc is None:
            return problem(404, "NotFound", "no identity provider is configured here")
        next_path = safe_next(request.query_params.get("next"))
        try:
            url, state = await run_in_threadpool(
                self.oidc.start, f"{_base(request)}/signin/oidc/callback", next_path
            )
        except (httpx.HTTPError, AuthError, KeyError) as exc:
            return problem(502, "BadGateway", f"the identity provider cannot be reached: {exc}")
        response = RedirectResponse(url, status_code=303)
        cookie = [f"{STATE_COOKIE}={state}", "HttpOnly", "SameSite=Lax", "Path=/signin/oidc"]
        cookie.append(f"Max-Age={PENDING_SECONDS}")
        if _secure(request):
            cookie.append("Secure")
        response.headers.append("set-cookie", "; ".join(cookie))
        return response

    async def oidc_callback(self, request: Request) -> Response:
        if self.oidc is None:
            return problem(404, "NotFound", "no identity provider is configured here")
        q = request.query_params
        if q.get("error"):
            return await self.page(
                request,
                self.failed(request, "Identity service sign-in not completed", q["error"]),
                401,
            )
        state, code = q.get("state", ""), q.get("code", "")
        bound = cookie_value({"cookie": request.headers.get("cookie", "")}, STATE_COOKIE)
        if not state or not code or bound is None or not hmac.compare_digest(state, bound):
            return problem(
                400, "InvalidParameterValue", "sign-in state missing or not this browser's"
            )
        try:
            caller, next_path = await run_in_threadpool(
                self.oidc.finish, state, code, f"{_base(request)}/signin/oidc/callback"
            )
        except AuthError as exc:
            return await self.page(
                request, self.failed(request, "Identity service sign-in failed", exc), 401
            )
        except httpx.HTTPError as exc:
            return problem(502, "BadGateway", f"the identity provider cannot be reached: {exc}")
        response = self._signed_in(request, caller, "oidc", next_path)
        response.headers.append(
            "set-cookie", f"{STATE_COOKIE}=; HttpOnly; SameSite=Lax; Path=/signin/oidc; Max-Age=0"
        )
        return response

    async def signout(self, request: Request) -> Response:
        """End the session (the gate has checked the CSRF token of a cookie caller)."""
        sid = cookie_value({"cookie": request.headers.get("cookie", "")})
        if sid:
            await run_in_threadpool(self.sessions.delete, sid)
        secure = _secure(request)
        lang = request.query_params.get("lang")  # the page's language, kept
        target = with_lang("/signin", page_language(request)) if lang else "/signin"
        response = RedirectResponse(target, status_code=303)
        response.headers.append("set-cookie", clear_cookie_header(secure))
        response.headers.append("set-cookie", f"{CSRF_COOKIE}=; SameSite=Strict; Path=/; Max-Age=0")
        response.headers["cache-control"] = "no-store"
        return response

    async def whoami(self, request: Request) -> Response:
        return JSONResponse(
            caller_summary(self.caller(request)), headers={"cache-control": "no-store"}
        )

    def routes(self) -> list[Route]:
        return [
            Route("/signin", self.page, methods=["GET"]),
            Route("/signin", self.signin, methods=["POST"]),
            Route("/signin/oidc", self.oidc_start),
            Route("/signin/oidc/callback", self.oidc_callback),
            Route("/signin/whoami", self.whoami),
            Route("/signout", self.signout, methods=["POST"]),
        ]
