"""Rows of the audited tables read as stored, whatever is stored (the audit and the restore).

The audit must name a tampered entry, never crash on it. A value an attacker wrote need not be
of its column's type: SQLite keeps any value in any column (a leaf given as TEXT that is not
UTF-8 makes the driver fail on fetch), and on PostgreSQL a column's type can be altered or a
value can lie outside what the driver can load (a timestamp of 'infinity'). So these rows are
read without the driver's or SQLAlchemy's conversions:

* SQLite: every column as `typeof(c)` and its value, TEXT fetched as bytes, converted here;
* PostgreSQL: the table's actual column types from the catalogue, then every column as text
  (bytea as hex, timestamps as microseconds since the epoch), converted here.

A value that is not of the column's type, or not in the form our code stores it in (a UUID in
capitals, a time without microseconds), becomes a `Bad` that says what was found. Nothing is
ever written in a form that would be `Bad`, so a `Bad` is always a changed row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    text,
)

from mykey.db import UTCDateTime

Kind = Literal["int", "str", "bytes", "uuid", "time"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PG_TYPES: dict[Kind, tuple[str, ...]] = {
    "int": ("bigint", "integer", "smallint"),
    "str": ("character varying", "text", "character"),
    "bytes": ("bytea",),
    "uuid": ("uuid",),
    "time": ("timestamp with time zone",),
}


@dataclass(frozen=True)
class Bad:
    """A stored value that is not of its column's type (or not in our stored form)."""

    column: str
    found: str

    def __str__(self) -> str:
        return f"{self.column} holds {self.found}"


def kind_of(column: Any) -> Kind:
    t = column.type
    if isinstance(t, Uuid):
        return "uuid"
    if isinstance(t, UTCDateTime):
        return "time"
    if isinstance(t, LargeBinary):
        return "bytes"
    if isinstance(t, Integer | BigInteger | SmallInteger):
        return "int"
    if isinstance(t, String | Text):
        return "str"
    raise TypeError(f"no raw reading for {column.name}: {t!r}")  # pragma: no cover


@dataclass
class RawRow:
    """A row as stored: `values` by column name (a `Bad` where the value is wrongly typed)."""

    table: str
    values: dict[str, Any]
    bad: list[Bad] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        # attribute access by column name, or by the ORM attribute name of `metadata`
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        if name == "meta" and "metadata" in values:
            return values["metadata"]
        raise AttributeError(name)

    def get(self, name: str) -> Any:
        return self.values.get(name)

    @property
    def ok(self) -> bool:
        return not self.bad

    def shown(self) -> dict[str, Any]:
        """The row for a report (JSON-ready): bad values as what was found."""
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if isinstance(value, Bad):
                out[name] = f"<{value.found}>"
            elif isinstance(value, bytes):
                out[name] = value.hex()
            elif isinstance(value, UUID):
                out[name] = str(value)
            elif isinstance(value, datetime):
                out[name] = value.isoformat()
            else:
                out[name] = value
        return out


def _show(data: bytes) -> str:
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{len(data)} bytes that are not UTF-8"
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _shown(value: Any) -> str:
    return _show(value) if isinstance(value, bytes) else repr(value)


WHAT = {"int": "an integer", "str": "text", "bytes": "bytes", "uuid": "a UUID", "time": "a time"}


def _from_sqlite(column: str, kind: Kind, storage: str, value: Any) -> Any:
    """A value as SQLite returned it (TEXT as bytes) and its storage class (`typeof`)."""
    if storage == "null":
        return None
    if kind == "int":
        if storage == "integer":
            return value
        return Bad(column, f"{storage} {_shown(value)}, not {WHAT[kind]}")
    if kind == "bytes":
        if storage == "blob":
            return value
        return Bad(column, f"{storage} {_shown(value)}, not {WHAT[kind]}")
    if storage != "text":
        return Bad(column, f"{storage} {_shown(value)}, not {WHAT[kind]}")
    try:
        got = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return Bad(column, f"text of {len(value)} bytes that are not UTF-8")
    if kind == "str":
        return got
    if kind == "uuid":
        if len(got) == 32 and got == got.lower():
            try:
                return UUID(hex=got)
            except ValueError:
                pass
        return Bad(column, f"text {_shown(value)}, not a UUID as stored")
    # the form SQLAlchemy stores a time in on SQLite: "YYYY-MM-DD HH:MM:SS.ffffff" (UTC)
    if len(got) == 26 and got[10] == " " and got[19] == "." and got[20:].isdigit():
        try:
            return datetime.fromisoformat(got).replace(tzinfo=UTC)
        except ValueError:
            pass
    return Bad(column, f"text {_shown(value)}, not a time as stored")


