"""What the audit log may say about a request without holding personal data.

The log is read by auditors who do not hold the personal-data grant (and by anyone who
can read the data directory), so personal values are masked *before* an entry is
hashed and written, with the rules the policy uses to show them elsewhere
(``410402****3075``, ``张*``). Masking happens where a value is known to be personal:

- anywhere (path, query string, item ids, notes, logged bodies): a run of 15 or more
  digits is taken for an ID number (18 digits, or 17 and ``X``; the old 15-digit form);
- a query parameter or JSON key named like a personal field of any collection
  (``?id_number=…``, ``{"owner_name": …}``): that field's rule;
- in a request about a collection with personal fields, or a search naming no
  collection: every literal of a ``filter`` (CQL2 text or JSON), every term of ``q`` and
  every word in a script other than ASCII anywhere else (``?owner=张三``, a path
  segment), since a literal compared with ``owner_name`` cannot be told from one
  compared with ``land_use`` without parsing a filter that may not parse. Dates and
  collection or item ids (``rer-parcels-v2024``) stay.

Masking is idempotent, so the readers apply it again to entries of older logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

Rule = Callable[[str | None], str | None]

# Not preceded by a digit or by "<digit>." (a decimal fraction such as a long coordinate).
ID_RUN = re.compile(r"(?<![\d])(?<!\d\.)\d{15,}[Xx]?")
MASKED_ID = re.compile(r"\d{6}\*{4}(?:[\dXx]{4})?")  # what mask_ids leaves
CATALOG_ID = re.compile(r"[a-z]{2,5}-[a-z0-9_]+(?:-v[\w.]+)?")  # nrp-landuse-v2020: no name
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ][\d:.]+(?:[Zz]|[+-]\d{2}:?\d{2})?)?")
CQL_LITERAL = re.compile(r"'(?:[^']|'')*(?:'|$)")  # an unterminated literal runs to the end
WORD = re.compile(r"[^\s'\"=<>!(),;&]+")
TERM = re.compile(r"[^\s,]+")
SEARCH_PATHS = ("/stac/search",)
CQL_JSON_KEEP = frozenset({"op", "property", "timestamp", "date"})  # names and dates
LOGGED_FIELDS = ("path", "query", "items", "note", "body")


@cache
def _rules() -> tuple[dict[str, Rule], dict[str, Rule]]:
    """The policy's mask rules and the registry's personal fields, imported on first use
    (``audit verify`` needs neither, and they pull in the catalog and geopandas)."""
    from shikong.catalog.masking import PERSONAL_FIELDS
    from shikong.catalog.policy import MASK_RULES

    return MASK_RULES, PERSONAL_FIELDS


def mask_id_number(text: str) -> str:
    return _rules()[0]["id_number"](text) or ""


def mask_name(text: str) -> str:
    return _rules()[0]["name"](text) or ""


def mask_ids(text: str) -> str:
    """Every run of 15+ digits masked as an ID number (first 6 + **** + last 4)."""

    def one(m: re.Match) -> str:
        run = m.group()
        if len(run) in (15, 18):
            return mask_id_number(run)
        return f"{run[:6]}****"  # not one ID: keep no tail that could be a birth date

    return ID_RUN.sub(one, text)


def mask_literal(text: str) -> str:
    """A value that may be personal: ID numbers by their rule, dates kept, else a name's."""
    stripped = text.strip()
    if not stripped or any(p.fullmatch(stripped) for p in (ISO_DATE, MASKED_ID, CATALOG_ID)):
        return text
    if ID_RUN.fullmatch(stripped):
        return mask_ids(stripped)
    return mask_name(mask_ids(text))


def _foreign(word: str) -> bool:
    return any(ord(c) > 127 for c in word)


