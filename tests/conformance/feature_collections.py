"""A pytest plugin for ogctests: run the Features tests on the feature collections.

ogctests' item tests say "for every feature collection identified in Collections" (the
Features ATS wording) but take the first 20 entries of /collections whatever they hold,
so a coverage or a datacube (OGC API Common lists every kind of collection there) is
asked for /items. This plugin narrows its ``collections`` fixture to the entries whose
``itemType`` is ``feature``, which is what the suite's own text asks for; nothing else
of the suite or of the server's answers is changed.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    outcome = yield
    if fixturedef.argname != "collections":
        return
    found = outcome.get_result()
    if isinstance(found, list):
        found[:] = [c for c in found if c.get("itemType") == "feature"]
