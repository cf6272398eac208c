"""Headless Chromium for the browser journeys: Debian's /usr/bin/chromium (or $IDP_CHROMIUM), driven by
Playwright. Playwright's own browser download is never used."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright

# How long an action or assertion may wait before it fails. A passing journey never waits this long; the
# margin is for a loaded 2-core CI machine, where one sign-in (bcrypt, a redirect chain) took over 5 s.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("IDP_CHROMIUM") or "/usr/bin/chromium",
            headless=True,
            args=CHROMIUM_ARGS,
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium):
    """``new_page(width, height, **context_options)``: a page in a fresh context (no cookies), Russian
    locale; closed after."""
    contexts = []

    def make(width: int = 1280, height: int = 800, **options):
        context = chromium.new_context(viewport={"width": width, "height": height}, locale="ru-RU", **options)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
