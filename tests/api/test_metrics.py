"""Prometheus metrics at /metrics (issue #16): requests by route template, payments, refusals by
code, the database's facts; and, under `mykey serve --workers 2`, one answer for all workers."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mykey.config import Settings
from mykey.history import log as hlog
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.web.app import create_app
from tests.builders import MAEBASHI, museum_with_resident
from tests.conftest import LOG, LOG_SIGNER, Database

MYKEY = Path(sys.executable).parent / "mykey"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_route_payments_once_and_refusals_by_code(
    database: Database, ca: SimulatorCA, cards: list[SimulatedCard], tmp_path: Path
) -> None:
    card = cards[0]
    terminal = museum_with_resident(database.uow(), card)
    hlog.make_checkpoint(database.uow(), LOG)
    ca.save(tmp_path / "ca")
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
        log_signing_key=LOG_SIGNER.key_string(),  # the key of the checkpoint above
    )
    with TestClient(create_app(settings, clock=database.clock)) as client:
        before = scrape(client.get("/metrics").text)
        assert client.get("/api/v1/municipalities").status_code == 200
        assert client.get(f"/api/v1/municipalities/{MAEBASHI}").status_code == 200
        assert client.get("/api/v1/municipalities/999999").status_code in (404, 422)
        challenge = client.post("/api/v1/card/challenges").json()
        signed = card.proof(challenge["challenge_id"], base64.b64decode(challenge["nonce"]))
        pay = {"card_proof": signed, "municipality": MAEBASHI, "points": 100, "key": "m-1"}
        headers = {"Authorization": f"Bearer {terminal}"}
        for _ in range(2):  # the second is a replay: one payment
            paid = client.post("/api/v1/terminal/payments", json=pay, headers=headers)
            assert paid.is_success, paid.text
        refused = client.post("/api/v1/terminal/payments", json={**pay, "key": "m-2", "points": 0})
        answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    after = scrape(answer.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    listed = {"channel": "public", "route": "/api/v1/municipalities", "method": "GET"}
    assert delta("mykey_http_requests_total", **listed, status="200") == 1
    one = {"channel": "public", "route": "/api/v1/municipalities/{code}", "method": "GET"}
    assert delta("mykey_http_requests_total", **one, status="200") == 1  # the template, not 102016
    assert delta("mykey_http_request_duration_seconds_count", **one) == 2
    assert delta("mykey_payments_total") == 1
    assert delta("mykey_refusals_total", code=refused.json()["code"]) == 1
    assert value(after, "mykey_log_size") >= 1
    assert value(after, "mykey_log_checkpoint_age_seconds") >= 0
    assert value(after, "mykey_log_oldest_queued_age_seconds") >= 0
    assert ("mykey_log_unsigned_entries", ()) in after
    assert ("mykey_jobs", (("kind", "grant_job"), ("status", "queued"))) in after
    assert ("mykey_db_connections_in_use", ()) in after


def test_two_server_processes_answer_metrics_for_both_and_log_json_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYKEY_", "PROMETHEUS_"))}
    env.update(
        MYKEY_DATABASE_URL=f"sqlite:///{tmp_path / 'fleet.db'}",
        MYKEY_DAILY_EXPIRY="false",
        MYKEY_LOG_CHECKPOINT_SECONDS="0",
        MYKEY_LOG_FORMAT="json",
    )
    subprocess.run([str(MYKEY), "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    out = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(MYKEY), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=out,
        stderr=out,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = urllib.request.Request(
                    base + "/readyz", headers={"X-Request-ID": "probe-1"}
                )
                with urllib.request.urlopen(probe, timeout=5) as answer:
                    assert json.loads(answer.read())["checks"] == {
                        "database": "ok",
                        "migrations": "ok",
                        "log_signer": "ok",
                    }
                break
            except (OSError, urllib.error.HTTPError):
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.2)
        pids = set()
        for _ in range(40):  # new connections: the kernel spreads them over the processes
            with urllib.request.urlopen(base + "/healthz", timeout=10) as answer:
                pids.add(answer.read().decode().split('"pid":')[1].split(",")[0])
            urllib.request.urlopen(base + "/api/v1/municipalities", timeout=10).read()
        totals = set()
        for _ in range(6):  # whichever process answers the scrape counts all of them
            text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
            listed = {"channel": "public", "route": "/api/v1/municipalities", "method": "GET"}
            totals.add(value(scrape(text), "mykey_http_requests_total", **listed, status="200"))
    finally:
        server.terminate()
        server.wait(timeout=30)
        out.close()
    assert len(pids) == 2, (tmp_path / "serve.log").read_text()[-2000:]
    assert totals == {40.0}
    # MYKEY_LOG_FORMAT=json: every line an object, the probe's access line with its request id
    lines = [json.loads(x) for x in (tmp_path / "serve.log").read_text().splitlines() if x]
    assert all({"time", "level", "logger", "message", "request_id", "pid"} <= set(x) for x in lines)
    probes = [x for x in lines if x["logger"] == "uvicorn.access" and x["path"] == "/readyz"]
    assert probes and probes[-1]["request_id"] == "probe-1" and probes[-1]["status"] == 200
