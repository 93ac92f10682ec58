"""Chinese text in matplotlib figures: find an installed CJK font, use it as a fallback.

matplotlib's default font (DejaVu Sans) has no Chinese glyphs, so 合规 or 永久基本农田
render as empty boxes. The compliance map and the example notebooks call this module
so their figures read in Chinese; Latin text keeps the default font and only glyphs it
lacks come from the CJK font (matplotlib's per-glyph fallback along ``font.family``).
No CJK font installed: a :class:`CJKFontMissing` warning says what to install, rather
than boxes appearing silently. Debian/Ubuntu: ``apt-get install fonts-wqy-zenhei`` (or
fonts-noto-cjk); ``.ci/run`` installs the first.
"""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path

# Simplified-Chinese faces first; the pan-CJK Noto/Source Han TTCs expose their Japanese
# face to matplotlib (face 0), which has every glyph but some Japanese letterforms.
PREFERRED = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
    "Noto Sans CJK JP",
    "Source Han Sans",
)
PROBE = "合规冲突需复核永久基本农田规划图例"  # what our figures print
NOT_GLYPHS = {"Last Resort High-Efficiency"}  # matplotlib's own: it maps every character
# to a box, the very thing to avoid
INSTALL_HINT = (
    "install a CJK font (Debian/Ubuntu: apt-get install fonts-wqy-zenhei or fonts-noto-cjk)"
)


class CJKFontMissing(UserWarning):
    """No installed font has the Chinese glyphs a figure needs."""


def covers(path: str | Path, text: str = PROBE) -> bool:
    """Whether the font file (its first face, the one matplotlib draws) has every glyph."""
    from matplotlib.ft2font import FT2Font

    try:
        charmap = FT2Font(str(path)).get_charmap()
    except (OSError, RuntimeError, ValueError):  # unreadable or not a font
        return False
    return all(ord(ch) in charmap for ch in text if not ch.isspace())


@functools.cache
def cjk_font(probe: str = PROBE) -> str | None:
    """The family name of an installed font with ``probe``'s glyphs, None when none has.

    matplotlib's font list is cached on disk and does not notice fonts installed after
    it was built, so system fonts missing from it are added to this process's list.
    """
    from matplotlib import font_manager

    manager = font_manager.fontManager
    known = {entry.fname for entry in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known and covers(path, probe):
            manager.addfont(path)
    by_family: dict[str, list[str]] = {}
    for entry in manager.ttflist:
        by_family.setdefault(entry.name, []).append(entry.fname)
    others = sorted(set(by_family) - set(PREFERRED) - NOT_GLYPHS)
    for family in [f for f in PREFERRED if f in by_family] + others:
        if any(covers(path, probe) for path in by_family[family]):
            _quiet_weight_notice(family)
            return family
    return None


def _quiet_weight_notice(family: str) -> None:
    """Drop matplotlib's "Failed to find font weight normal for <family>" log lines: a
    one-weight CJK font (WenQuanYi Zen Hei is medium, 500) is the right glyph source for
    every weight, and the notice would fill notebook outputs."""

    def keep(record: logging.LogRecord) -> bool:
        return not (
            record.msg.startswith("findfont: Failed to find font weight")
            and record.args is not None
            and family in record.args
        )

    logging.getLogger("matplotlib.font_manager").addFilter(keep)


def cjk_rc(probe: str = PROBE) -> dict[str, list[str]]:
    """rcParams that add the CJK font as the fallback after the current families (for
    ``matplotlib.rc_context``); empty, with a :class:`CJKFontMissing` warning, when
    no installed font has the glyphs."""
    import matplotlib

    family = cjk_font(probe)
    if family is None:
        warnings.warn(
            f"no installed font has Chinese glyphs ({probe[:4]}…): Chinese text in figures "
            f"will show as empty boxes; {INSTALL_HINT}",
            CJKFontMissing,
            stacklevel=2,
        )
        return {}
    families = list(matplotlib.rcParams["font.family"])
    return {"font.family": families if family in families else [*families, family]}


def use_cjk_font(probe: str = PROBE) -> str | None:
    """Configure matplotlib for Chinese text in this process (notebooks); the family
    used, or None (with a warning) when no installed font has the glyphs."""
    import matplotlib

    matplotlib.rcParams.update(cjk_rc(probe))
    return cjk_font(probe)
