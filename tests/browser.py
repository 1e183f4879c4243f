"""Headless Chromium for admin tests: Debian's /usr/bin/chromium driven by Playwright
(no browser is ever downloaded). Each test module's `page` fixture depends on its own
`site` fixture first, so no ORM call happens while the browser's event loop runs."""

from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Nothing fetched from outside: no updates, no sync, no background traffic.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"
)


@contextmanager
def open_page():
    """A fresh page in a headless Chromium that is closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
