"""``python -m shikong.server.cli …``: the `shikong` command (``demo run`` starts its
server this way)."""

from . import main

main()
