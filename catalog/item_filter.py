"""CQL2 filters on catalog items: SQL for the store where it can say the same, else Python.

STAC item search takes a CQL2 filter (text or JSON, parsed into a pygeofilter AST by
the server). Evaluating it in Python means reading every item the other constraints
match, bbox candidates often in their thousands, before a page of ten is cut. A store
instead puts the filter's translation into its own ``WHERE`` (:func:`to_sql`): the
comparisons, ``BETWEEN``, ``IN``, ``LIKE``, ``IS NULL`` and the
boolean operators over item properties, ``id`` and ``collection``. A filter with a part
SQL cannot say the same way (spatial, temporal or array operators, a property compared
with a property, a literal whose type the property's JSON cannot have) is evaluated in
Python on the matches of the rest of the query (:func:`search_in_python`).

Semantics: a property compares only with a literal of its own JSON type (a number with
a number, text with text in code-point order, true/false with a boolean, the date
properties of :data:`DATE_PROPS` with an instant); a missing property, or one of another
type, makes the comparison *unknown*, and an unknown comparison never matches, negated
or not (SQL's three-valued logic, as pgSTAC answers). ``IS NULL`` matches a missing
property and a JSON null. The Python path is pygeofilter's evaluator: there an ordering
comparison with a missing property fails the whole filter for that item, and ``=`` with
a missing property is false (so its negation is true): the one place the paths differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from pygeofilter import ast
from pygeofilter.backends.native.evaluate import NativeEvaluator
from shapely.geometry import shape
from shikong.spatial.errors import InputError

from .extension import Field
from .store import Query

# properties holding instants: compared as instants, not as their ISO text
DATE_PROPS = (
    "datetime",
    "start_datetime",
    "end_datetime",
    "created",
    "updated",
    Field.VALID_FROM,
    Field.VALID_TO,
)
# top-level item members a filter may name besides properties (both are text)
COLUMNS = ("id", "collection")
COMPARISONS = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}


class Untranslatable(Exception):
    """A part of a filter this dialect cannot say with the same meaning."""


class FilterError(InputError):
    """A filter the store could not evaluate on the stored values (a 400 for a caller)."""

    def __init__(self, problem: str) -> None:
        super().__init__("filter", problem)


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How one store's SQL reads an item's columns and its JSON properties.

    ``json`` is the SQL expression of the item's JSON; ``placeholder`` the driver's
    parameter marker.
    """

    name: str
    json: str
    placeholder: str

    def column(self, name: str) -> str:
        return f"i.{name}"

    def typed(self, name: str, kind: str) -> tuple[str, list[Any]]:
        """A property's value as SQL of ``kind`` (number, text, boolean, instant), NULL
        where the stored JSON is missing or of another type."""
        raise NotImplementedError

    def is_null(self, name: str) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def like(self, expr: str, nocase: bool) -> str:
        raise Untranslatable("LIKE")

    def like_pattern(self, pattern: str) -> str:
        return pattern


class PostgresDialect(Dialect):
    """``json`` here is the item's properties (the items table keeps them, ``props``)."""

    def _value(self) -> str:
        return f"({self.json}->%s)"

    def typed(self, name: str, kind: str) -> tuple[str, list[Any]]:
        v = self._value()
        if kind == "number":
            return f"(CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::numeric END)", [name] * 2
        if kind == "boolean":
            return f"(CASE WHEN jsonb_typeof({v}) = 'boolean' THEN {v}::boolean END)", [name] * 2
        text = f"({self.json}->>%s)"
        if kind == "instant":
            return (
                f"(CASE WHEN jsonb_typeof({v}) = 'string' THEN {text}::timestamptz END)",
                [name] * 2,
            )
        return (
            f"(CASE WHEN jsonb_typeof({v}) = 'string' THEN {text} END) COLLATE \"C\"",
            [name] * 2,
        )

    def is_null(self, name: str) -> tuple[str, list[Any]]:
        v = self._value()
        return f"({v} IS NULL OR jsonb_typeof({v}) = 'null')", [name] * 2

    def like(self, expr: str, nocase: bool) -> str:
        return f"{expr} {'ILIKE' if nocase else 'LIKE'} %s"


