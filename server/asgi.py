"""ASGI entry point for uvicorn: ``uvicorn shikong.server.asgi:app``.

Reads ``$SHIKONG_DATA`` (data directory), ``$SHIKONG_URL`` (public base URL) and
``$SHIKONG_MQTT`` (a broker to subscribe to, e.g. mqtt://127.0.0.1:1883; none if unset).
"""

import os

from .app import create_app

app = create_app(
    os.environ.get("SHIKONG_DATA", "./data"),
    os.environ.get("SHIKONG_URL", "http://localhost:5000"),
    mqtt=os.environ.get("SHIKONG_MQTT") or None,
)
