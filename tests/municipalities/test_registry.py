"""Importing the registry of local governments from CSV (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError
from mykey.municipalities import registry
from tests.conftest import SHARED_DATA, Database

LOCALGOV = SHARED_DATA / "localgovjp-utf8.csv"


def ministry_csv(*rows: str) -> bytes:
    # The Ministry's list as Excel saves it: Shift_JIS, half-width katakana, line breaks in
    # the header cells.
    text = (
        '"団体コード","都道府県名\n（漢字）","市区町村名\n（漢字）","都道府県名\n（カナ）",'
        '"市区町村名\n（カナ）"\n' + "".join(row + "\n" for row in rows)
    )
    return text.encode("cp932")


@pytest.mark.skipif(not LOCALGOV.exists(), reason=f"shared data not found at {LOCALGOV}")
def test_the_whole_shared_file_imports_and_reimporting_changes_nothing(
    uow: UnitOfWork, database: Database
) -> None:
    data = LOCALGOV.read_bytes()
    seen: list[int] = []

    first = registry.import_csv(uow, data, progress=seen.append)

    assert first.ok, first.errors[:3]
    assert (first.layout, first.rows, first.created) == ("localgovjp", 1916, 1916)
    assert sum(seen) == 1916
    assert database.count("municipalities") == 1916
    again = registry.import_csv(uow, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1916)
    assert database.count("municipalities") == 1916
    toshima = registry.get(uow, "131164")
    assert (toshima.prefecture, toshima.name, toshima.kana) == ("東京都", "豊島区", "としまく")
    total, kumamoto = registry.search(uow, prefecture="43", limit=500)
    assert total == len(kumamoto) and "434248" in {m.code for m in kumamoto}


def test_the_ministry_layout_in_shift_jis_with_prefecture_rows(uow: UnitOfWork) -> None:
    data = ministry_csv(
        "430005,熊本県,,ｸﾏﾓﾄｹﾝ,",
        "434248,熊本県,小国町,ｸﾏﾓﾄｹﾝ,ｵｸﾞﾆﾏﾁ",
        "11002,北海道,札幌市,ﾎｯｶｲﾄﾞｳ,ｻｯﾎﾟﾛｼ",
    )

    report = registry.import_csv(uow, data)

    assert report.ok, report.errors
    assert (report.layout, report.created) == ("ministry", 3)
    oguni = registry.get(uow, "434248")
    assert (oguni.name, oguni.kana) == ("小国町", "オグニマチ")
    assert registry.get(uow, "430005").name == "熊本県"
    assert registry.get(uow, "011002").name == "札幌市"


def test_a_changed_row_is_updated_not_duplicated(uow: UnitOfWork, database: Database) -> None:
    registry.import_csv(uow, ministry_csv("434248,熊本県,小国町,ｸﾏﾓﾄｹﾝ,ｵｸﾞﾆﾏﾁ"))
    report = registry.import_csv(uow, ministry_csv("434248,熊本県,小国町,ｸﾏﾓﾄｹﾝ,ｵｸﾞﾆﾏﾁｮｳ"))
    assert (report.created, report.updated) == (0, 1)
    assert database.count("municipalities") == 1
    assert registry.get(uow, "434248").kana == "オグニマチョウ"


def test_bad_rows_are_reported_by_line_and_nothing_is_written(
    uow: UnitOfWork, database: Database
) -> None:
    data = ministry_csv(
        "131164,東京都,豊島区,ﾄｳｷｮｳﾄ,ﾄｼﾏｸ",
        "131165,東京都,豊島区,ﾄｳｷｮｳﾄ,ﾄｼﾏｸ",
        "292044,奈良県,天理市,ﾅﾗｹﾝ,ﾃﾝﾘｼ",
        "292044,奈良県,天理市,ﾅﾗｹﾝ,ﾃﾝﾘｼ",
        "242012,,津市,,ﾂｼ",
    )

    report = registry.import_csv(uow, data)

    assert not report.ok
    lines = {e.line: e.message for e in report.errors}
    assert set(lines) == {3, 5, 6}
    assert "check digit should be 4" in lines[3]
    assert "twice (also on line 4)" in lines[5]
    assert "must not be empty" in lines[6]
    assert database.count("municipalities") == 0


def test_unknown_columns_and_unknown_codes_get_clear_errors(uow: UnitOfWork) -> None:
    report = registry.import_csv(uow, b"a,b,c\n1,2,3\n")
    assert not report.ok
    assert report.errors[0].line == 1
    assert "Unknown columns" in report.errors[0].message
    with pytest.raises(MyKeyError) as caught:
        registry.get(uow, "131164")
    assert caught.value.code == "unknown_municipality"
    with pytest.raises(MyKeyError) as caught:
        registry.search(uow, prefecture="48")
    assert caught.value.code == "invalid_prefecture"
