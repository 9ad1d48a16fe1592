"""Trusted proxies (issue #13, item 14) through a real `mykey serve` process on both engines:
by default a client on the machine that rotates `X-Forwarded-For` is still throttled under its
own address; with MYKEY_TRUSTED_PROXIES=127.0.0.1 (a reverse proxy on the machine) the
forwarded address is the one that counts, for the API and for the sign-in page."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mykey.config import Settings
from tests.conftest import Database

MYKEY = Path(sys.executable).parent / "mykey"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(
    database: Database, cwd: Path, *args: str, background: bool = False, **env: str
) -> Iterator[tuple[str, Path]]:
    """`mykey serve ARGS` on a free port over the test's database, until the block ends: its
    address and its log. Without `background`, no daily jobs and no log checkpoints."""
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MYKEY_")}
    environ["MYKEY_DATABASE_URL"] = database.url
    if not background:
        environ |= {"MYKEY_DAILY_EXPIRY": "false", "MYKEY_LOG_CHECKPOINT_SECONDS": "0"}
    environ |= env
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(MYKEY), "serve", "--port", str(port), *args],
            env=environ,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
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
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.1)
        yield base, log
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


def api_login(base: str, mykey_id: str, forwarded_for: str) -> tuple[int, dict[str, str]]:
    """A failed resident login (a wrong password) sent as if through a proxy."""
    body = json.dumps({"mykey_id": mykey_id, "password": "not the password"}).encode()
    headers = {"Content-Type": "application/json", "X-Forwarded-For": forwarded_for}
    status, answer_headers, _ = _post(base + "/api/v1/sessions", body, headers)
    return status, answer_headers


def rotating_tries(base: str, tries: int = 6) -> list[int]:
    """Failed logins, each for another MyKey ID from another forwarded address."""
    return [api_login(base, f"MY{100000 + i}", f"203.0.113.{i + 1}")[0] for i in range(tries)]


def page_login(base: str, username: str, forwarded_for: str) -> tuple[int, dict[str, str]]:
    """A failed staff sign-in on the page, with its CSRF token, as if through a proxy."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    form = opener.open(base + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    body = urllib.parse.urlencode(
        {"csrf_token": token.group(1), "username": username, "password": "wrong"}
    ).encode()
    request = urllib.request.Request(
        base + "/login",
        data=body,
        headers={"X-Forwarded-For": forwarded_for},
        method="POST",
    )
    try:
        with opener.open(request, timeout=30) as answer:
            return int(answer.status), dict(answer.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers)


def page_statuses(base: str, names: str, addresses: list[str]) -> list[int]:
    return [page_login(base, f"{names}{i}", a)[0] for i, a in enumerate(addresses)]


def test_by_default_a_rotating_forwarded_address_does_not_escape_the_login_throttle(
    database: Database, tmp_path: Path
) -> None:
    with serving(database, tmp_path) as (base, _):
        statuses = rotating_tries(base)
        # six IDs tried once each, all from 127.0.0.1: the address is slowed after three
        assert statuses[:3] == [401, 401, 401]
        assert 429 in statuses[3:], statuses
        status, headers = api_login(base, "MY199999", "198.51.100.7")
        assert status == 429
        assert int(headers["retry-after"]) >= 1
        # the staff sign-in page: the same
        rotated = page_statuses(base, "clerk", [f"192.0.2.{i}" for i in range(1, 7)])
        assert rotated[:3] == [401, 401, 401] and 429 in rotated[3:], rotated


def test_with_the_local_proxy_trusted_the_forwarded_address_counts(
    database: Database, tmp_path: Path
) -> None:
    with serving(database, tmp_path, MYKEY_TRUSTED_PROXIES="127.0.0.1") as (base, _):
        # every try comes from another client behind the proxy: none is throttled
        assert rotating_tries(base) == [401] * 6
        # one client behind the proxy, failing again and again, is throttled by its address
        repeated = [api_login(base, f"MY{200000 + i}", "198.51.100.7") for i in range(6)]
        assert [status for status, _ in repeated[:3]] == [401, 401, 401]
        throttled = [headers for status, headers in repeated[3:] if status == 429]
        assert throttled, [status for status, _ in repeated]
        assert int(throttled[0]["retry-after"]) >= 1
        # the nearest untrusted hop counts: a client cannot prepend an address of its choice
        status, _ = api_login(base, "MY300000", "10.9.9.9, 198.51.100.7")
        assert status == 429
        # the staff sign-in page counts the same address
        rotated = page_statuses(base, "clerk", [f"192.0.2.{i}" for i in range(1, 7)])
        assert rotated == [401] * 6
        one = [page_login(base, f"teller{i}", "192.0.2.99") for i in range(6)]
        assert [status for status, _ in one[:3]] == [401, 401, 401]
        throttled = [headers for status, headers in one[3:] if status == 429]
        assert throttled, [status for status, _ in one]
        assert int(throttled[0]["retry-after"]) >= 1


def test_the_setting_takes_addresses_and_networks_only() -> None:
    settings = Settings(trusted_proxies=" 10.1.2.3/8, ::1 ,127.0.0.1")
    assert settings.trusted_proxy_list() == ["10.0.0.0/8", "::1", "127.0.0.1"]
    assert Settings().trusted_proxy_list() == []
    with pytest.raises(ValueError, match=r"proxy\.example"):
        Settings(trusted_proxies="127.0.0.1, proxy.example")


def test_a_wrong_setting_stops_serve_with_its_name_not_a_traceback(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MYKEY_")}
    environ |= {
        "MYKEY_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "MYKEY_TRUSTED_PROXIES": "127.0.0.1, nginx",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(MYKEY), "serve", "--port", str(_free_port())],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "MYKEY_TRUSTED_PROXIES: 'nginx' is not an IP address" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
