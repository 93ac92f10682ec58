"""Masking personal data: the rules, beside the access policy that names them per field.

Owner names and ID numbers of the property registry (and any field the policy lists
under ``personal_data``) leave the process masked unless the caller is granted personal
data. The rules keep what clerks compare and hide what identifies (DOMAIN.md, "Personal
data"). :func:`mask_records` masks by key at any depth, so a field added to a nested
structure later cannot slip through unmasked.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


def mask_id_number(s: str | None) -> str | None:
    """An ID number as first 6 + ``****`` + last 4 (410402196001153075 → 410402****3075).

    The county prefix and the last digits are what clerks compare; the birth date in
    between is what identifies. Values of 10 characters or fewer would be shown whole by
    that rule, so they become ``****``; None stays None and blank stays blank.
    """
    if s is None:
        return None
    text = str(s).strip()
    if not text:
        return ""
    if len(text) <= 10:
        return "****"
    return f"{text[:6]}****{text[-4:]}"


def mask_name(s: str | None) -> str | None:
    """A name with only its first character kept: 张三 → 张*, 欧阳娜娜 → 欧***.

    Rule: strip; keep the first character; replace every other non-space character by
    ``*`` (so the length, which the clerk sees on paper anyway, is kept). A compound
    surname keeps only its first character: telling 欧阳 from 欧 would need a surname
    list, and revealing less is the safe side. A one-character name becomes ``*``;
    None stays None and blank stays blank.
    """
    if s is None:
        return None
    text = str(s).strip()
    if not text:
        return ""
    if len(text) == 1:
        return "*"
    return text[0] + "".join(" " if c.isspace() else "*" for c in text[1:])


PERSONAL_FIELDS: dict[str, Callable[[str | None], str | None]] = {
    "owner_name": mask_name,
    "id_number": mask_id_number,
}


def _mask(value: Any) -> Any:
    """Mask PERSONAL_FIELDS wherever they occur, nested owners lists included."""
    if isinstance(value, dict):
        return {
            # a value of any type is masked as text: an ID read as a number is still an ID
            k: PERSONAL_FIELDS[k](None if v is None else str(v))
            if k in PERSONAL_FIELDS
            else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return copy.deepcopy(value)


def mask_records(records: list[dict], grants_personal_data: bool) -> list[dict]:
    """Copies of the records, personal fields masked unless the caller is granted them.

    Masks by key at any depth (top-level columns and ``owners`` entries alike), so a field
    added to a nested structure later cannot slip through unmasked.
    """
    if grants_personal_data:
        return copy.deepcopy(records)
    return [_mask(r) for r in records]
