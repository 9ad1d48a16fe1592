"""Browser tests: the real app under `mykey serve` on a free port, a temporary SQLite database
(migrated, demo loaded), and Playwright driving Debian's Chromium (never a downloaded one).

Without Chromium every browser test skips with the reason shown. One server and one browser
serve the whole session; each test gets a fresh browser context (no shared cookies).
`MYKEY_SCREENSHOTS=1` saves each audience's main page to docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MYKEY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
MYKEY = Path(sys.executable).parent / "mykey"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

if not HAVE_CHROMIUM:
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium)",
        allow_module_level=True,
    )

from axe_playwright_python.sync_playwright import Axe  # noqa: E402 -- only with Chromium
from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402 -- only with Chromium

WORK: dict[str, Path] = {}  # "dir": the served demo's working directory (for `mykey` calls)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mykey(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYKEY_DATABASE_URL": f"sqlite:///{work / 'var' / 'mykey.db'}"}
    return subprocess.run(
        [str(MYKEY), *args],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("browser")
    WORK["dir"] = work
    (work / "var").mkdir()
    for step in (("migrate",), ("demo",)):
        done = mykey(work, *step)
        assert done.returncode == 0, done.stderr
    port = _free_port()
    env = {**os.environ, "MYKEY_DATABASE_URL": f"sqlite:///{work / 'var' / 'mykey.db'}"}
    proc = subprocess.Popen(
        [str(MYKEY), "serve", "--port", str(port)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh page; after the test, Chromium's console has reported no Content-Security-Policy
    violation on any page it visited (every page's script and styles are its own files)."""
    context = browser.new_context(base_url=server, locale="ja-JP")
    opened = context.new_page()
    violations: list[str] = []
    opened.on(
        "console",
        lambda message: (
            violations.append(f"{opened.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened
    context.close()
    assert not violations, "CSP violations:\n" + "\n".join(violations)


_axe = Axe()


def assert_accessible(page: Page) -> None:
    """axe-core (WCAG 2.0/2.1 A and AA rules and best practices) finds nothing on this page."""
    results: Any = _axe.run(page)
    violations = results.response["violations"]
    assert not violations, f"{page.url}:\n{results.generate_report()}"


def screenshot(page: Page, name: str) -> None:
    """Save the page for the README, only when MYKEY_SCREENSHOTS=1 (keeps the tree clean)."""
    if os.environ.get("MYKEY_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
