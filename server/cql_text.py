"""CQL2 text with the identifiers the CQL2 standard allows (Chinese field names included).

pygeofilter's CQL2-text grammar takes only ASCII property names of two or more
characters, so ``类别='二级甲等'`` and even ``a=1`` fail to parse, while the CQL2 BNF
(OGC 21-065, ``identifierStart``/``identifierPart``) admits letters of every script,
``_`` and ``:`` to start and digits, ``.`` and ``:`` after. We reuse pygeofilter's
grammar and transformer, changing only that one rule, and route pygeoapi's
``parse_cql2_text`` here (see :mod:`pygeoapi_fixes`) so Features and STAC search agree.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pygeofilter.parsers.cql2_text.parser as upstream
from lark import Lark

ASCII_ATTRIBUTE = "attribute: /[a-zA-Z][a-zA-Z_:0-9.]+/"
# A letter of any script (or _ or :), then letters, digits, _, . or : (Python's \w is Unicode).
CQL2_ATTRIBUTE = r"attribute: /(?:[^\W\d]|:)[\w.:]*/"


@cache
def _parser() -> Lark:
    folder = Path(upstream.__file__).parent
    grammar = (folder / "grammar.lark").read_text(encoding="utf-8")
    if ASCII_ATTRIBUTE not in grammar:
        raise RuntimeError("pygeofilter's CQL2 grammar has changed: review cql_text.py")
    return Lark(
        grammar.replace(ASCII_ATTRIBUTE, CQL2_ATTRIBUTE),
        parser="lalr",
        maybe_placeholders=False,
        transformer=upstream.CQLTransformer(),
        import_paths=[folder.parent],
        source_path=str(folder / "grammar.lark"),
    )


def parse(text: str):
    """A pygeofilter AST for CQL2 text (lark errors propagate, as pygeofilter's do)."""
    return _parser().parse(text)
