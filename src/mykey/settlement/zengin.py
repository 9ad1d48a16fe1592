"""The Zengin (全銀協) fixed-length general transfer file (総合振込, 種別コード 21).

A file is one header record (1), one data record (2) per transfer, a trailer record (8) with
the count and the total, and an end record (9). Every record is exactly 120 bytes of the
Zengin character set, which is single-byte Shift_JIS (JIS X 0201): digits, upper-case letters,
half-width katakana with ﾞ and ﾟ, space and ( ) , - . / ¥ ｢ ｣. Numbers are right-aligned and
zero-padded, text is left-aligned and space-padded. Records are separated by CRLF by default
(`crlf=False`: one unbroken stream of 120-byte records, as some banks want).

The layouts are in docs/settlement-zengin.md, with the sources they were taken from.
`transfer_file` writes a file and reads it back with `parse` before returning it; `parse`
checks a file and names the record and the field of the first thing wrong with it.
"""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from mykey.errors import MyKeyError, invalid

RECORD_BYTES = 120
TYPE_GENERAL_TRANSFER = "21"  # 種別コード: 総合振込
CODE_JIS = "0"  # コード区分: JIS (Shift_JIS here)
PAYER_DEPOSIT_TYPES = frozenset({1, 2, 9})  # 普通, 当座, その他
DEPOSIT_TYPES = frozenset({1, 2, 4, 9})  # 普通, 当座, 貯蓄, その他
MAX_AMOUNT = 9_999_999_999  # N(10)
MAX_COUNT = 999_999  # N(6)
MAX_TOTAL = 999_999_999_999  # N(12)

# ---------------------------------------------------------------------------------------------
# The character set and the conversion of names into it

_KANA = "".join(chr(c) for c in range(0xFF71, 0xFF9E))  # ｱ … ﾝ
ALLOWED: frozenset[str] = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ ()-,./¥\uff62\uff63\uff66\uff9e\uff9f" + _KANA
)


def _conversions() -> dict[str, str]:
    """Full-width katakana (and hiragana, small kana, full-width symbols) → the Zengin set."""
    table: dict[str, str] = {}
    for cp in range(0xFF66, 0xFF9E):  # ｦ, small kana, ｰ, ｱ … ﾝ
        half = chr(cp)
        table[unicodedata.normalize("NFKC", half)] = half
    for cp in range(0x30A1, 0x30F7):  # ァ … ヶ (ヷ ヸ ヹ ヺ are not in Shift_JIS: refused)
        full = chr(cp)
        parts = unicodedata.normalize("NFD", full)
        if len(parts) == 2 and parts[0] in table:
            table[full] = table[parts[0]] + ("\uff9e" if parts[1] == "\u3099" else "\uff9f")
    small = {
        "ｧ": "ｱ", "ｨ": "ｲ", "ｩ": "ｳ", "ｪ": "ｴ", "ｫ": "ｵ",
        "ｯ": "ﾂ", "ｬ": "ﾔ", "ｭ": "ﾕ", "ｮ": "ﾖ",
    }  # fmt: skip
    for key, half in list(table.items()):
        if half in small:
            table[key] = small[half]
    table.update(small)
    table.update({"ヮ": "ﾜ", "ヵ": "ｶ", "ヶ": "ｹ"})
    for dash in ("ー", "ｰ", "‐", "−", "–", "—", "－"):
        table[dash] = "-"
    table.update({"゛": "ﾞ", "゜": "ﾟ", "\u3099": "ﾞ", "\u309a": "ﾟ"})
    table.update({"「": "｢", "」": "｣", "\u3000": " ", "￥": "¥", "\\": "¥"})
    return table


_TABLE = _conversions()


