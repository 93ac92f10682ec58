"""A tiny OpenID Connect provider for tests: discovery, authorize (auto-approves one
configured user), token (checks the PKCE verifier) and JWKS, signing RS256 ID tokens with
a key made here. Run on a loopback port in a thread; nothing leaves the machine."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route


@dataclass
class OidcProvider:
    port: int
    client_id: str = "shikong-test"
    user: dict = field(default_factory=lambda: {"sub": "li.wei", "department": "psb"})
    codes: dict = field(default_factory=dict)
    token_requests: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-1"

    @property
    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def id_token(self, nonce: str, **overrides) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            **self.user,
            **overrides,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    # -- endpoints ----------------------------------------------------------------------
    async def discovery(self, request: Request):
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def authorize(self, request: Request):
        q = request.query_params
        assert q["response_type"] == "code" and q["client_id"] == self.client_id
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = dict(q)
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return RedirectResponse(
            f"{q['redirect_uri']}{sep}{urlencode({'code': code, 'state': q['state']})}", 303
        )

    async def token(self, request: Request):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        self.token_requests.append(form)
        asked = self.codes.pop(form.get("code"), None)
        if asked is None or form.get("redirect_uri") != asked["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, 400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).decode().rstrip("=") != asked["code_challenge"]:
            return JSONResponse({"error": "invalid_grant", "why": "PKCE"}, 400)
        return JSONResponse(
            {"access_token": "x", "token_type": "Bearer", "id_token": self.id_token(asked["nonce"])}
        )

    async def jwks(self, request: Request):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )


class RunningProvider:
    """The provider served by uvicorn on a loopback port, in a daemon thread."""

    def __init__(self, port: int) -> None:
        self.provider = OidcProvider(port)
        config = uvicorn.Config(self.provider.app(), host="127.0.0.1", port=port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test OIDC provider did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
