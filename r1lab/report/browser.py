"""Opening a report in headless Chromium: what the browser test and the docs screenshot share.

Needs the `playwright` package (the `dev` extra) and a Chromium on the machine; Playwright's own
browser download is never used. The flags keep a headless Chromium off the network (no sync, no
component updates, no QUIC) and let it run as root, as CI does. Playwright gives every launch a
fresh temporary profile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    """The Chromium to use: $R1LAB_CHROMIUM, else the first of CHROMIUM_NAMES on the PATH."""
    chosen = os.environ.get("R1LAB_CHROMIUM")
    if chosen:
        return chosen if Path(chosen).exists() else None
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


@contextlib.contextmanager
def open_report(path: str | Path, width: int = 1280, height: int = 1000):
    """A Playwright page showing the file at `path`, and the list that collects its console errors
    and uncaught exceptions: `with open_report(p) as (page, errors): ...`."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium found: install it (apt-get install chromium) or set R1LAB_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(Path(path).resolve().as_uri())
            yield page, errors
        finally:
            browser.close()
