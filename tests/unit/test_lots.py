"""Which lots a debit takes and which a refund fills (pure rules)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mykey.ledger.lots import restore_lifo, take_fifo


def test_take_fifo_takes_in_the_order_given_and_stops_when_covered() -> None:
    assert take_fifo([(1, 100), (2, 300), (3, 50)], 250) == [(1, 100), (2, 150)]
    assert take_fifo([(1, 0), (2, 30)], 10) == [(2, 10)]
    assert take_fifo([(1, 100)], 150) == [(1, 100)]  # short: the caller refuses


def test_restore_lifo_fills_the_last_taken_first() -> None:
    assert restore_lifo([(1, 100), (2, 150)], 200) == [(2, 150), (1, 50)]
    with pytest.raises(ValueError, match="more than was taken"):
        restore_lifo([(1, 10)], 11)


@given(
    st.lists(st.integers(0, 1000), min_size=0, max_size=8),
    st.integers(1, 5000),
)
def test_take_then_restore_round_trips(remainders: list[int], amount: int) -> None:
    lots = list(enumerate(remainders))
    taken = take_fifo(lots, amount)
    total = sum(t for _, t in taken)
    assert total == min(amount, sum(remainders))
    assert all(0 < t <= dict(lots)[i] for i, t in taken)
    back = restore_lifo(taken, total)
    assert sorted(back) == sorted(taken)
