"""Free-text search for Chinese and English titles without a Chinese word segmenter.

Chinese runs are indexed as overlapping character bigrams (土地利用 → 土地 地利 利用), the
approach of Lucene's CJK analyzer: any query of two or more Chinese characters becomes a
phrase of its bigrams and finds the text that contains it. Latin words are indexed as
words and matched by prefix. SQLite's FTS5 does the rest.
"""

from __future__ import annotations

import functools
import re

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(f"[{_CJK}]+|[^\\s{_CJK}]+")
_IS_CJK = re.compile(f"[{_CJK}]")
_WORD = re.compile(r"[0-9A-Za-z]+")


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


def index_text(text: str) -> str:
    """The token stream stored in the full-text index."""
    return " ".join(filter(None, map(_word_tokens, text.split())))


@functools.lru_cache(maxsize=65536)
def _word_tokens(word: str) -> str:
    """Tokens of one whitespace-separated word; titles of a layer's versions share most
    words, so a bulk ingest tokenises each once."""
    out: list[str] = []
    for run in _RUN.findall(word):
        if _IS_CJK.match(run):
            out.extend(_bigrams(run))
        else:
            out.extend(w.lower() for w in _WORD.findall(run))
    return " ".join(out)


def match_terms(query: str) -> list[str]:
    """One FTS5 MATCH expression per query term; a document must match every one.

    Single Chinese characters cannot be found through bigrams; they are matched as a
    prefix of a bigram, which finds the character at the start of any bigram.
    """
    clauses: list[str] = []
    for run in _RUN.findall(query):
        if _IS_CJK.match(run):
            if len(run) == 1:
                clauses.append(f'"{run}"*')
            else:
                clauses.append('"' + " ".join(_bigrams(run)) + '"')
        else:
            clauses.extend(f'"{w.lower()}"*' for w in _WORD.findall(run))
    return clauses
