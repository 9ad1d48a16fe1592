"""`mykey serve --workers N` (issue #14) as real processes on both engines: requests are answered
by every worker process, and the background work runs in one of them (the leader), with the
defaults of `mykey serve` (daily jobs on, a checkpoint every 10 s); when the leader's process
dies, another takes the work over."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.cli.test_serve_proxies import serving
from tests.conftest import Database

MYKEY = Path(sys.executable).parent / "mykey"


def health(base: str) -> dict[str, Any]:
    request = urllib.request.Request(base + "/healthz", headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body: dict[str, Any] = json.loads(answer.read())
        return body


def processes(base: str, *, until: int, seconds: float = 30) -> dict[int, str]:
    """pid → background role, from /healthz asked on new connections until `until` distinct
    processes have answered (every worker accepts on the same socket)."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(8) as pool:
        while len(seen) < until and time.monotonic() < deadline:
            for body in pool.map(lambda _: health(base), range(16)):
                seen[body["process"]["pid"]] = body["process"]["background"]
    return seen


def test_two_workers_answer_and_the_background_work_runs_in_one(
    database: Database, tmp_path: Path
) -> None:
    with serving(database, tmp_path, "--workers", "2", background=True) as (base, log):
        seen = processes(base, until=2)
        assert len(seen) == 2, seen
        assert sorted(seen.values()) == ["leader", "standby"]
        # the daily jobs ran once, in the leader, though two processes started
        deadline = time.monotonic() + 30
        while "daily purge" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = log.read_text()
        assert text.count("background work: process") == 1, text
        assert text.count("daily expiry ") == 1, text
        (leader,) = [pid for pid, role in seen.items() if role == "leader"]
        assert f"background work: process {leader} leads it" in text

        # the leader dies: uvicorn starts a new worker, and a process takes the work over
        os.kill(leader, signal.SIGKILL)
        deadline = time.monotonic() + 60
        now: dict[int, str] = {}
        while time.monotonic() < deadline:
            now = processes(base, until=2, seconds=5)
            if "leader" in now.values() and leader not in now:
                break
            time.sleep(1)
        assert leader not in now
        assert list(now.values()).count("leader") == 1, now
