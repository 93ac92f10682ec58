"""Chinese page templates: our zh catalogue of pygeoapi's template strings, compiled once.

pygeoapi 0.24 ships no translations; it loads ``<locale_dir>/<lang>/LC_MESSAGES/
messages.mo`` with babel. The .po lives in config/ (translations are data); the .mo is
compiled into a cache folder when the server starts.
"""

from __future__ import annotations

import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


@cache
def locale_dir() -> str:
    """A folder with compiled catalogues for every language shipped in config/locale."""
    out = Path(tempfile.mkdtemp(prefix="shikong-locale-"))
    source = resources.files("shikong.config").joinpath("locale")
    for lang in source.iterdir():
        po = lang.joinpath("LC_MESSAGES", "messages.po")
        if not po.is_file():
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang.name)
        target = out / lang.name / "LC_MESSAGES"
        target.mkdir(parents=True)
        with open(target / "messages.mo", "wb") as fh:
            write_mo(fh, catalog)
    return str(out)
