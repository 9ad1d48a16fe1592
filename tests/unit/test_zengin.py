"""The Zengin general transfer file (総合振込): what a bank's upload screen would accept or
reject — lengths, layout, kana, padding, totals — and the checking reader's messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from mykey.errors import MyKeyError
from mykey.settlement.zengin import (
    DATA,
    END,
    HEADER,
    RECORD_BYTES,
    TRAILER,
    Payer,
    TransferLine,
    parse,
    to_zengin,
    transfer_file,
)

PAYER = Payer(
    requester_code="0000012345",
    name="テンリシ カイケイカンリシツ",
    bank_code="0162",
    bank_name="ナントギンコウ",
    branch_code="301",
    branch_name="テンリ",
    deposit_type=1,
    account_number="1234567",
)
LINES = [
    TransferLine(
        "0001", "123", 1, "7654321", "テンリホンドオリノホンヤ", 12_345, customer_code1="202610"
    ),
    TransferLine("0009", "045", 4, "42", "ｶ)ｻﾝｺｳｶﾝ", 1, bank_name="ミツイスミトモ"),
    TransferLine("0005", "001", 2, "9999999", "YAMADA SHOTEN", 9_999_999_999),
]
DAY = date(2026, 11, 10)


def records(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def field(record: bytes, layout: tuple[tuple[str, str, int, str], ...], name: str) -> bytes:
    at = 0
    for f in layout:
        if f[0] == name:
            return record[at : at + f[2]]
        at += f[2]
    raise KeyError(name)


def error_of(data: bytes) -> MyKeyError:
    with pytest.raises(MyKeyError) as caught:
        parse(data)
    assert caught.value.code == "invalid_zengin_file"
    return caught.value


def test_every_layout_adds_up_to_120_bytes() -> None:
    for layout in (HEADER, DATA, TRAILER, END):
        assert sum(f[2] for f in layout) == RECORD_BYTES


def test_a_file_is_header_data_trailer_end_of_120_bytes_each_in_shift_jis() -> None:
    data = transfer_file(PAYER, LINES, DAY)
    recs = records(data)
    assert [r[:1] for r in recs] == [b"1", b"2", b"2", b"2", b"8", b"9"]
    assert all(len(r) == 120 for r in recs)
    # every character is one Shift_JIS byte: the codec reads it back to the same bytes
    assert data.decode("shift_jis").encode("shift_jis") == data
    header = recs[0]
    assert header[:4] == b"1210"
    assert field(header, HEADER, "requester_code") == b"0000012345"
    assert field(header, HEADER, "transfer_date") == b"1110"
    assert field(header, HEADER, "requester_name").decode("shift_jis") == (
        "ﾃﾝﾘｼ ｶｲｹｲｶﾝﾘｼﾂ".ljust(40)
    )
    assert field(header, HEADER, "bank_name").decode("shift_jis") == "ﾅﾝﾄｷﾞﾝｺｳ".ljust(15)


def test_numbers_are_right_aligned_with_zeros_and_text_left_aligned_with_spaces() -> None:
    recs = records(transfer_file(PAYER, LINES, DAY))
    second = recs[2]
    assert field(second, DATA, "account_number") == b"0000042"
    assert field(second, DATA, "amount") == b"0000000001"
    assert field(second, DATA, "holder_name") == "ｶ)ｻﾝｺｳｶﾝ".ljust(30).encode("shift_jis")
    assert field(second, DATA, "branch_name") == b" " * 15
    assert field(second, DATA, "deposit_type") == b"4"
    first = recs[1]
    assert field(first, DATA, "customer_code1") == b"0000202610"
    assert field(first, DATA, "amount") == b"0000012345"
    assert field(first, DATA, "dummy") == b" " * 7


def test_the_trailer_counts_and_totals_the_transfers() -> None:
    trailer = records(transfer_file(PAYER, LINES, DAY))[4]
    assert field(trailer, TRAILER, "count") == b"000003"
    assert field(trailer, TRAILER, "total") == b"%012d" % (12_345 + 1 + 9_999_999_999)
    assert records(transfer_file(PAYER, LINES, DAY))[5] == b"9" + b" " * 119


def test_parse_reads_back_what_was_written() -> None:
    parsed = parse(transfer_file(PAYER, LINES, DAY))
    assert parsed.count == 3
    assert parsed.total == 12_345 + 1 + 9_999_999_999
    assert parsed.transfer_date == "1110"
    assert parsed.crlf
    assert parsed.payer.name == "ﾃﾝﾘｼ ｶｲｹｲｶﾝﾘｼﾂ"
    assert parsed.payer.account_number == "1234567"
    assert [line.amount for line in parsed.lines] == [12_345, 1, 9_999_999_999]
    assert [line.holder_name for line in parsed.lines] == [
        "ﾃﾝﾘﾎﾝﾄﾞｵﾘﾉﾎﾝﾔ",
        "ｶ)ｻﾝｺｳｶﾝ",
        "YAMADA SHOTEN",
    ]
    assert parsed.lines[0].customer_code1 == "0000202610"
    # written again from what was read, the file is the same
    assert transfer_file(parsed.payer, parsed.lines, DAY) == transfer_file(PAYER, LINES, DAY)


def test_without_crlf_the_records_run_on() -> None:
    data = transfer_file(PAYER, LINES, DAY, crlf=False)
    assert len(data) == 6 * 120
    assert b"\r" not in data and b"\n" not in data
    assert not parse(data).crlf
    assert data == transfer_file(PAYER, LINES, DAY).replace(b"\r\n", b"")


def test_edi_information_replaces_the_customer_codes() -> None:
    line = TransferLine("0001", "123", 1, "1", "ｼﾖｳﾃﾝ", 500, edi="inv 2026-10")
    data = transfer_file(PAYER, [line], DAY)
    record = records(data)[1]
    assert record[90 + 1 : 90 + 21] == b"INV 2026-10".ljust(20)
    assert field(record, DATA, "edi_flag") == b"Y"
    assert parse(data).lines[0].edi == "INV 2026-10"
    with pytest.raises(MyKeyError, match="one or the other"):
        transfer_file(PAYER, [replace(line, customer_code1="1")], DAY)


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("テンリショウテン", "ﾃﾝﾘｼﾖｳﾃﾝ"),  # small kana become large, as banks register them
        ("がっこうほうじん", "ｶﾞﾂｺｳﾎｳｼﾞﾝ"),  # hiragana, voiced marks
        ("パン ポポロ", "ﾊﾟﾝ ﾎﾟﾎﾟﾛ"),
        ("ヴィラ", "ｳﾞｲﾗ"),
        ("ｼｮｳﾃﾝ", "ｼﾖｳﾃﾝ"),  # half-width small kana
        ("ＡＢＣ　ｍｙｋｅｙ（カ）", "ABC MYKEY(ｶ)"),  # full-width ASCII and space, lower case
        ("アーツマエバシ", "ｱ-ﾂﾏｴﾊﾞｼ"),  # the long vowel mark is written as a hyphen
        ("「テスト」./,", "｢ﾃｽﾄ｣./,"),
        ("  ﾔﾏﾀﾞ  ", "ﾔﾏﾀﾞ"),  # outer spaces trimmed
    ],
)
def test_names_are_converted_to_half_width_kana(given: str, written: str) -> None:
    assert to_zengin(given, field="holder_name", length=30) == written


@pytest.mark.parametrize("name", ["山田商店", "ショウテン・イチ", "Shop&Co", "ヷ", "ﾃｽﾄ!"])
def test_names_that_cannot_be_converted_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(MyKeyError) as caught:
        to_zengin(name, field="holder_name", length=30)
    assert caught.value.code == "unconvertible_kana"
    assert caught.value.details["field"] == "holder_name"
    assert "holder_name" in caught.value.message and "holder_name" in caught.value.message_ja


def test_length_counts_half_width_characters_and_voiced_marks() -> None:
    # ガ is two characters once written (ｶﾞ): 15 of them make 30, and 16 do not fit
    assert len(to_zengin("ガ" * 15, field="holder_name", length=30)) == 30
    with pytest.raises(MyKeyError) as caught:
        to_zengin("ガ" * 16, field="holder_name", length=30)
    assert caught.value.code == "kana_too_long"
    assert caught.value.details == {"field": "holder_name", "length": 32, "limit": 30}
    with pytest.raises(MyKeyError) as blank:
        to_zengin("  ", field="requester_name", length=40)
    assert blank.value.code == "missing_kana"


@pytest.mark.parametrize(
    ("line", "code", "field_name"),
    [
        (replace(LINES[0], amount=0), "invalid_amount", "amount"),
        (replace(LINES[0], amount=-5), "invalid_amount", "amount"),
        (replace(LINES[0], amount=10_000_000_000), "invalid_amount", "amount"),
        (replace(LINES[0], bank_code="01"), "invalid_bank_field", "line 1 bank_code"),
        (replace(LINES[0], branch_code="12a"), "invalid_bank_field", "line 1 branch_code"),
        (replace(LINES[0], account_number="12345678"), "invalid_bank_field", "account_number"),
        (replace(LINES[0], deposit_type=3), "invalid_deposit_type", "deposit_type"),
        (replace(LINES[0], holder_name="山田"), "unconvertible_kana", "line 1 holder_name"),
        (replace(LINES[0], customer_code1="A1"), "invalid_bank_field", "customer_code1"),
    ],
)
def test_the_writer_refuses_bad_lines_naming_the_field(
    line: TransferLine, code: str, field_name: str
) -> None:
    with pytest.raises(MyKeyError) as caught:
        transfer_file(PAYER, [line], DAY)
    assert caught.value.code == code
    assert field_name in caught.value.message


def test_the_writer_refuses_a_bad_payer_and_an_empty_file() -> None:
    with pytest.raises(MyKeyError, match="requester_code"):
        transfer_file(replace(PAYER, requester_code="12345"), LINES, DAY)
    with pytest.raises(MyKeyError, match="deposit_type"):
        transfer_file(replace(PAYER, deposit_type=4), LINES, DAY)  # 貯蓄 cannot pay
    with pytest.raises(MyKeyError) as empty:
        transfer_file(PAYER, [], DAY)
    assert empty.value.code == "no_transfers"


# --- the reader names what is wrong --------------------------------------------------------


def good() -> list[bytes]:
    return records(transfer_file(PAYER, LINES, DAY))


def join(recs: list[bytes]) -> bytes:
    return b"".join(r + b"\r\n" for r in recs)


def put(
    record: bytes, layout: tuple[tuple[str, str, int, str], ...], name: str, value: bytes
) -> bytes:
    at = 0
    for f in layout:
        if f[0] == name:
            assert len(value) == f[2]
            return record[:at] + value + record[at + f[2] :]
        at += f[2]
    raise KeyError(name)


def test_a_short_record_is_named_with_its_length() -> None:
    recs = good()
    recs[2] = recs[2][:119]
    err = error_of(join(recs))
    assert err.details["record"] == 3 and err.details["length"] == 119
    assert "119 bytes" in err.message and "3件目" in err.message_ja


def test_a_stream_that_is_not_whole_records_is_refused() -> None:
    data = transfer_file(PAYER, LINES, DAY, crlf=False)
    err = error_of(data[:-1])
    assert err.details["record"] == 6 and err.details["length"] == 119


def test_a_character_outside_the_set_is_named_with_record_field_and_position() -> None:
    recs = good()
    recs[1] = put(recs[1], DATA, "holder_name", "ﾔﾏﾀﾞ".encode("shift_jis") + b"a" + b" " * 25)
    err = error_of(join(recs))
    assert (err.details["record"], err.details["field"]) == (2, "holder_name")
    assert err.details["position"] == 55  # 1+4+15+3+15+4+1+7 = 50, then the 5th character
    assert "受取人名" in err.message_ja
    recs = good()
    recs[1] = recs[1][:60] + "漢".encode("shift_jis") + recs[1][62:]
    assert error_of(join(recs)).details["field"] == "holder_name"


def test_record_order_is_checked() -> None:
    recs = good()
    err = error_of(join(recs[1:]))
    assert err.details["record"] == 1 and "header" in err.message
    err = error_of(join([recs[0], recs[4], recs[5]]))
    assert err.details["record"] == 2 and "data (2)" in err.message  # no transfers at all
    err = error_of(join([*recs[:4], recs[5]]))
    assert err.details["record"] == 5 and "trailer (8)" in err.message
    err = error_of(join(recs[:5]))
    assert err.details["record"] == 6 and "end (9)" in err.message
    err = error_of(join([*recs, recs[5]]))
    assert err.details["record"] == 7 and "nothing may follow" in err.message
    err = error_of(join([recs[0], recs[0], *recs[1:]]))
    assert err.details["record"] == 2


def test_the_trailer_count_and_total_must_match_the_data_records() -> None:
    recs = good()
    recs[4] = put(recs[4], TRAILER, "count", b"000002")
    err = error_of(join(recs))
    assert (err.details["record"], err.details["field"]) == (5, "count")
    assert "the file has 3" in err.message
    recs = good()
    recs[1] = put(recs[1], DATA, "amount", b"0000012346")  # one yen more than the trailer says
    err = error_of(join(recs))
    assert (err.details["record"], err.details["field"]) == (5, "total")
    assert "10,000,012,346" in err.message and "合計" in err.message_ja


@pytest.mark.parametrize(
    ("record", "layout", "name", "value"),
    [
        (0, HEADER, "type_code", b"11"),  # 給与 is not a general transfer
        (0, HEADER, "code_kind", b"1"),
        (0, HEADER, "transfer_date", b"1332"),
        (0, HEADER, "transfer_date", b"0230"),
        (0, HEADER, "requester_code", b"00000 2345"),
        (0, HEADER, "deposit_type", b"4"),
        (0, HEADER, "requester_name", b" " * 40),
        (0, HEADER, "dummy", b"X" + b" " * 16),
        (1, DATA, "amount", b"0000000000"),
        (1, DATA, "amount", b"      1234"),  # not zero-padded
        (1, DATA, "deposit_type", b"3"),
        (1, DATA, "holder_name", b" " * 30),
        (1, DATA, "holder_name", b" ABC" + b" " * 26),  # not left-aligned
        (1, DATA, "new_code", b"5"),
        (1, DATA, "transfer_kind", b"1"),
        (1, DATA, "edi_flag", b"N"),
        (4, TRAILER, "dummy", b"1" * 101),
        (5, END, "dummy", b"9" * 119),
    ],
)
def test_each_field_is_checked(
    record: int,
    layout: tuple[tuple[str, str, int, str], ...],
    name: str,
    value: bytes,
) -> None:
    recs = good()
    recs[record] = put(recs[record], layout, name, value)
    err = error_of(join(recs))
    assert err.details["record"] == record + 1
    assert err.details["field"] == name


def test_empty_input_and_a_lone_line_feed_are_refused() -> None:
    assert "empty" in error_of(b"").message
    data = transfer_file(PAYER, LINES, DAY).replace(b"\r\n", b"\n", 1)
    assert error_of(data).details["record"] == 1
