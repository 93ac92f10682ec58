"""Server log lines never carry an ID number, whoever wrote them.

The audit log masks personal values before it writes (server/audit_mask.py), but the
console log gets messages from pygeoapi and from our refusals, which quote what the
caller sent (``Bad CQL text: id_number = '410402…'``). Every log record the process
creates has its message, and the traceback it carries, masked with the audit log's own
rule for ID numbers (runs of 15 or more digits: first 6, ``****``, last 4). The record
factory is the one place every record passes, whichever logger or handler it goes to.
"""

from __future__ import annotations

import logging
from typing import Any

from .audit_mask import mask_ids

_installed = False


def _masked(record: logging.LogRecord) -> logging.LogRecord:
    try:
        text = record.getMessage()
    except (TypeError, ValueError):
        return record
    masked = mask_ids(text)
    if masked != text:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[1] is not None:
        trace = logging.Formatter().formatException(record.exc_info)
        masked_trace = mask_ids(trace)
        if masked_trace != trace:
            record.exc_text, record.exc_info = masked_trace, None
    return record


def install() -> None:
    """Mask ID numbers in every log record created from now on (idempotent)."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _masked(make(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True
