"""`mykey vouchers gift-program` and `gift-programs` as an operator runs them."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import run


def test_gift_programmes_from_the_command_line(demo_db: Path) -> None:
    db = demo_db
    args = ("vouchers", "gift-program", "maebashi-q", "--municipality", "102016")
    made = run(
        db,
        *args,
        "--name",
        "前橋Qの町商品券",
        "--denomination",
        "1000",
        "--valid-days",
        "180",
        "--max-sheets",
        "10",
    )
    assert made.returncode == 0, made.stderr
    assert "前橋Qの町商品券, 1,000 points a sheet, valid 180 days" in made.stdout
    assert "at most 10 sheets" in made.stdout
    listed = run(db, "vouchers", "gift-programs", "--municipality", "102016")
    assert listed.returncode == 0 and "maebashi-q" in listed.stdout and "1,000" in listed.stdout
    # a street that is not there, a zero denomination: a message and a non-zero exit
    bad = run(
        db,
        *args,
        "--name",
        "x",
        "--denomination",
        "1000",
        "--valid-days",
        "9",
        "--street",
        "nowhere",
    )
    assert bad.returncode != 0 and "nowhere" in bad.stdout + bad.stderr
    zero = run(db, *args, "--name", "x", "--denomination", "0", "--valid-days", "9")
    assert zero.returncode != 0 and "1,000,000" in zero.stdout + zero.stderr
    # nothing changed by the refusals
    assert (
        "前橋Qの町商品券" in run(db, "vouchers", "gift-programs", "--municipality", "102016").stdout
    )
