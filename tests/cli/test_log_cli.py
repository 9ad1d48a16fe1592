"""`mykey log …` and `mykey audit verify` as an operator runs them, on a demo database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

from tests.cli.test_cli import MYKEY, run


def run_env(db: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`run` with more environment (say, another signing key)."""
    full = {**os.environ, "MYKEY_DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "200", **env}
    return subprocess.run(
        [str(MYKEY), *args],
        env=full,
        cwd=db.parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_checkpoint_audit_and_a_tampered_amount_found_by_the_cli(demo_db: Path) -> None:
    db = demo_db
    made = run(db, "log", "checkpoint")
    assert made.returncode == 0, made.stderr
    origin, size, _root, blank, signature = made.stdout.split("\n")[:5]
    assert (origin, blank) == ("dev.mykey.invalid/history", "")
    assert signature.startswith("\u2014 dev.mykey.invalid/history ")
    # The development key went to var/, not into the repository.
    assert (demo_db.parent / "log" / "signing-key").exists()
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


def test_verify_proof_and_the_offline_script(demo_db: Path, tmp_path: Path) -> None:
    db = demo_db
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


def test_a_wrong_key_is_refused_and_the_key_is_rotated_in_development(
    demo_db: Path, tmp_path: Path
) -> None:
    db = demo_db
    first = run(db, "log", "checkpoint").stdout.split("\n")[1]
    old_vkey = run(db, "log", "key").stdout.strip()
    made = run(db, "log", "new-key", "dev.mykey.invalid/history")
    assert made.returncode == 0
    (tmp_path / "new.key").write_text(made.stdout)
    stranger = run(db, "log", "new-key", "someone.else.invalid/log").stdout
    (tmp_path / "stranger.key").write_text(stranger)

    # Another key in the environment: every command that signs or writes refuses, exit 1.
    env = {"MYKEY_LOG_SIGNING_KEY": made.stdout.strip()}
    for args in (("log", "checkpoint"), ("serve", "--port", "1")):
        refused = run_env(db, env, *args)
        assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
        assert "log_key_mismatch" in refused.stderr and "MYKEY_LOG_SIGNING_KEY" in refused.stderr
    # A rotation to a key of another name, or to something that is no key, is refused.
    wrong = run(db, "log", "rotate-key", "--new-key", f"@{tmp_path / 'stranger.key'}")
    assert wrong.returncode == 1 and "key_rotation_refused" in wrong.stderr
    garbage = run(db, "log", "rotate-key", "--new-key", "PRIVATE+KEY+nothing")
    assert garbage.returncode == 2

    rotated = run(db, "log", "rotate-key", "--new-key", f"@{tmp_path / 'new.key'}")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert f"Key rotation 1 recorded at entry {first}" in rotated.stdout
    keys = tmp_path / "var" / "log"
    assert (keys / "signing-key").read_text().strip() == made.stdout.strip()
    assert (keys / "salt-key").stat().st_mode & 0o777 == 0o600
    assert run(db, "log", "key").stdout.strip() != old_vkey
    # The development key files now hold the new key and the log's salt key: everything works.
    grant = run(
        db, "grants", "one", "--municipality", "131164", "--mykey-id", "MY123456",
        "--reason", "after the rotation", "--key", "rot-1", "--points", "10",
    )  # fmt: skip
    assert grant.returncode == 0, grant.stderr
    after = run(db, "log", "checkpoint")
    assert after.returncode == 0 and after.stdout.split("\n")[1] == str(int(first) + 2)
    clean = run(db, "audit", "verify")
    assert clean.returncode == 0, clean.stdout
    # The previous key, now retired, is refused.
    retired = next(keys.glob("signing-key.*.retired")).read_text().strip()
    refused = run_env(db, {"MYKEY_LOG_SIGNING_KEY": retired}, "log", "checkpoint")
    assert refused.returncode == 1 and "log_key_mismatch" in refused.stderr
