"""No ID number reaches the server's console log (issue 17, class 2, the log beside the audit)."""

from __future__ import annotations

import logging

from shikong.server import log_masking


def test_messages_arguments_and_tracebacks_are_masked(caplog):
    log_masking.install()
    log = logging.getLogger("pygeoapi.api.itemtypes")
    with caplog.at_level(logging.INFO):
        log.error("Bad CQL text: id_number = '%s'", "410402199001013075")
        log.info("plain %s", "12345")
        try:
            raise ValueError("no owner 41040219900101307X in 410402199001013075")
        except ValueError:
            log.exception("failed")
    text = caplog.text
    assert "199001013" not in text
    assert "410402****3075" in text and "plain 12345" in text
