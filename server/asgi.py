"""ASGI entry point for uvicorn: ``uvicorn shikong.server.asgi:app``.

Reads ``$SHIKONG_DATA`` (data directory), ``$SHIKONG_URL`` (the public base URL of links;
unset: each request's own scheme and host, ``$SHIKONG_LOCAL_URL`` when it names none),
``$SHIKONG_TRUSTED_PROXIES`` (see public_url) and ``$SHIKONG_MQTT`` (a broker to subscribe
to, e.g. mqtt://127.0.0.1:1883; none if unset).
"""

import os

from .app import create_app

app = create_app(
    os.environ.get("SHIKONG_DATA", "./data"),
    os.environ.get("SHIKONG_URL") or None,
    mqtt=os.environ.get("SHIKONG_MQTT") or None,
    local_url=os.environ.get("SHIKONG_LOCAL_URL", "http://localhost:5000"),
)