class SqliteDialect(Dialect):
    def _path(self, name: str) -> str:
        if '"' in name or "\\" in name:
            raise Untranslatable("a property name with a quote")
        return f'$.properties."{name}"'

    def typed(self, name: str, kind: str) -> tuple[str, list[Any]]:
        path = self._path(name)
        j = self.json
        if kind == "number":
            return (
                f"(CASE WHEN json_type({j}, ?) IN ('integer', 'real') "
                f"THEN json_extract({j}, ?) END)",
                [path, path],
            )
        if kind == "boolean":
            return (
                f"(CASE WHEN json_type({j}, ?) IN ('true', 'false') THEN json_extract({j}, ?) END)",
                [path, path],
            )
        if kind == "instant":  # SQLite 3.40 has no sub-second epoch of an ISO instant
            raise Untranslatable("instants in SQLite")
        return (
            f"(CASE WHEN json_type({j}, ?) = 'text' THEN json_extract({j}, ?) END)",
            [path, path],
        )

    def like(self, expr: str, nocase: bool) -> str:
        if nocase:  # SQLite folds ASCII only: CASEI of Chinese or Greek text is not that
            raise Untranslatable("case-insensitive LIKE in SQLite")
        return f"{expr} GLOB ?"  # the pattern: see like_pattern

    def like_pattern(self, pattern: str) -> str:
        """A CQL2 LIKE pattern as a GLOB (case-sensitive, as CQL2's LIKE is)."""
        out, escaped = [], False
        for ch in pattern:
            if escaped:
                out.append(f"[{ch}]" if ch in "*?[" else ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch))
        return "".join(out)

    def is_null(self, name: str) -> tuple[str, list[Any]]:
        path = self._path(name)
        return f"(json_type({self.json}, ?) IS NULL OR json_type({self.json}, ?) = 'null')", [
            path,
            path,
        ]


POSTGRES = PostgresDialect("postgresql", "i.props", "%s")
# the SQLite index keeps the item's JSON as bytes: read as text (a BLOB is no JSON there)
SQLITE = SqliteDialect("sqlite", "CAST(i.json AS TEXT)", "?")


# -- SQL ---------------------------------------------------------------------------------
def to_sql(node: Any, dialect: Dialect) -> tuple[str, list[Any]] | None:
    """The filter as a SQL condition and its arguments, or None if some part of it
    cannot be said in this dialect with the module's semantics."""
    try:
        return _sql(node, dialect)
    except Untranslatable:
        return None