def _from_postgres(column: str, kind: Kind, actual: str, value: str | None) -> Any:
    if value is None:
        return None
    if not actual.startswith(PG_TYPES[kind]):
        return Bad(column, f"{actual} {_show(value.encode())} (the column's type was changed)")
    if kind == "str":
        return value
    if kind == "int":
        return int(value)
    if kind == "uuid":
        return UUID(value)
    if kind == "bytes":
        return bytes.fromhex(value)
    try:
        micros = int(Decimal(value))
        return EPOCH + timedelta(microseconds=micros)
    except (InvalidOperation, ValueError, OverflowError):
        return Bad(column, f"the time {value!r}")


def _pg_types(conn: Connection, table: Table) -> dict[str, str]:
    rows = conn.execute(
        text(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"t": table.name},
    )
    return {str(r[0]): str(r[1]) for r in rows}


def _pg_expression(name: str, kind: Kind, actual: str) -> str:
    if actual.startswith(PG_TYPES[kind]) and kind == "bytes":
        return f"encode({name}, 'hex')"
    if actual.startswith(PG_TYPES[kind]) and kind == "time":
        return (
            f"CASE WHEN isfinite({name}) THEN"
            f" CAST(extract(epoch FROM {name}) * 1000000 AS numeric(30, 0))::text"
            f" ELSE {name}::text END"
        )
    return f"{name}::text"


