"""`mykey log …` and `mykey audit verify` as an operator runs them, on a demo database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli.test_cli import run


def test_checkpoint_audit_and_a_tampered_amount_found_by_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "var" / "mykey.db"
    assert run(db, "migrate").returncode == 0
    assert run(db, "demo").returncode == 0
    made = run(db, "log", "checkpoint")
    assert made.returncode == 0, made.stderr
    origin, size, _root, blank, signature = made.stdout.split("\n")[:5]
    assert (origin, blank) == ("dev.mykey.invalid/history", "")
    assert signature.startswith("\u2014 dev.mykey.invalid/history ")
    # The development key went to var/, not into the repository.
    assert (tmp_path / "var" / "log" / "signing-key").exists()
    clean = run(db, "audit", "verify")
    assert clean.returncode == 0, clean.stdout
    assert f"{size} entries" in clean.stdout

    with sqlite3.connect(db) as conn:
        index, record_id = conn.execute(
            "SELECT idx, record_id FROM history_leaves WHERE kind = 'transfer'"
            " ORDER BY idx DESC LIMIT 1 OFFSET 7"
        ).fetchone()
        conn.execute("DROP TRIGGER ledger_transfers_no_update")
        conn.execute(
            "UPDATE ledger_transfers SET amount = amount + 1 WHERE id = ?",
            (record_id.replace("-", ""),),
        )
    found = run(db, "audit", "verify")
    assert found.returncode == 1
    assert f"altered index {index} transfer {record_id}" in found.stdout
    assert "the records do not hash to the signed root" in found.stdout


def test_verify_proof_and_the_offline_script(tmp_path: Path) -> None:
    db = tmp_path / "var" / "mykey.db"
    run(db, "migrate")
    run(db, "demo")
    note = run(db, "log", "checkpoint").stdout
    (tmp_path / "checkpoint.txt").write_text(note)
    key = run(db, "log", "key").stdout.strip()
    assert key.startswith("dev.mykey.invalid/history+")
    bad = {"format": "mykey-inclusion-proof/v1", "index": 0, "tree_size": 1}
    (tmp_path / "proof.json").write_text(json.dumps(bad))
    checked = run(
        db, "log", "verify-proof", str(tmp_path / "proof.json"), str(tmp_path / "checkpoint.txt")
    )
    assert checked.returncode == 1
    assert "NOT PROVEN" in checked.stdout
