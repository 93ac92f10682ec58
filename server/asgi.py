"""ASGI entry point for uvicorn: ``uvicorn shikong.server.asgi:app``.

Reads ``$SHIKONG_DATA`` (data directory) and ``$SHIKONG_URL`` (public base URL).
"""

import os

from .app import create_app

app = create_app(
    os.environ.get("SHIKONG_DATA", "./data"), os.environ.get("SHIKONG_URL", "http://localhost:5000")
)