class Redactor:
    """Masks the personal values of one audit entry (see the module text)."""

    def __init__(self, personal: Mapping[str, Mapping[str, str]] | None = None) -> None:
        personal = personal or {}
        mask_rules, registry_fields = _rules()
        self.collections = frozenset(personal)
        rules: dict[str, Rule] = dict(registry_fields)
        for fields in personal.values():
            for name, rule in fields.items():
                rules[name] = mask_rules[rule]
        self.fields = {name.lower(): rule for name, rule in rules.items()}
        self._id_rule = mask_rules["id_number"]

    # -- entries ------------------------------------------------------------------------
    def entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A copy of the entry with every logged request value masked."""
        personal = self._personal_context(entry)
        out = dict(entry)
        if isinstance(out.get("path"), str):
            out["path"] = self._path(out["path"], personal)
        if isinstance(out.get("query"), str):
            out["query"] = self.query(out["query"], personal)
        if isinstance(out.get("items"), list):
            out["items"] = [self._text(str(i), personal) for i in out["items"]]
        if isinstance(out.get("note"), str):
            out["note"] = mask_ids(out["note"])
        if "body" in out:
            out["body"] = self.json(out["body"], personal)
        return out

    def _personal_context(self, entry: dict[str, Any]) -> bool:
        named = {str(c) for c in entry.get("collections") or []}
        asked: set[str] = set()
        query = entry.get("query") or ""
        if "collections" in query:  # STAC search's own list; parsed only when present
            for name, value in parse_qsl(query, keep_blank_values=True):
                if name == "collections":
                    asked |= {c.strip() for c in value.split(",") if c.strip()}
        body = entry.get("body")
        if isinstance(body, dict) and isinstance(body.get("collections"), list):
            asked |= {str(c) for c in body["collections"]}
        if (named | asked) & self.collections:
            return True
        return entry.get("path") in SEARCH_PATHS and not asked  # across every collection

    # -- request parts ------------------------------------------------------------------
    @staticmethod
    def _text(text: str, personal: bool) -> str:
        """ID numbers masked; in a personal context also every word in another script
        than ASCII (a name could be one), e.g. ``?owner=张三`` or a path segment."""
        text = mask_ids(text)
        if personal:
            return WORD.sub(
                lambda m: mask_literal(m.group()) if _foreign(m.group()) else m.group(), text
            )
        return text

    def _path(self, path: str, personal: bool) -> str:
        return "/".join(self._text(part, personal) for part in path.split("/"))

    def query(self, raw: str, personal: bool) -> str:
        """The query string with personal values masked; as sent when nothing was."""
        pairs = parse_qsl(raw, keep_blank_values=True, errors="replace")
        masked = [(mask_ids(k), self._param(k, v, personal)) for k, v in pairs]
        if masked == pairs:
            return raw
        return urlencode(masked, quote_via=quote, safe="*'(),:/")

    def _param(self, name: str, value: str, personal: bool) -> str:
        key = name.lower()
        if key in self.fields:
            return self._field(key, value)
        if key == "q" and personal:
            return TERM.sub(lambda m: mask_literal(m.group()), value)
        if key == "filter" and personal:
            return self.filter(value)
        return self._text(value, personal)

    def _field(self, key: str, value: str) -> str:
        """A personal field's value by its rule; an ID rule applied to something that is
        not a whole ID number would show more than it hides, so that is masked as text."""
        rule = self.fields[key]
        if rule is self._id_rule and not ID_RUN.fullmatch(value.strip()):
            return mask_literal(value)
        return rule(mask_ids(value)) or ""

    def filter(self, text: str) -> str:
        """A CQL2 filter (text or JSON) with every literal masked."""
        if text.lstrip()[:1] in ("{", "["):
            import orjson

            try:
                return orjson.dumps(self._cql_json(orjson.loads(text))).decode()
            except orjson.JSONDecodeError:
                pass

        def literal(m: re.Match) -> str:
            inner = m.group()[1:]
            closed = inner.endswith("'") and len(inner) > 0
            inner = inner[:-1] if closed else inner
            return "'" + mask_literal(inner) + ("'" if closed else "")

        masked = CQL_LITERAL.sub(literal, text)
        # words in other scripts outside quotes: an unquoted name in a filter that failed
        # to parse (identifiers are masked too; a probe's readability is the lesser loss)
        outside = re.split(r"('(?:[^']|'')*(?:'|$))", masked)
        return "".join(
            part if part.startswith("'") else self._text(part, personal=True) for part in outside
        )

    def _cql_json(self, node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {mask_ids(str(k)): self._cql_json(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self._cql_json(v, key) for v in node]
        if isinstance(node, str):
            return mask_ids(node) if key in CQL_JSON_KEEP else mask_literal(node)
        return self._scalar(node)

    def json(self, node: Any, personal: bool, key: str | None = None) -> Any:
        """A JSON body: personal fields by their rule; the rest as :meth:`_text` does,
        with filters and ``q`` as in a query string."""
        lowered = key.lower() if key is not None else None
        if lowered is not None and lowered in self.fields:
            return self._leaves(node, lambda s: self._field(lowered, s))
        if lowered == "q" and personal:
            return self._leaves(node, lambda s: TERM.sub(lambda m: mask_literal(m.group()), s))
        if lowered == "filter" and personal:
            return self.filter(node) if isinstance(node, str) else self._cql_json(node)
        if isinstance(node, dict):
            return {mask_ids(str(k)): self.json(v, personal, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.json(v, personal) for v in node]
        if isinstance(node, str):
            return self._text(node, personal)
        return self._scalar(node)

    def _leaves(self, node: Any, mask: Callable[[str], str]) -> Any:
        if isinstance(node, dict):
            return {mask_ids(str(k)): self._leaves(v, mask) for k, v in node.items()}
        if isinstance(node, list):
            return [self._leaves(v, mask) for v in node]
        if node is None or isinstance(node, bool):
            return node
        return mask(str(node))  # a value of any type is masked as its text

    @staticmethod
    def _scalar(node: Any) -> Any:
        if isinstance(node, int) and not isinstance(node, bool):
            text = str(node)
            masked = mask_ids(text)
            return node if masked == text else masked
        return node