@dataclass(frozen=True)
class Reader:
    """Reads raw rows of one table on one connection (the column types are looked up once)."""

    conn: Connection
    table: Table
    columns: tuple[str, ...]
    kinds: dict[str, Kind]
    nullable: dict[str, bool]
    select_list: str
    pg_actual: dict[str, str]

    @classmethod
    def of(cls, conn: Connection, table: Table, only: Sequence[str] | None = None) -> Reader:
        quote = conn.dialect.identifier_preparer.quote
        chosen = [c for c in table.c if only is None or c.name in only]
        columns = tuple(c.name for c in chosen)
        kinds = {c.name: kind_of(c) for c in chosen}
        nullable = {c.name: bool(c.nullable) for c in chosen}
        actual: dict[str, str] = {}
        if conn.dialect.name == "postgresql":
            actual = _pg_types(conn, table)
            parts = [
                _pg_expression(quote(n), kinds[n], actual[n]) if n in actual else "NULL"
                for n in columns
            ]
        else:  # the value itself, TEXT fetched as bytes (see `select`)
            parts = [f"typeof({quote(n)}), {quote(n)}" for n in columns]
        return cls(conn, table, columns, kinds, nullable, ", ".join(parts), actual)

    def _row(self, raw: Sequence[Any]) -> RawRow:
        values: dict[str, Any] = {}
        bad: list[Bad] = []
        if self.conn.dialect.name == "postgresql":
            for name, value in zip(self.columns, raw, strict=True):
                values[name] = _from_postgres(
                    name, self.kinds[name], self.pg_actual.get(name, "missing"), value
                )
        else:
            kinds = self.kinds
            for i, name in enumerate(self.columns):
                storage, value = raw[2 * i], raw[2 * i + 1]
                if isinstance(storage, bytes):
                    storage = storage.decode("ascii")
                kind = kinds[name]
                # the common cases first (one comparison), then every other case
                if kind == "int" and storage == "integer":
                    values[name] = value
                elif kind == "str" and storage == "text" and value.isascii():
                    values[name] = value.decode("ascii")
                else:
                    values[name] = _from_sqlite(name, kind, storage, value)
        for name, value in values.items():
            if value is None:
                if not self.nullable[name]:
                    values[name] = Bad(name, "NULL")
                    bad.append(values[name])
            elif isinstance(value, Bad):
                bad.append(value)
        return RawRow(self.table.name, values, bad)

    def select(
        self,
        where: str = "",
        params: Mapping[str, Any] | None = None,
        *,
        order_by: str = "",
        limit: int | None = None,
    ) -> list[RawRow]:
        """Rows matching `where` (SQL over this table's columns, written by our own code)."""
        sql = f"SELECT {self.select_list} FROM {self.table.name}"  # noqa: S608 -- our names
        if where:
            sql += f" WHERE {where}"
        if order_by:
            # qualified: PostgreSQL would sort by an output column of the same name (text)
            sql += f" ORDER BY {self.table.name}.{order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if self.conn.dialect.name != "sqlite":
            return [self._row(r) for r in self.conn.execute(text(sql), dict(params or {}))]
        # TEXT that is not UTF-8 must not fail the fetch: the driver hands over bytes here
        driver = self.conn.connection.driver_connection
        before = driver.text_factory  # type: ignore[union-attr]  # a sqlite3 connection
        driver.text_factory = bytes  # type: ignore[union-attr]  # a sqlite3 connection
        try:
            fetched = self.conn.execute(text(sql), dict(params or {})).all()
        finally:
            driver.text_factory = before  # type: ignore[union-attr]  # a sqlite3 connection
        return [self._row(r) for r in fetched]

    def by_keys(self, column: str, keys: Iterable[Any], chunk: int = 500) -> list[RawRow]:
        """Rows whose `column` is one of `keys` (given as the column's Python values)."""
        wanted = list(keys)
        out: list[RawRow] = []
        for lo in range(0, len(wanted), chunk):
            part = wanted[lo : lo + chunk]
            names = [f"k{i}" for i in range(len(part))]
            params = {n: self.stored(column, v) for n, v in zip(names, part, strict=True)}
            placeholders = ", ".join(f":{n}" for n in names)
            out.extend(self.select(f"{column} IN ({placeholders})", params))
        return out

    def stored(self, column: str, value: Any) -> Any:
        """A Python value as a bound parameter compares with the stored one."""
        if value is None:
            return None
        kind = self.kinds[column]
        if kind == "uuid":
            uuid = value if isinstance(value, UUID) else UUID(str(value))
            return uuid.hex if self.conn.dialect.name == "sqlite" else uuid
        return value

    def pages(
        self,
        key: str,
        where: str = "",
        params: Mapping[str, Any] | None = None,
        *,
        size: int = 5_000,
    ) -> Iterator[list[RawRow]]:
        """Every row (matching `where`), in pages ordered by the integer primary key `key`."""
        after: int | None = None
        while True:
            clause = " AND ".join(
                c for c in (where, "" if after is None else f"{key} > :after") if c
            )
            rows = self.select(clause, {**(params or {}), "after": after}, order_by=key, limit=size)
            if not rows:
                return
            yield rows
            last = rows[-1].values[key]
            if not isinstance(last, int):  # pragma: no cover -- a primary key is an integer
                return
            after = last


def reader(conn: Connection, table: Table, only: Sequence[str] | None = None) -> Reader:
    """A raw reader of `table` (of the columns `only`, if given)."""
    return Reader.of(conn, table, only)


def integers(conn: Connection, *columns: str) -> str:
    """SQL true for rows whose `columns` hold integers (SQLite keeps anything anywhere)."""
    if conn.dialect.name == "sqlite":
        return " AND ".join(f"typeof({c}) = 'integer'" for c in columns)
    return " AND ".join(f"{c} IS NOT NULL" for c in columns)


def not_integers(conn: Connection, *columns: str) -> str | None:
    """SQL true for rows where one of `columns` holds something other than an integer or
    NULL (SQLite only: PostgreSQL columns hold their type)."""
    if conn.dialect.name != "sqlite":
        return None
    return " OR ".join(f"typeof({c}) NOT IN ('integer', 'null')" for c in columns)
