"""`mykey coupons order` writes the print shop's CSV."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mykey.db import tokyo_date, utcnow
from tests.cli.test_cli import run


def test_coupons_order_writes_a_csv(tmp_path: Path) -> None:
    db = tmp_path / "var" / "mykey.db"
    today = tokyo_date(utcnow())
    assert run(db, "migrate").returncode == 0
    added = run(db, "partners", "add", "saison", "--name", "Saison", "--methods", "coupon_paper")
    assert added.returncode == 0, added.stderr
    agreed = run(
        db,
        "partners",
        "agree",
        "saison",
        "--from",
        str(today),
        "--rate-units",
        "1000",
        "--rate-points",
        "1000",
        "--minimum",
        "1000",
        "--step",
        "1000",
    )
    assert agreed.returncode == 0, agreed.stderr
    csv = tmp_path / "coupons.csv"
    last = str(today + timedelta(days=90))
    ordered = run(
        db,
        "coupons",
        "order",
        "--partner",
        "saison",
        "--count",
        "30",
        "--units",
        "1000",
        "--expires",
        last,
        "--out",
        str(csv),
    )
    assert ordered.returncode == 0, ordered.stderr
    lines = csv.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "serial,code,units,expires_on"
    assert len(lines) == 31 and lines[30].startswith("30,") and lines[30].endswith(f",1000,{last}")
    refused = run(
        db,
        "coupons",
        "order",
        "--partner",
        "saison",
        "--count",
        "1",
        "--units",
        "1000",
        "--delivery",
        "url",
        "--expires",
        last,
        "--out",
        str(tmp_path / "no.csv"),
    )
    assert refused.returncode == 1 and "method_not_agreed" in refused.stderr
