"""Pure rules for lots: which lots a debit takes, and which a refund puts back.

A debit takes the earliest-expiring lots first (then the oldest), so points are used before
they lapse. What a void or reversal puts back goes to the lots the debit took, latest-expiring
first, so that a partial refund leaves the resident the points that last longest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def take_fifo(open_lots: Iterable[tuple[int, int]], amount: int) -> list[tuple[int, int]]:
    """Given lots as (id, remaining) in expiry order, the (id, take) pairs covering `amount`.

    Takes as much as the lots hold; the caller compares the total with `amount`.
    """
    taken: list[tuple[int, int]] = []
    need = amount
    for lot_id, remaining in open_lots:
        if need <= 0:
            break
        if remaining <= 0:
            continue
        take = min(remaining, need)
        taken.append((lot_id, take))
        need -= take
    return taken


def restore_lifo(consumed: Sequence[tuple[int, int]], amount: int) -> list[tuple[int, int]]:
    """Given what a debit took as (id, taken) in the order taken, (id, give back) for `amount`."""
    if amount > sum(taken for _, taken in consumed):
        raise ValueError("cannot restore more than was taken")
    back: list[tuple[int, int]] = []
    need = amount
    for lot_id, taken in reversed(consumed):
        if need <= 0:
            break
        if taken <= 0:
            continue
        give = min(taken, need)
        back.append((lot_id, give))
        need -= give
    return back
