"""The registry of local governments: reading it and importing it from CSV.

Two layouts are read: the open data of `localgovjp` (columns lgcode, pref, city, citykana,
lat, lng, url) and the Ministry's own list (団体コード, 都道府県名（漢字）, 市区町村名（漢字）,
都道府県名（カナ）, 市区町村名（カナ）), in UTF-8 (with or without BOM) or Shift_JIS. An import
is all or nothing: every bad row is reported with its line number and then nothing is written.
Importing again updates what changed and never duplicates.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError, invalid, not_found
from mykey.municipalities.codes import parse_code
from mykey.municipalities.models import Municipality

MINISTRY = {
    "code": "団体コード",
    "pref": "都道府県名(漢字)",
    "city": "市区町村名(漢字)",
    "pref_kana": "都道府県名(カナ)",
    "city_kana": "市区町村名(カナ)",
}
LOCALGOV = {"code": "lgcode", "pref": "pref", "city": "city", "city_kana": "citykana"}


@dataclass(frozen=True)
class MunicipalityRecord:
    code: str
    prefecture: str
    name: str
    kana: str
    lat: str | None = None
    lng: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class RowError:
    line: int
    message: str
    message_ja: str


@dataclass(frozen=True)
class ImportReport:
    layout: str
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: tuple[RowError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def _norm_header(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).split())


def _text(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value or "").strip()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise invalid(
        "unreadable_file",
        "The file is neither UTF-8 nor Shift_JIS text.",
        "ファイルが UTF-8 でも Shift_JIS でもありません。",
    )


def parse_csv(data: bytes) -> tuple[str, list[tuple[int, MunicipalityRecord]], list[RowError]]:
    """Read the file: its layout, the good records with their line numbers, and the errors."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        header = [_norm_header(h) for h in next(reader)]
    except StopIteration:
        return "empty", [], [RowError(1, "The file is empty.", "ファイルが空です。")]
    if all(name in header for name in LOCALGOV.values()):
        layout, columns = "localgovjp", LOCALGOV
    elif all(name in header for name in (MINISTRY["code"], MINISTRY["pref"], MINISTRY["city"])):
        layout, columns = "ministry", MINISTRY
    else:
        return (
            "unknown",
            [],
            [
                RowError(
                    1,
                    "Unknown columns: expected lgcode, pref, city, citykana"
                    " or 団体コード, 都道府県名（漢字）, 市区町村名（漢字）.",
                    "列が不明です: lgcode, pref, city, citykana または"
                    " 団体コード, 都道府県名（漢字）, 市区町村名（漢字） が必要です。",
                )
            ],
        )
    index = {key: header.index(name) for key, name in columns.items() if name in header}
    extra = {name: header.index(name) for name in ("lat", "lng", "url") if name in header}
    records: list[tuple[int, MunicipalityRecord]] = []
    problems: list[RowError] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        if not any(cell.strip() for cell in raw):
            continue

        def cell(position: int | None, raw: list[str] = raw) -> str:
            return _text(raw[position]) if position is not None and position < len(raw) else ""

        code_text = cell(index["code"])
        if len(code_text) == 5 and code_text.isdigit():
            code_text = "0" + code_text  # a spreadsheet dropped the leading zero
        try:
            code = parse_code(code_text)
        except MyKeyError as error:
            problems.append(RowError(line, error.message, error.message_ja))
            continue
        pref = cell(index["pref"])
        city = cell(index["city"])
        kana = cell(index.get("city_kana"))
        if not city and layout == "ministry":  # the prefecture's own row
            city, kana = pref, cell(index.get("pref_kana"))
        if not pref or not city:
            problems.append(
                RowError(
                    line,
                    f"{code}: the prefecture and the name must not be empty.",
                    f"{code}: 都道府県名と団体名は空にできません。",
                )
            )
            continue
        if code in seen:
            problems.append(
                RowError(
                    line,
                    f"{code} appears twice (also on line {seen[code]}).",
                    f"{code} が重複しています（{seen[code]} 行目にもあります）。",
                )
            )
            continue
        seen[code] = line
        records.append(
            (
                line,
                MunicipalityRecord(
                    code=code,
                    prefecture=pref,
                    name=city,
                    kana=kana,
                    lat=cell(extra.get("lat")) or None,
                    lng=cell(extra.get("lng")) or None,
                    url=cell(extra.get("url")) or None,
                ),
            )
        )
    return layout, records, problems


