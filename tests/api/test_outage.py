"""A database outage (issue #13, item 13), for real, over HTTP to a real uvicorn server.

PostgreSQL: the app reaches the test database through a TCP proxy in this test, which cuts
every connection (and refuses new ones) and then lets them through again; the shared server is
never stopped. SQLite: another connection holds the write lock past the app's busy timeout.
During the outage every call answers 503 with Retry-After (problem+json for the API, an HTML
page in the visitor's language for pages) and the log has one line per failed call and no
traceback; the first call after recovery succeeds, also when nothing was called during the
outage (the pool's dead connections are not kept)."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mykey.config import Settings
from mykey.db import UnitOfWork, is_unavailable, make_engine, make_uow_factory
from mykey.demo import MUNICIPALITIES
from mykey.history.log import CheckpointJob
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.jobs.kinds import HANDLERS, SCHEDULES
from mykey.jobs.worker import Worker
from mykey.ledger import AccountKind, balance, find_account
from mykey.municipalities.registry import upsert
from mykey.web.app import create_app
from tests.builders import MAEBASHI, museum_with_resident
from tests.conftest import LOG, Database

BUSY_TIMEOUT = 0.5  # seconds the app's SQLite waits for the lock (60 by default)


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 to `target`: `cut()` closes every connection and closes new
    ones at once (a server that went away); `restore()` lets connections through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                cut = self._cut
            if cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(sockets)
        for s in sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            live = list(self._open)
        self._drop(*live)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._listener.close()


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app under a real uvicorn in a thread (its log goes to pytest's caplog)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="info")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class Http:
    """A plain HTTP client (the standard library's) of a served app."""

    def __init__(self, base: str) -> None:
        self.base = base

    def _send(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        sent = dict(headers) | ({"Content-Type": "application/json"} if data else {})
        request = urllib.request.Request(self.base + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, got, text = answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as refused:
            status, got, text = refused.code, refused.headers, refused.read().decode()
        return Answer(status, {k.lower(): v for k, v in got.items()}, text)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self._send("GET", path, headers or {}, None)

    def post(self, path: str, headers: dict[str, str] | None = None, json: Any = None) -> Answer:
        return self._send("POST", path, headers or {}, {} if json is None else json)


class Outage:
    """The database going away for the app and coming back, per engine."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.proxy: CuttableProxy | None = None
        self.app_url = database.url
        if database.kind == "postgres":
            url = make_url(database.url)
            self.proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
            self.app_url = url.set(host="127.0.0.1", port=self.proxy.port).render_as_string(
                hide_password=False
            )

    @contextmanager
    def down(self) -> Iterator[None]:
        if self.proxy is not None:
            self.proxy.cut()
            try:
                yield
            finally:
                self.proxy.restore()
            return
        # SQLite: another process's writer holds the lock longer than the app will wait
        path = make_url(self.database.url).database
        assert path
        holder = sqlite3.connect(path, isolation_level=None, timeout=5)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()


def _balance(database: Database) -> int:
    uow = database.uow()
    wallet = find_account(uow, ledger=MAEBASHI, kind=AccountKind.WALLET, owner="MY111111")
    return balance(uow, wallet.id).available


def _proof(http: Http, card: SimulatedCard) -> dict[str, str]:
    challenge = http.post("/api/v1/card/challenges")
    assert challenge.status_code == 201, challenge.text
    body = challenge.json()
    return card.proof(body["challenge_id"], base64.b64decode(body["nonce"]))


def _assert_api_503(answer: Answer) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0
    assert answer.json()["code"] == "database_unavailable"


def _assert_page_503(answer: Answer, title: str) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert int(answer.headers["retry-after"]) > 0
    assert f"<h1>{title}</h1>" in answer.text


def test_an_outage_answers_503_with_retry_after_and_the_first_call_after_it_succeeds(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = SimulatorCA.create(now=database.clock.now - timedelta(days=30))
    ca.save(tmp_path / "ca")
    card = ca.issue(now=database.clock.now - timedelta(days=1))
    terminal = museum_with_resident(database.uow(), card)
    outage = Outage(database)
    settings = Settings(
        database_url=outage.app_url,
        environment="test",
        card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
        database_busy_timeout=BUSY_TIMEOUT,
    )
    app = create_app(settings, clock=database.clock)
    caplog.set_level(logging.INFO)
    pay = {"municipality": MAEBASHI, "points": 300, "key": "pay-1", "receipt_ref": "R-1"}
    auth = {"Authorization": f"Bearer {terminal}"}
    try:
        with served(app) as base:
            http = Http(base)
            # before: the pool holds live connections, and a proof is ready for the payment
            pay["card_proof"] = _proof(http, card)  # type: ignore[assignment] -- a JSON object
            warm = http.post(
                "/api/v1/terminal/balances", headers=auth, json={"card_proof": _proof(http, card)}
            )
            assert warm.status_code == 200, warm.text
            caplog.clear()

            with outage.down():
                # a card can still be tapped (a challenge touches no database) ...
                tapped = _proof(http, card)
                balances = {"card_proof": tapped}
                failed = [  # ... but what it proves waits for the database
                    http.post("/api/v1/terminal/balances", headers=auth, json=balances),
                    http.post("/api/v1/terminal/payments", headers=auth, json=pay),
                    http.post(
                        "/api/v1/terminal/balances",
                        headers=auth | {"Accept-Language": "en"},
                        json=balances,
                    ),
                ]
                for answer in failed:
                    _assert_api_503(answer)
                assert "try again" in failed[2].json()["detail"]
                pages = [
                    http.get("/mypage/login?lang=en", headers={"Accept": "text/html"}),
                    http.get("/mypage/login?lang=ja", headers={"Accept": "text/html"}),
                ]
                _assert_page_503(pages[0], "The service is unavailable just now")
                _assert_page_503(pages[1], "ただいまご利用いただけません")
                assert 'lang="en"' in pages[0].text
                # the process is alive (a liveness probe must not restart it); with its
                # PostgreSQL away it is not ready (SQLite's readers go on beside a writer)
                alive, ready = http.get("/healthz"), http.get("/readyz")
                assert alive.status_code == 200
                if database.kind == "postgres":
                    assert alive.json()["database_state"].startswith("unreachable")
                    assert ready.status_code == 503 and ready.headers["retry-after"]
                    assert ready.json()["checks"]["database"].startswith("unreachable")

            # the first call after recovery succeeds: the payment, resent with its key
            paid = http.post("/api/v1/terminal/payments", headers=auth, json=pay)
            assert paid.status_code == 201, paid.text
            assert _balance(database) == 700

            # the database goes away and comes back while nobody calls: the pool's dead
            # connections are not handed out (the first call after it succeeds)
            with outage.down():
                time.sleep(0.2)
            after_idle = http.post("/api/v1/terminal/balances", headers=auth, json=balances)
            assert after_idle.status_code == 200, after_idle.text  # the tap made in the outage
            fresh = pay | {"key": "pay-2", "card_proof": _proof(http, card)}
            assert http.post("/api/v1/terminal/payments", headers=auth, json=fresh).is_success
    finally:
        app.state.engine.dispose()
        outage.close()

    # one line per failed call, no traceback
    records = caplog.records
    assert not [r for r in records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text
    lines = [r.getMessage() for r in records if r.getMessage().startswith("database unavailable")]
    assert len(lines) == len(failed) + len(pages), lines
    assert all(r.levelno == logging.WARNING for r in records if r.name == "mykey.web")
    assert _balance(database) == 400


def test_a_sqlite_lock_past_the_busy_timeout_is_given_up_once_and_frees_the_connection(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """The retry helper does not wait the busy timeout again and again (eight tries of 60 s
    would hold a request for eight minutes), and the refused connection goes back to the
    pool."""
    path = tmp_path / "locked.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", busy_timeout=BUSY_TIMEOUT)
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    holder.execute("BEGIN IMMEDIATE")
    uow = UnitOfWork(engine)
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError) as caught:
            uow.run(lambda: uow.connection.execute(text("SELECT 1")).scalar())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    waited = time.monotonic() - started
    assert is_unavailable(caught.value)
    assert BUSY_TIMEOUT <= waited < 3 * BUSY_TIMEOUT, waited
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined] -- QueuePool
    assert uow.run(lambda: uow.connection.execute(text("SELECT 1")).scalar()) == 1
    engine.dispose()


def test_the_background_jobs_log_an_outage_in_one_line_per_round(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """What `mykey serve` runs beside the requests (a checkpoint every 10 s, the job queue)
    logged a full traceback for every round the database was away; now one line each, and
    the next round tries again."""
    demo_setup = database.uow()
    upsert(demo_setup, MUNICIPALITIES)
    outage = Outage(database)
    engine = make_engine(outage.app_url, busy_timeout=BUSY_TIMEOUT)
    factory = make_uow_factory(engine, clock=database.clock, log=LOG)
    caplog.set_level(logging.INFO)
    checkpoints = CheckpointJob(factory, LOG, seconds=0.05)
    daily = Worker(factory, HANDLERS, schedules=SCHEDULES, poll=0.05, clock=database.clock)
    try:
        with outage.down():
            checkpoints.start()
            daily.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (
                "no checkpoint: database unavailable" in caplog.text
                and "jobs: database unavailable" in caplog.text
            ):
                time.sleep(0.05)
            checkpoints.stop()
            daily.stop()
    finally:
        engine.dispose()
        outage.close()
    assert "no checkpoint: database unavailable" in caplog.text, caplog.text
    assert "jobs: database unavailable" in caplog.text, caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text
    assert all(r.levelno == logging.WARNING for r in caplog.records if "unavailable" in r.message)