def to_zengin(text: str, *, field: str, length: int, required: bool = True) -> str:
    """`text` in the Zengin character set (not padded), or a MyKeyError naming `field`.

    Full-width katakana become half-width (ガ → ｶﾞ, ヴ → ｳﾞ), hiragana become katakana, small
    kana become large (ｼｮｳﾃﾝ → ｼﾖｳﾃﾝ, as banks register names), full-width letters, digits
    and spaces become half-width, lower case becomes upper case, ー and dashes become -.
    Kanji and anything else outside the set is refused, never dropped or guessed.
    """
    if not isinstance(text, str):
        raise invalid(
            "invalid_kana", f"{field} must be text.", f"{field} は文字列で指定してください。"
        )
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        cp = ord(ch)
        if 0x3041 <= cp <= 0x3096:  # hiragana → katakana
            ch = chr(cp + 0x60)
            cp += 0x60
        if 0xFF01 <= cp <= 0xFF5E:  # full-width ASCII
            ch = chr(cp - 0xFEE0)
        converted = _TABLE.get(ch, ch.upper() if ch.isascii() else ch)
        for c in converted:
            if c not in ALLOWED:
                raise invalid(
                    "unconvertible_kana",
                    f"{field}: {ch!r} cannot be written in a bank transfer file (use katakana,"
                    " upper-case letters, digits, space and ( ) , - . /).",
                    f"{field}: 「{ch}」は振込データに使えません(カタカナ・英大文字・数字・"
                    "スペース・( ) , - . / を使ってください)。",
                    field=field,
                    character=ch,
                )
        out.append(converted)
    result = "".join(out).strip(" ")
    if required and not result:
        raise invalid(
            "missing_kana", f"{field} is required.", f"{field} を入力してください。", field=field
        )
    if len(result) > length:
        raise invalid(
            "kana_too_long",
            f"{field} is {len(result)} characters in half-width kana ({result}); at most"
            f" {length} fit.",
            f"{field} は半角カナで{len(result)}文字({result})です。"
            f"{length}文字以内にしてください。",
            field=field,
            length=len(result),
            limit=length,
        )
    return result


def _encode(text: str) -> bytes:
    """The Shift_JIS (JIS X 0201) bytes of Zengin characters: one byte each."""
    out = bytearray()
    for ch in text:
        if ch == "¥":
            out.append(0x5C)
        elif ord(ch) < 0x80:
            out.append(ord(ch))
        else:
            out.append(0xA1 + ord(ch) - 0xFF61)
    return bytes(out)


def _decode_byte(b: int) -> str | None:
    if b == 0x5C:
        ch = "¥"
    elif b < 0x80:
        ch = chr(b)
    elif 0xA1 <= b <= 0xDF:
        ch = chr(0xFF61 + b - 0xA1)
    else:
        return None
    return ch if ch in ALLOWED else None


# ---------------------------------------------------------------------------------------------
# Record layouts: (field, its Japanese name, bytes, N = number or C = characters)

Field = tuple[str, str, int, Literal["N", "C"]]

HEADER: tuple[Field, ...] = (
    ("data_kind", "データ区分", 1, "N"),
    ("type_code", "種別コード", 2, "N"),
    ("code_kind", "コード区分", 1, "N"),
    ("requester_code", "振込依頼人コード", 10, "N"),
    ("requester_name", "振込依頼人名", 40, "C"),
    ("transfer_date", "振込指定日", 4, "N"),
    ("bank_code", "仕向銀行番号", 4, "N"),
    ("bank_name", "仕向銀行名", 15, "C"),
    ("branch_code", "仕向支店番号", 3, "N"),
    ("branch_name", "仕向支店名", 15, "C"),
    ("deposit_type", "預金種目(依頼人)", 1, "N"),
    ("account_number", "口座番号(依頼人)", 7, "N"),
    ("dummy", "ダミー", 17, "C"),
)
DATA: tuple[Field, ...] = (
    ("data_kind", "データ区分", 1, "N"),
    ("bank_code", "被仕向銀行番号", 4, "N"),
    ("bank_name", "被仕向銀行名", 15, "C"),
    ("branch_code", "被仕向支店番号", 3, "N"),
    ("branch_name", "被仕向支店名", 15, "C"),
    ("clearing_house", "手形交換所番号", 4, "N"),
    ("deposit_type", "預金種目", 1, "N"),
    ("account_number", "口座番号", 7, "N"),
    ("holder_name", "受取人名", 30, "C"),
    ("amount", "振込金額", 10, "N"),
    ("new_code", "新規コード", 1, "N"),
    ("customer_code1", "顧客コード1", 10, "N"),
    ("customer_code2", "顧客コード2", 10, "N"),
    ("transfer_kind", "振込指定区分", 1, "N"),
    ("edi_flag", "識別表示", 1, "C"),
    ("dummy", "ダミー", 7, "C"),
)
TRAILER: tuple[Field, ...] = (
    ("data_kind", "データ区分", 1, "N"),
    ("count", "合計件数", 6, "N"),
    ("total", "合計金額", 12, "N"),
    ("dummy", "ダミー", 101, "C"),
)
END: tuple[Field, ...] = (
    ("data_kind", "データ区分", 1, "N"),
    ("dummy", "ダミー", 119, "C"),
)
LAYOUTS: dict[str, tuple[str, tuple[Field, ...]]] = {
    "1": ("header", HEADER),
    "2": ("data", DATA),
    "8": ("trailer", TRAILER),
    "9": ("end", END),
}
_JA_KIND = {"header": "ヘッダー", "data": "データ", "trailer": "トレーラ", "end": "エンド"}


