"""The operators' CLI and the server, as real processes over a real database and HTTP."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mykey.demo import DEMO_PASSWORD
from mykey.migrations import head
from tests.conftest import SHARED_DATA

MYKEY = Path(sys.executable).parent / "mykey"


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, in a working folder of its own (db is WORK/var/...)."""
    env = {**os.environ, "MYKEY_DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "200"}
    return subprocess.run(
        [str(MYKEY), *args],
        env=env,
        cwd=db.parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "var" / "mykey.db"


def test_migrate_is_idempotent_and_demo_loads_once_and_the_ledger_checks(db: Path) -> None:
    first = run(db, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"migrated from empty to {head()}" in first.stdout
    again = run(db, "migrate")
    assert f"already at revision {head()}" in again.stdout

    demo = run(db, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "Demo data loaded" in demo.stdout
    assert "already loaded" in run(db, "demo").stdout

    check = run(db, "ledger", "check")
    assert check.returncode == 0, check.stderr
    assert "Ledger check passed" in check.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_programs_and_a_grant_from_the_command_line(demo_db: Path) -> None:
    db = demo_db
    assert "健康ウォークラリー" not in run(db, "programs", "list").stdout  # names, not rules
    assert "health_walk 500" in run(db, "programs", "list").stdout
    args = (
        "grants",
        "one",
        "--municipality",
        "131164",
        "--mykey-id",
        "MY123456",
        "--activity",
        "health_walk",
        "--reason",
        "秋のラリー",
        "--key",
        "cli-1",
    )
    first = run(db, *args)
    assert first.returncode == 0, first.stderr
    assert "+500 points" in first.stdout
    assert "already granted" in run(db, *args).stdout
    limited = run(db, *args[:-1], "cli-2")
    assert limited.returncode == 1
    assert "limit_reached" in limited.stderr


def test_ledger_check_fails_and_names_a_tampered_account(demo_db: Path) -> None:
    db = demo_db
    with sqlite3.connect(db) as conn:
        account = conn.execute(
            "SELECT id FROM ledger_accounts WHERE kind = 'wallet' ORDER BY id LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = ?",
            (account,),
        )

    check = run(db, "ledger", "check")

    assert check.returncode == 1
    assert f"account {account}" in check.stderr
    assert "balance_mismatch" in check.stderr


def test_municipality_import_reports_bad_rows_and_exits_non_zero(db: Path, tmp_path: Path) -> None:
    run(db, "migrate")
    bad = tmp_path / "bad.csv"
    bad.write_text("lgcode,pref,city,citykana\n131164,東京都,豊島区,としまく\n131165,東京都,x,x\n")

    result = run(db, "municipalities", "import", str(bad))

    assert result.returncode == 1
    assert f"{bad}:3:" in result.stderr
    assert "nothing was imported" in result.stderr
    shown = run(db, "municipalities", "show", "131164")
    assert shown.returncode == 1
    assert "131164" in shown.stderr


@pytest.mark.skipif(
    not (SHARED_DATA / "localgovjp-utf8.csv").exists(), reason="shared data not present"
)
def test_municipality_import_of_the_shared_file(db: Path) -> None:
    run(db, "migrate")
    result = run(db, "municipalities", "import", str(SHARED_DATA / "localgovjp-utf8.csv"))
    assert result.returncode == 0, result.stderr
    assert "1916 new" in result.stdout
    assert "豊島区" in run(db, "municipalities", "show", "131164").stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(demo_db: Path) -> Iterator[str]:
    db = demo_db  # the demo, with the simulator CA and demo cards in WORK/var/cards
    port = free_port()
    env = {**os.environ, "MYKEY_DATABASE_URL": f"sqlite:///{db}"}
    proc = subprocess.Popen(
        [str(MYKEY), "serve", "--port", str(port)],
        env=env,
        cwd=db.parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded machine starts slowly
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


def test_a_demo_card_taps_against_the_server_and_a_revoked_one_is_refused(
    server: str, db: Path
) -> None:
    card = db.parent / "cards" / "cards" / "MY123456.json"
    assert card.exists()

    tapped = run(db, "cards", "prove", str(card), "--server", server)

    assert tapped.returncode == 0, tapped.stderr
    login = urllib.request.Request(
        server + "/api/v1/sessions",
        data=json.dumps({"mykey_id": "MY123456", "password": DEMO_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        assert json.loads(response.read())["mykey_id"] == "MY123456"
    card_key = json.loads(card.read_text())["card_key"]
    assert card_key in tapped.stdout
    assert run(db, "cards", "revoke", card_key, "--reason", "lost").returncode == 0
    refused = run(db, "cards", "prove", str(card), "--server", server)
    assert refused.returncode == 1
    assert "card_revoked" in refused.stderr


def test_cards_new_ca_and_issue_write_files(db: Path) -> None:
    folder = db.parent / "my-ca"
    assert run(db, "cards", "new-ca", "--out", str(folder)).returncode == 0
    again = run(db, "cards", "new-ca", "--out", str(folder))
    assert again.returncode == 1
    assert "exists" in again.stderr
    issued = run(db, "cards", "issue", "TEST0001", "--ca", str(folder))
    assert issued.returncode == 0, issued.stderr
    data = json.loads((folder / "cards" / "TEST0001.json").read_text())
    assert data["card_key"] in issued.stdout
    assert data["certificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_serve_answers_health_and_docs_over_real_http(server: str) -> None:
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert b'"status":"ok"' in response.read()
    with urllib.request.urlopen(server + "/docs", timeout=5) as response:
        assert b"swagger" in response.read().lower()


def test_the_demo_has_shops_streets_and_an_online_service(server: str) -> None:
    with urllib.request.urlopen(server + "/api/v1/shops?municipality=292044", timeout=5) as r:
        tenri = {shop["id"]: shop for shop in json.loads(r.read())}
    assert set(tenri) == {"tenri-honten", "tenri-shoko-kai", "tenri-furusato"}
    assert tenri["tenri-furusato"]["kind"] == "online"
    assert tenri["tenri-honten"]["street_id"] == "tenri-hondori"
    with urllib.request.urlopen(server + "/api/v1/shops", timeout=5) as r:
        kinds = {shop["kind"] for shop in json.loads(r.read())}
    assert kinds == {"shop", "museum", "hot_spring", "online"}


def test_ledger_reading_and_expiry_commands_on_the_demo(demo_db: Path) -> None:
    db = demo_db
    with sqlite3.connect(db) as conn:
        wallet = conn.execute(
            "SELECT id FROM ledger_accounts WHERE kind = 'wallet' AND owner = 'MY123456'"
            " ORDER BY id LIMIT 1"
        ).fetchone()[0]

    balance = run(db, "ledger", "balance", str(wallet))
    assert balance.returncode == 0, balance.stderr
    body = json.loads(balance.stdout)
    assert (body["kind"], body["owner"], body["available"]) == ("wallet", "MY123456", 1200)
    lots = run(db, "ledger", "lots", str(wallet))
    assert "budget" in lots.stdout and "partner" in lots.stdout
    history = run(db, "ledger", "history", str(wallet))
    assert "spend" in history.stdout and "-300" in history.stdout

    # run as of a day to come, expiry would take points still usable: refused, nothing moves
    early = run(db, "ledger", "expire", "--as-of", "2099-01-01")
    assert early.returncode == 2
    assert "day to come" in early.stderr and "まだ来ていない日" in early.stderr
    assert json.loads(run(db, "ledger", "balance", str(wallet)).stdout)["available"] == 1200
    expired = run(db, "ledger", "expire")  # as of today: the demo's points are still valid
    assert expired.returncode == 0, expired.stderr
    assert "Expired 0 lots" in expired.stdout
    assert json.loads(run(db, "ledger", "balance", str(wallet)).stdout)["available"] == 1200
    assert run(db, "ledger", "check").returncode == 0

    assert run(db, "ledger", "expire", "--as-of", "someday").returncode == 2
    missing = run(db, "ledger", "balance", "999999")
    assert missing.returncode == 1
    assert "unknown_account" in missing.stderr


def held(db: Path, who: str = "MY123456", code: str = "242012") -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT credits_posted - debits_posted FROM ledger_accounts"
            " WHERE ledger = ? AND kind = 'wallet' AND owner = ?",
            (code, who),
        ).fetchone()
    return int(row[0]) if row else 0


def test_bulk_grants_from_the_command_line(demo_db: Path) -> None:
    db = demo_db
    work = db.parent.parent
    before = held(db)  # the demo's points
    (work / "bad.csv").write_text("mykey_id\nMY123456\nNOSUCH01\nMY123456\n", encoding="utf-8")
    refused = run(
        db, "grants", "bulk", "bad.csv", "--municipality", "242012", "--points", "1000",
        "--reason", "敬老", "--report", "refused.csv",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "Nothing granted: 2 of 3 rows refused" in refused.stderr
    report = (work / "refused.csv").read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[:3] for line in report[1:]] == [
        ["3", "NOSUCH01", "unknown_mykey_id"],
        ["4", "MY123456", "duplicate_row"],
    ]

    (work / "good.csv").write_text("mykey_id\nMY123456\nA01B02C3\n", encoding="utf-8")
    args = ("grants", "bulk", "good.csv", "--municipality", "242012", "--points", "1000",
            "--reason", "敬老")  # fmt: skip
    done = run(db, *args)
    assert done.returncode == 0, done.stderr
    assert "granted 2 residents 2,000 points" in done.stdout
    again = run(db, *args)  # the same file again: the same job, nothing more granted
    assert again.returncode == 0, again.stderr
    assert "already sent" in again.stdout
    assert held(db) == before + 1000
    assert run(db, "ledger", "check").returncode == 0


def test_the_demo_month_closes_and_pays_its_shops_by_a_zengin_file(db: Path) -> None:
    run(db, "migrate")
    run(db, "demo")  # its payments are booked now, in this Tokyo month
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    month = f"{today:%Y-%m}"
    following = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    closed = run(db, "settle", "close", "--month", month, "--now", f"{following}T00:05+09:00")
    assert closed.returncode == 0, closed.stderr
    out = db.parent / "tenri.txt"
    paid = run(
        db,
        *("settle", "zengin", "--month", month, "--municipality", "292044"),
        *("--transfer-date", f"{following + timedelta(days=9)}", "--out", str(out)),
    )
    assert paid.returncode == 0, paid.stderr
    # the demo's two Tenri shops took 300 points from two residents each
    assert "2 transfers, 1,200 yen" in paid.stdout
    records = out.read_bytes().split(b"\r\n")[:-1]
    assert [r[:1] for r in records] == [b"1", b"2", b"2", b"8", b"9"]
    assert all(len(r) == 120 for r in records)
