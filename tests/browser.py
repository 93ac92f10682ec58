"""One Chromium for the page tests: Playwright driving Debian's Chromium, launched once
and shared by consecutive tests that ask for the ``browser`` fixture.

Each test still opens its own context (cookies, storage, request log), so nothing a test
does in the browser reaches the next one; only the browser process is shared, which
spares a Chromium start-up per module. The browser is closed as soon as the next test
does not need it: Playwright's sync API marks its event loop as running in the test's
thread between calls, so a browser left open would break later tests that run their own
asyncio loop (``asyncio.run``).

conftest.py imports the fixture and the hook from here.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# WebGL through SwiftShader (the workbench's MapLibre map); no background traffic, so a
# page's request log holds only what the page asked for
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _Shared:
    """The running Playwright and its Chromium, or nothing."""

    playwright: Any = None
    browser: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.browser is None or not cls.browser.is_connected():
            cls.close()
            from playwright.sync_api import sync_playwright

            cls.playwright = sync_playwright().start()
            cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        return cls.browser

    @classmethod
    def close(cls) -> None:
        if cls.browser is not None:
            try:
                cls.browser.close()
            finally:
                cls.browser = None
        if cls.playwright is not None:
            try:
                cls.playwright.stop()
            finally:
                cls.playwright = None


def _unavailable() -> str | None:
    """Why no browser can run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e .[test])"
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture
def browser():
    """The shared Chromium (a skip where there is none; a failure under
    SHIKONG_REQUIRE_SERVICES)."""
    reason = _unavailable()
    if reason:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail(f"{reason} and SHIKONG_REQUIRE_SERVICES is set")
        pytest.skip(reason)
    return _Shared.get()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    """Close the browser when the next test does not use it (or there is none)."""
    if _Shared.browser is None:
        return
    if nextitem is None or "browser" not in getattr(nextitem, "fixturenames", ()):
        _Shared.close()