@dataclass(frozen=True)
class Payer:
    """The one who pays (振込依頼人): here a municipality's account at its bank."""

    requester_code: str  # 10 digits, assigned by the bank (委託者コード)
    name: str  # kana, ≤ 40
    bank_code: str  # 4 digits
    branch_code: str  # 3 digits
    deposit_type: int  # 1 普通, 2 当座, 9 その他
    account_number: str  # ≤ 7 digits
    bank_name: str = ""  # kana, ≤ 15
    branch_name: str = ""  # kana, ≤ 15


@dataclass(frozen=True)
class TransferLine:
    """One transfer (a data record)."""

    bank_code: str  # 4 digits
    branch_code: str  # 3 digits
    deposit_type: int  # 1 普通, 2 当座, 4 貯蓄, 9 その他
    account_number: str  # ≤ 7 digits
    holder_name: str  # kana, ≤ 30
    amount: int  # yen, 1 … 9,999,999,999
    bank_name: str = ""  # kana, ≤ 15
    branch_name: str = ""  # kana, ≤ 15
    customer_code1: str = ""  # ≤ 10 digits: the payer's own reference, returned by the bank
    customer_code2: str = ""  # ≤ 10 digits
    edi: str = ""  # ≤ 20 Zengin characters instead of the customer codes (識別表示 Y)
    new_code: str = "0"  # 新規コード: 0 other, 1 first transfer, 2 changed
    transfer_kind: str = "7"  # 振込指定区分: 7 telegraphic (電信), 8 document (文書)


@dataclass(frozen=True)
class ZenginFile:
    """A parsed and checked transfer file."""

    payer: Payer
    transfer_date: str  # MMDD
    lines: tuple[TransferLine, ...]
    count: int
    total: int
    crlf: bool


# ---------------------------------------------------------------------------------------------
# Writing


