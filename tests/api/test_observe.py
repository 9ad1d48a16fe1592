"""Observing the service (issue #16): request ids through answers and logs, the JSON log line,
and /readyz (JSON lines from `mykey serve` itself: tests/api/test_metrics.py)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.history import log as hlog
from mykey.history.checkpoints import Signer
from mykey.web.app import create_app
from mykey.web.observe import JsonFormatter
from tests.conftest import LOG, LOG_SIGNER, Database

MYKEY = Path(sys.executable).parent / "mykey"


@pytest.fixture
def client(database: Database) -> TestClient:
    app = create_app(Settings(database_url=database.url, environment="test"))
    return TestClient(app)


def test_a_request_id_is_kept_or_made_and_sent_back(client: TestClient) -> None:
    given = client.get("/api/v1/municipalities", headers={"X-Request-ID": "lb-7f3a:42"})
    assert given.headers["X-Request-ID"] == "lb-7f3a:42"
    made = client.get("/api/v1/municipalities")
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.headers["X-Request-ID"] != client.get("/navi").headers["X-Request-ID"]
    for bad in ("a" * 129, "two words", "<script>"):
        answer = client.get("/api/v1/municipalities", headers={"X-Request-ID": bad})
        assert answer.headers["X-Request-ID"] != bad
        assert len(answer.headers["X-Request-ID"]) == 32
    # an answer the app refuses early has its id too (a channel over its budget)
    settings = Settings(
        database_url=client.app.state.settings.database_url,  # type: ignore[attr-defined]
        environment="test",
        channel_limits="resident=1/0.001",  # never a token: every resident request refused
    )
    with TestClient(create_app(settings)) as refusing:
        refused = refusing.get("/api/v1/me", headers={"X-Request-ID": "crowd-1"})
    assert (refused.status_code, refused.headers["X-Request-ID"]) == (503, "crowd-1")


def test_log_lines_written_while_serving_carry_the_request_id(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=database.url, environment="test", channel_limits="resident=1/0.001"
    )
    with (
        caplog.at_level(logging.WARNING, logger="mykey.web"),
        TestClient(create_app(settings)) as client,
    ):
        client.get("/api/v1/me", headers={"X-Request-ID": "complaint-0815"})
    refusal = [r for r in caplog.records if "over its budget" in r.getMessage()]
    assert [r.request_id for r in refusal] == ["complaint-0815"]  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(refusal[0]))
    assert (line["level"], line["logger"], line["request_id"]) == (
        "WARNING",
        "mykey.web",
        "complaint-0815",
    )
    assert "over its budget" in line["message"] and line["pid"] == os.getpid()


def test_json_formatter_keeps_a_traceback_and_an_access_line_s_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("mykey.web", logging.ERROR, __file__, 1, "failed", None, True)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"] and line["request_id"] == "-"
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200),
        None,
    )
    line = json.loads(JsonFormatter().format(access))
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)


def test_readyz_says_which_check_fails(database: Database, tmp_path: Path) -> None:
    hlog.make_checkpoint(database.uow(), LOG)  # the log is the test key's from now on

    def readyz(**settings: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        app = create_app(Settings(environment="test", **settings))  # type: ignore[arg-type]
        answer = TestClient(app).get("/readyz")
        app.state.engine.dispose()
        return answer.status_code, dict(answer.headers), answer.json()

    key = LOG_SIGNER.key_string()
    status, _, body = readyz(database_url=database.url, log_signing_key=key)
    assert (status, body) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "log_signer": "ok"}},
    )
    # a process started with another signing key than the log's must get no traffic
    other = Signer.generate(LOG.origin).key_string()
    status, headers, body = readyz(database_url=database.url, log_signing_key=other)
    assert (status, headers["retry-after"], body["status"]) == (503, "5", "not_ready")
    assert body["checks"]["log_signer"].startswith("log_key_mismatch: ")
    # a database not migrated yet
    status, _, body = readyz(database_url=f"sqlite:///{tmp_path / 'new.db'}", log_signing_key=key)
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"].startswith("pending: at None, code needs ")
