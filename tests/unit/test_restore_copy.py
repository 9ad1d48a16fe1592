"""A witness's copy that holds one record at two indices is not restored from (issue #13
item 10, review): the log cannot hold that tree (its leaves are unique by record), so a
restore from it would claim success and leave the log behind the witnesses."""

from __future__ import annotations

import pytest

from mykey.history.restore import RestoreError, records_once


def test_a_copy_naming_one_record_twice_is_refused() -> None:
    entries = [
        {"index": i, "kind": "transfer", "record_id": f"00000000-0000-0000-0000-00000000000{i}"}
        for i in range(5)
    ]
    records_once(entries)  # each record once: fine
    entries.append({**entries[2], "index": 5})
    with pytest.raises(RestoreError, match=r"entry 5: transfer .*2 is already entry 2"):
        records_once(entries)
    # the same id under another kind is another record
    records_once([entries[0], {**entries[0], "index": 1, "kind": "mykey_usage"}])


def test_a_witness_round_names_the_logs_problem_whole() -> None:
    from mykey.history.witness import problem_text

    body = (
        '{"code": "witness_only", "detail": "このログの証人ではないか、署名が古いか正しく'
        'ありません。", "detail_en": "Not a witness of this log."}'
    ).encode()
    assert problem_text(body) == "witness_only: Not a witness of this log."
    assert problem_text("あ".encode() * 200) == "あ" * 200  # whole characters
    assert problem_text(b"\xff oops") == "\ufffd oops"