def check_digits(value: object, length: int, field: str, *, exact: bool = False) -> str:
    """`value` (digits, or an int) zero-padded to `length`, or a MyKeyError naming `field`."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(text, str)
        or not text.isascii()
        or not text.isdigit()
        or len(text) > length
        or (exact and len(text) != length)
    ):
        size = f"exactly {length}" if exact else f"1 to {length}"
        size_ja = f"{length}桁" if exact else f"1〜{length}桁"
        raise invalid(
            "invalid_bank_field",
            f"{field} must be {size} digits, not {value!r}.",
            f"{field} は{size_ja}の数字で指定してください({value!r})。",
            field=field,
        )
    return text.zfill(length)


def check_deposit_type(value: object, allowed: frozenset[int], field: str) -> str:
    """The deposit type (預金種目) as its one digit, if it is one of `allowed`."""
    if isinstance(value, bool) or value not in allowed:
        names = ", ".join(str(a) for a in sorted(allowed))
        raise invalid(
            "invalid_deposit_type",
            f"{field} must be one of {names} (1 普通, 2 当座, 4 貯蓄, 9 その他), not {value!r}.",
            f"{field} は {names} のいずれかです(1 普通、2 当座、4 貯蓄、9 その他)。",
            field=field,
        )
    return str(value)


def _text(value: str, length: int, field: str, *, required: bool) -> str:
    return to_zengin(value, field=field, length=length, required=required).ljust(length)


def _header(payer: Payer, transfer_date: date) -> str:
    if not isinstance(transfer_date, date):
        raise invalid(
            "invalid_transfer_date",
            "The transfer date must be a date.",
            "振込指定日は日付で指定してください。",
        )
    return "".join(
        (
            "1",
            TYPE_GENERAL_TRANSFER,
            CODE_JIS,
            check_digits(payer.requester_code, 10, "requester_code", exact=True),
            _text(payer.name, 40, "requester_name", required=True),
            f"{transfer_date.month:02d}{transfer_date.day:02d}",
            check_digits(payer.bank_code, 4, "bank_code", exact=True),
            _text(payer.bank_name, 15, "bank_name", required=False),
            check_digits(payer.branch_code, 3, "branch_code", exact=True),
            _text(payer.branch_name, 15, "branch_name", required=False),
            check_deposit_type(payer.deposit_type, PAYER_DEPOSIT_TYPES, "deposit_type"),
            check_digits(payer.account_number, 7, "account_number"),
            " " * 17,
        )
    )


def _data(line: TransferLine, n: int) -> str:
    def f(name: str) -> str:
        return f"line {n} {name}"

    amount = line.amount
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise invalid(
            "invalid_amount",
            f"{f('amount')}: an amount is whole yen from 1 to {MAX_AMOUNT:,}, not {amount!r}.",
            f"{f('amount')}: 振込金額は1〜{MAX_AMOUNT:,}円の整数です({amount!r})。",
            field="amount",
            line=n,
        )
    if line.new_code not in ("0", "1", "2"):
        raise invalid(
            "invalid_bank_field",
            f"{f('new_code')} is 0, 1 or 2.",
            f"{f('new_code')} は 0、1、2 のいずれかです。",
            field="new_code",
            line=n,
        )
    if line.transfer_kind not in ("7", "8"):
        raise invalid(
            "invalid_bank_field",
            f"{f('transfer_kind')} is 7 (電信) or 8 (文書).",
            f"{f('transfer_kind')} は 7(電信)または 8(文書)です。",
            field="transfer_kind",
            line=n,
        )
    if line.edi:
        if line.customer_code1 or line.customer_code2:
            raise invalid(
                "invalid_bank_field",
                f"line {n}: EDI information replaces the customer codes; give one or the other.",
                f"{n}行目: EDI情報と顧客コードはどちらか一方です。",
                line=n,
            )
        codes, flag = _text(line.edi, 20, f("edi"), required=True), "Y"
    else:
        codes = check_digits(line.customer_code1 or "0", 10, f("customer_code1")) + check_digits(
            line.customer_code2 or "0", 10, f("customer_code2")
        )
        flag = " "
    return "".join(
        (
            "2",
            check_digits(line.bank_code, 4, f("bank_code"), exact=True),
            _text(line.bank_name, 15, f("bank_name"), required=False),
            check_digits(line.branch_code, 3, f("branch_code"), exact=True),
            _text(line.branch_name, 15, f("branch_name"), required=False),
            "0000",
            check_deposit_type(line.deposit_type, DEPOSIT_TYPES, f("deposit_type")),
            check_digits(line.account_number, 7, f("account_number")),
            _text(line.holder_name, 30, f("holder_name"), required=True),
            f"{amount:010d}",
            line.new_code,
            codes,
            line.transfer_kind,
            flag,
            " " * 7,
        )
    )


def transfer_file(
    payer: Payer, lines: Sequence[TransferLine], transfer_date: date, *, crlf: bool = True
) -> bytes:
    """A general transfer file paying every line from the payer's account on `transfer_date`
    (only its month and day are written). Checked with `parse` before it is returned."""
    if not lines:
        raise invalid(
            "no_transfers",
            "A transfer file needs at least one transfer.",
            "振込データが1件もありません。",
        )
    if len(lines) > MAX_COUNT:
        raise invalid(
            "too_many_transfers",
            f"A transfer file holds at most {MAX_COUNT:,} transfers.",
            f"1ファイルの振込は{MAX_COUNT:,}件までです。",
        )
    records = [_header(payer, transfer_date)]
    records += [_data(line, n) for n, line in enumerate(lines, start=1)]
    total = sum(line.amount for line in lines)
    if total > MAX_TOTAL:
        raise invalid(
            "total_too_large",
            f"The total {total:,} yen does not fit the trailer (at most {MAX_TOTAL:,}).",
            f"合計金額 {total:,} 円はトレーラに収まりません(上限 {MAX_TOTAL:,} 円)。",
        )
    records.append(f"8{len(lines):06d}{total:012d}" + " " * 101)
    records.append("9" + " " * 119)
    for record in records:  # a layout mistake here is a bug, not bad input
        assert len(record) == RECORD_BYTES, (record[0], len(record))
    separator = b"\r\n" if crlf else b""
    data = b"".join(_encode(record) + separator for record in records)
    parsed = parse(data)
    assert (parsed.count, parsed.total) == (len(lines), total)
    return data


# ---------------------------------------------------------------------------------------------
# Reading and checking


def _error(
    n: int, kind: str, field: Field | None, message: str, message_ja: str, **details: object
) -> MyKeyError:
    where = f"Record {n} ({kind})" + (f", field {field[0]}" if field else "")
    where_ja = f"{n}件目({_JA_KIND.get(kind, kind)}レコード)" + (f"の{field[1]}" if field else "")
    return invalid(
        "invalid_zengin_file",
        f"{where}: {message}",
        f"{where_ja}: {message_ja}",
        record=n,
        kind=kind,
        field=field[0] if field else None,
        **details,
    )


def _split(data: bytes) -> tuple[list[bytes], bool]:
    if b"\r" in data or b"\n" in data:
        records = data.split(b"\r\n")
        if records and records[-1] == b"":
            records.pop()
        return records, True
    return [data[i : i + RECORD_BYTES] for i in range(0, len(data), RECORD_BYTES)], False


def _fields(raw: bytes, n: int, kind: str, layout: tuple[Field, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    at = 0
    for field in layout:
        chunk = raw[at : at + field[2]]
        text = []
        for i, b in enumerate(chunk):
            ch = _decode_byte(b)
            if ch is None:
                raise _error(
                    n,
                    kind,
                    field,
                    f"byte 0x{b:02X} at position {at + i + 1} is not a Zengin character.",
                    f"{at + i + 1}バイト目(0x{b:02X})は使えない文字です。",
                    position=at + i + 1,
                )
            text.append(ch)
        values[field[0]] = "".join(text)
        at += field[2]
    return values


def _check(
    values: dict[str, str],
    n: int,
    kind: str,
    layout: tuple[Field, ...],
    *,
    optional: frozenset[str] = frozenset(),
    text_fields: frozenset[str] = frozenset(),
) -> None:
    for field in layout:
        value = values[field[0]]
        if field[0] == "dummy":
            if value.strip(" "):
                raise _error(n, kind, field, "must be spaces.", "スペースでなければなりません。")
        elif field[3] == "N" and field[0] not in text_fields:
            if field[0] in optional and not value.strip(" "):
                continue
            if not value.isdigit():
                raise _error(
                    n,
                    kind,
                    field,
                    f"{value!r} is not a right-aligned zero-padded number.",
                    f"「{value}」は右詰め・前ゼロ埋めの数字ではありません。",
                )
        elif value.startswith(" ") and value.strip(" "):
            raise _error(
                n,
                kind,
                field,
                f"{value!r} is not left-aligned.",
                f"「{value}」が左詰めではありません。",
            )


def _must(ok: bool, n: int, kind: str, field: Field, message: str, message_ja: str) -> None:
    if not ok:
        raise _error(n, kind, field, message, message_ja)


def _field(layout: tuple[Field, ...], name: str) -> Field:
    return next(f for f in layout if f[0] == name)


def _valid_mmdd(mmdd: str) -> bool:
    month, day = int(mmdd[:2]), int(mmdd[2:])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(2024, month)[1]  # leap year


def parse(data: bytes) -> ZenginFile:
    """Read and check a general transfer file: record lengths, record order, the character
    set, every field's form, and the trailer's count and total against the data records.
    The first problem found is raised as a MyKeyError naming the record and the field."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise invalid("invalid_zengin_file", "The file is empty.", "ファイルが空です。")
    records, crlf = _split(bytes(data))
    for n, raw in enumerate(records, start=1):
        if len(raw) != RECORD_BYTES:
            kind = LAYOUTS.get(chr(raw[0]), ("?", ()))[0] if raw else "?"
            raise _error(
                n,
                kind,
                None,
                f"{len(raw)} bytes, not {RECORD_BYTES}.",
                f"{len(raw)}バイトです({RECORD_BYTES}バイトでなければなりません)。",
                length=len(raw),
            )
    payer: Payer | None = None
    mmdd = ""
    lines: list[TransferLine] = []
    count = total = -1
    expected = "1"  # what may come next: 1, then 2 (first data), then 2 or 8, then 9, then none
    ended = False
    for n, raw in enumerate(records, start=1):
        mark = chr(raw[0])
        if ended:
            raise _error(
                n,
                LAYOUTS.get(mark, ("?", ()))[0],
                None,
                "nothing may follow the end record.",
                "エンドレコードの後にレコードがあります。",
            )
        allowed = {"1": "1", "2": "2", "28": "28", "9": "9"}[expected]
        if mark not in allowed:
            names = " or ".join(f"{LAYOUTS[a][0]} ({a})" for a in allowed)
            names_ja = "・".join(f"{_JA_KIND[LAYOUTS[a][0]]}({a})" for a in allowed)
            raise _error(
                n,
                LAYOUTS.get(mark, ("?", ()))[0],
                ("data_kind", "データ区分", 1, "N"),
                f"expected a {names} record here, found {mark!r}.",
                f"ここには{names_ja}レコードが必要ですが「{mark}」です。",
            )
        kind, layout = LAYOUTS[mark]
        values = _fields(raw, n, kind, layout)
        if mark == "1":
            _check(values, n, kind, layout)
            _must(
                values["type_code"] == TYPE_GENERAL_TRANSFER,
                n,
                kind,
                _field(layout, "type_code"),
                f"{values['type_code']!r} is not 21 (総合振込).",
                f"「{values['type_code']}」は 21(総合振込)ではありません。",
            )
            _must(
                values["code_kind"] == CODE_JIS,
                n,
                kind,
                _field(layout, "code_kind"),
                f"{values['code_kind']!r} is not 0 (JIS).",
                f"「{values['code_kind']}」は 0(JIS)ではありません。",
            )
            _must(
                bool(values["requester_name"].strip()),
                n,
                kind,
                _field(layout, "requester_name"),
                "is blank.",
                "空欄です。",
            )
            _must(
                _valid_mmdd(values["transfer_date"]),
                n,
                kind,
                _field(layout, "transfer_date"),
                f"{values['transfer_date']!r} is not a month and day (MMDD).",
                f"「{values['transfer_date']}」は月日(MMDD)ではありません。",
            )
            _must(
                int(values["deposit_type"]) in PAYER_DEPOSIT_TYPES,
                n,
                kind,
                _field(layout, "deposit_type"),
                f"{values['deposit_type']!r} is not 1, 2 or 9.",
                f"「{values['deposit_type']}」は 1・2・9 のいずれでもありません。",
            )
            payer = Payer(
                requester_code=values["requester_code"],
                name=values["requester_name"].rstrip(" "),
                bank_code=values["bank_code"],
                bank_name=values["bank_name"].rstrip(" "),
                branch_code=values["branch_code"],
                branch_name=values["branch_name"].rstrip(" "),
                deposit_type=int(values["deposit_type"]),
                account_number=values["account_number"],
            )
            mmdd = values["transfer_date"]
            expected = "2"
        elif mark == "2":
            edi = values["edi_flag"] == "Y"
            _must(
                values["edi_flag"] in ("Y", " "),
                n,
                kind,
                _field(layout, "edi_flag"),
                f"{values['edi_flag']!r} is neither Y nor a space.",
                f"「{values['edi_flag']}」は Y でもスペースでもありません。",
            )
            _check(
                values,
                n,
                kind,
                layout,
                optional=frozenset(
                    {"clearing_house", "new_code", "customer_code1", "customer_code2"}
                    | {"transfer_kind"}
                ),
                text_fields=frozenset({"customer_code1", "customer_code2"} if edi else ()),
            )
            _must(
                int(values["deposit_type"]) in DEPOSIT_TYPES,
                n,
                kind,
                _field(layout, "deposit_type"),
                f"{values['deposit_type']!r} is not 1, 2, 4 or 9.",
                f"「{values['deposit_type']}」は 1・2・4・9 のいずれでもありません。",
            )
            _must(
                bool(values["holder_name"].strip()),
                n,
                kind,
                _field(layout, "holder_name"),
                "is blank.",
                "空欄です。",
            )
            _must(
                int(values["amount"]) > 0,
                n,
                kind,
                _field(layout, "amount"),
                "is zero.",
                "0円です。",
            )
            _must(
                values["new_code"] in ("0", "1", "2", " "),
                n,
                kind,
                _field(layout, "new_code"),
                f"{values['new_code']!r} is not 0, 1 or 2.",
                f"「{values['new_code']}」は 0・1・2 のいずれでもありません。",
            )
            _must(
                values["transfer_kind"] in ("7", "8", " "),
                n,
                kind,
                _field(layout, "transfer_kind"),
                f"{values['transfer_kind']!r} is not 7 or 8.",
                f"「{values['transfer_kind']}」は 7・8 のいずれでもありません。",
            )
            codes = values["customer_code1"] + values["customer_code2"]
            lines.append(
                TransferLine(
                    bank_code=values["bank_code"],
                    bank_name=values["bank_name"].rstrip(" "),
                    branch_code=values["branch_code"],
                    branch_name=values["branch_name"].rstrip(" "),
                    deposit_type=int(values["deposit_type"]),
                    account_number=values["account_number"],
                    holder_name=values["holder_name"].rstrip(" "),
                    amount=int(values["amount"]),
                    customer_code1="" if edi else values["customer_code1"].strip(" "),
                    customer_code2="" if edi else values["customer_code2"].strip(" "),
                    edi=codes.rstrip(" ") if edi else "",
                    new_code=values["new_code"].strip(" ") or "0",
                    transfer_kind=values["transfer_kind"].strip(" ") or "7",
                )
            )
            expected = "28"
        elif mark == "8":
            _check(values, n, kind, layout)
            count, total = int(values["count"]), int(values["total"])
            _must(
                count == len(lines),
                n,
                kind,
                _field(layout, "count"),
                f"says {count} transfers; the file has {len(lines)}.",
                f"{count}件とありますが、データレコードは{len(lines)}件です。",
            )
            actual = sum(line.amount for line in lines)
            _must(
                total == actual,
                n,
                kind,
                _field(layout, "total"),
                f"says {total:,} yen; the data records add up to {actual:,}.",
                f"{total:,}円とありますが、データレコードの合計は{actual:,}円です。",
            )
            expected = "9"
        else:
            _check(values, n, kind, layout)
            ended = True
    if not ended:
        missing = {"1": "header (1)", "2": "data (2)", "28": "trailer (8)", "9": "end (9)"}
        missing_ja = {"1": "ヘッダー", "2": "データ", "28": "トレーラ", "9": "エンド"}
        raise invalid(
            "invalid_zengin_file",
            f"Record {len(records) + 1}: the file ends where a {missing[expected]} record"
            " should follow.",
            f"{len(records) + 1}件目: {missing_ja[expected]}レコードがないままファイルが"
            "終わっています。",
            record=len(records) + 1,
        )
    assert payer is not None
    return ZenginFile(
        payer=payer,
        transfer_date=mmdd,
        lines=tuple(lines),
        count=count,
        total=total,
        crlf=crlf,
    )
