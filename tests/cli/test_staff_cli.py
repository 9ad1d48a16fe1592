"""`mykey staff add` as an operator runs it: a password from a file, clear refusals."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import run


def test_staff_add_reads_the_password_file_and_refuses_bad_bindings(tmp_path: Path) -> None:
    db = tmp_path / "var" / "mykey.db"
    db.parent.mkdir()
    assert run(db, "migrate").returncode == 0
    secret = tmp_path / "password.txt"
    secret.write_text("a long password\n")

    added = run(db, "staff", "add", "council", "--role", "operator", "--password-file", str(secret))
    assert added.returncode == 0, added.stderr
    assert "council (operator, council) added" in added.stdout

    unbound = run(
        db,
        "staff",
        "add",
        "toshima",
        "--role",
        "municipality_staff",
        "--password-file",
        str(secret),
    )
    assert unbound.returncode == 1
    assert "invalid_staff_binding" in unbound.stderr
    again = run(db, "staff", "add", "council", "--role", "operator", "--password-file", str(secret))
    assert again.returncode == 1 and "username_taken" in again.stderr