def _kind(value: Any) -> str:
    """The SQL kind a literal compares as."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "instant"
    raise Untranslatable(type(value).__name__)


def _literal(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _operand(attribute: Any, kind: str, dialect: Dialect) -> tuple[str, list[Any]]:
    """The SQL of an attribute compared with literals of ``kind``."""
    if not isinstance(attribute, ast.Attribute) or not isinstance(attribute.name, str):
        raise Untranslatable("a comparison of two non-literals")
    name = attribute.name
    if name in COLUMNS:
        if kind != "text":
            raise Untranslatable(f"{name} compared with a {kind}")
        return dialect.column(name), []
    if name == "geometry":
        raise Untranslatable("geometry in a scalar comparison")
    is_date = name in DATE_PROPS
    if (kind == "instant") != is_date:  # an ISO text never equals an instant, nor is ordered
        raise Untranslatable(f"{name} compared with a {kind}")
    return dialect.typed(name, kind)


def _sql(node: Any, d: Dialect) -> tuple[str, list[Any]]:
    p = d.placeholder
    if isinstance(node, ast.And | ast.Or):
        left, la = _sql(node.lhs, d)
        right, ra = _sql(node.rhs, d)
        return f"({left} {'AND' if isinstance(node, ast.And) else 'OR'} {right})", la + ra
    if isinstance(node, ast.Not):
        inner, args = _sql(node.sub_node, d)
        return f"(NOT {inner})", args
    if type(node) in COMPARISONS:
        op = COMPARISONS[type(node)]
        lhs, rhs = node.lhs, node.rhs
        if isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            raise Untranslatable("a property compared with a property")
        if not isinstance(lhs, ast.Attribute):  # literal OP attribute: turn it round
            lhs, rhs = rhs, lhs
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        kind = _kind(rhs)
        expr, args = _operand(lhs, kind, d)
        return f"({expr} {op} {p})", [*args, _literal(rhs)]
    if isinstance(node, ast.Between):
        kind = _kind(node.low)
        if _kind(node.high) != kind:
            raise Untranslatable("BETWEEN bounds of two types")
        expr, args = _operand(node.lhs, kind, d)
        word = "NOT BETWEEN" if node.not_ else "BETWEEN"
        return f"({expr} {word} {p} AND {p})", [*args, _literal(node.low), _literal(node.high)]
    if isinstance(node, ast.In):
        values = list(node.sub_nodes)
        kinds = {_kind(v) for v in values}
        if len(kinds) != 1:
            raise Untranslatable("IN over values of several types")
        expr, args = _operand(node.lhs, kinds.pop(), d)
        marks = ", ".join([p] * len(values))
        return f"({expr} {'NOT IN' if node.not_ else 'IN'} ({marks}))", [
            *args,
            *map(_literal, values),
        ]
    if isinstance(node, ast.Like):
        # CQL2's LIKE is SQL's: % any run, _ one character, \\ escapes (pygeofilter's
        # CQL2 parsers label the single-character wildcard '.', but the pattern is CQL2's)
        if (node.wildcard, node.escapechar) != ("%", "\\") or node.singlechar not in "._":
            raise Untranslatable("LIKE with other wildcards")
        if not isinstance(node.pattern, str):
            raise Untranslatable("LIKE on a non-text pattern")
        expr, args = _operand(node.lhs, "text", d)
        sql = d.like(expr, node.nocase)
        return (f"(NOT {sql})" if node.not_ else f"({sql})"), [
            *args,
            d.like_pattern(node.pattern),
        ]
    if isinstance(node, ast.IsNull):
        attribute = node.lhs
        if not isinstance(attribute, ast.Attribute) or not isinstance(attribute.name, str):
            raise Untranslatable("IS NULL of a non-property")
        if attribute.name in COLUMNS:
            return ("(1 = 1)" if node.not_ else "(1 = 0)"), []
        sql, args = d.is_null(attribute.name)
        return (f"(NOT {sql})" if node.not_ else sql), args
    if isinstance(node, ast.Include):
        return ("(1 = 0)" if node.not_ else "(1 = 1)"), []
    raise Untranslatable(type(node).__name__)


# -- Python ------------------------------------------------------------------------------
_EVALUATORS: dict[int, Callable[[Any], Any]] = {}


def _attribute_names(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Attribute) and isinstance(current.name, str):
            yield current.name
        stack.extend(getattr(current, "get_sub_nodes", lambda: [])() or [])


def matches(node: Any, item: dict[str, Any]) -> bool:
    """Evaluate a filter on one item in Python (properties by name; id, collection and
    geometry): the path of filters :func:`to_sql` cannot translate."""
    fn = _EVALUATORS.get(id(node))
    if fn is None:
        fn = NativeEvaluator(
            attribute_map={
                "id": "id",
                "collection": "collection",
                "geometry": "geometry",
                "*": "properties.*",
            },
            use_getattr=False,
        ).evaluate(node)
        _EVALUATORS.clear()
        _EVALUATORS[id(node)] = fn
    view = dict(item)
    props = dict(item["properties"])
    for key in DATE_PROPS:
        if isinstance(props.get(key), str):
            props[key] = datetime.fromisoformat(props[key].replace("Z", "+00:00"))
    view["properties"] = props
    if item.get("geometry") and "geometry" in set(_attribute_names(node)):
        view["geometry"] = shape(item["geometry"])
    try:
        return bool(fn(view))
    except TypeError:  # comparing with a missing (None) property or another type
        return False


def search_in_python(
    search: Callable[[Query], tuple[list[dict[str, Any]], int]], query: Query
) -> tuple[list[dict[str, Any]], int]:
    """A store's search for a filter its SQL cannot hold: every match of the rest of the
    query, filtered here, then paged."""
    every, _ = search(dataclasses.replace(query, filter=None, limit=None, offset=0))
    try:
        hits = [item for item in every if matches(query.filter, item)]
    except (ValueError, ArithmeticError) as exc:
        raise FilterError(f"cannot be evaluated: {exc}") from exc
    end = None if query.limit is None else query.offset + query.limit
    return hits[query.offset : end], len(hits)