def _fields(record: MunicipalityRecord) -> dict[str, Any]:
    return {
        "prefecture_code": record.code[:2],
        "prefecture": record.prefecture,
        "name": record.name,
        "kana": record.kana,
        "lat": record.lat,
        "lng": record.lng,
        "url": record.url,
    }


def upsert(
    uow: UnitOfWork,
    records: Iterable[MunicipalityRecord],
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Create or update records; returns (created, updated, unchanged)."""
    todo = list(records)

    def body() -> tuple[int, int, int]:
        s = uow.session
        now = uow.now()
        existing = {
            m.code: m
            for m in s.scalars(
                select(Municipality).where(Municipality.code.in_([r.code for r in todo]))
            )
        }
        created = updated = unchanged = 0
        for done, record in enumerate(todo, start=1):
            fields = _fields(record)
            row = existing.get(record.code)
            if row is None:
                s.add(Municipality(code=record.code, created_at=now, updated_at=now, **fields))
                created += 1
            elif any(getattr(row, k) != v for k, v in fields.items()):
                for k, v in fields.items():
                    setattr(row, k, v)
                row.updated_at = now
                updated += 1
            else:
                unchanged += 1
            if progress is not None and done % 100 == 0:
                progress(100)
        s.flush()
        return created, updated, unchanged

    result = uow.run(body)
    if progress is not None and len(todo) % 100:
        progress(len(todo) % 100)
    return result


def import_csv(
    uow: UnitOfWork, data: bytes, *, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Import a whole file, or nothing of it if any row is bad."""
    layout, records, problems = parse_csv(data)
    if problems:
        return ImportReport(layout, len(records) + len(problems), 0, 0, 0, tuple(problems))
    created, updated, unchanged = upsert(uow, (r for _, r in records), progress=progress)
    return ImportReport(layout, len(records), created, updated, unchanged, ())


def get(uow: UnitOfWork, code: str) -> MunicipalityRecord:
    code = parse_code(code)

    def body() -> MunicipalityRecord:
        row = uow.session.get(Municipality, code)
        if row is None:
            raise not_found(
                "unknown_municipality",
                f"No local government with code {code} is registered.",
                f"団体コード {code} の自治体は登録されていません。",
                code=code,
            )
        return _record(row)

    return uow.read(body)


def _record(row: Municipality) -> MunicipalityRecord:
    return MunicipalityRecord(
        row.code, row.prefecture, row.name, row.kana, row.lat, row.lng, row.url
    )


def search(
    uow: UnitOfWork,
    *,
    prefecture: str | None = None,
    query: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[MunicipalityRecord]]:
    """Registered municipalities by prefecture code (01–47) or name; (total, one page)."""
    if prefecture is not None and not (
        len(prefecture) == 2 and prefecture.isdigit() and 1 <= int(prefecture) <= 47
    ):
        raise invalid(
            "invalid_prefecture",
            "A prefecture is given by its two-digit code, 01 to 47.",
            "都道府県は 2 桁のコード（01〜47）で指定してください。",
        )

    def body() -> tuple[int, list[MunicipalityRecord]]:
        stmt = select(Municipality)
        if prefecture is not None:
            stmt = stmt.where(Municipality.prefecture_code == prefecture)
        if query:
            like = f"%{_text(query)}%"
            stmt = stmt.where(or_(Municipality.name.like(like), Municipality.kana.like(like)))
        total = uow.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = uow.session.scalars(stmt.order_by(Municipality.code).limit(limit).offset(offset))
        return int(total), [_record(r) for r in rows]

    return uow.read(body)
