"""The partners and reserved-points commands, as an operator runs them."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import run


def test_partners_add_agree_list_key_and_an_empty_sweep(tmp_path: Path) -> None:
    db = tmp_path / "var" / "mykey.db"
    assert run(db, "migrate").returncode == 0
    added = run(db, "partners", "add", "jal", "--name", "JAL", "--methods", "id_linkage")
    assert added.returncode == 0, added.stderr
    agreed = run(
        db,
        "partners",
        "agree",
        "jal",
        "--from",
        "2099-04-01",
        "--rate-units",
        "10000",
        "--rate-points",
        "10000",
        "--minimum",
        "10000",
        "--step",
        "10000",
    )
    assert agreed.returncode == 0, agreed.stderr
    assert "10,000 units → 10,000 points" in agreed.stdout
    assert "2099-04-01" in run(db, "partners", "list").stdout
    key = run(db, "partners", "key", "jal")
    assert key.returncode == 0 and "mk_" in key.stdout
    swept = run(db, "points", "sweep-reserved")
    assert swept.returncode == 0, swept.stderr
    assert "Assigned 0 points" in swept.stdout
