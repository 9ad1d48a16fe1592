"""The log's signing key (issue #13): a log refuses to sign or write with a key that is not
its current key; the key changes only by a rotation recorded in the log itself, signed by both
keys and committed to by a checkpoint under the previous key."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import insert

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError
from mykey.history import audit
from mykey.history import log as hlog
from mykey.history.checkpoints import Signer, open_checkpoint
from mykey.history.encoding import PUBLIC_SALT, commitment, parse_leaf, record_of
from mykey.history.keys import ROTATIONS, Rotation, key_history, salt_key_id
from mykey.history.log import CheckpointJob, HistoryLog, rotate_key
from mykey.history.witnessing import key_rotations
from tests.builders import grant, town, wallet
from tests.conftest import LOG, LOG_SIGNER, Database


def _key(seed: int) -> Signer:
    """A key of the test log (same name, so same origin), distinct per test."""
    return Signer(LOG_SIGNER.name, bytes([seed]) * 32)


def test_a_log_started_with_another_key_signs_and_writes_nothing(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    hlog.make_checkpoint(uow, LOG_SIGNER)
    other = HistoryLog(_key(41))
    with pytest.raises(MyKeyError) as refused:
        hlog.make_checkpoint(uow, other)
    assert refused.value.code == "log_key_mismatch"
    assert f"{LOG_SIGNER.name}+{LOG_SIGNER.key_id:08x}" in refused.value.message
    assert f"{LOG_SIGNER.name}+{_key(41).key_id:08x}" in refused.value.message
    assert "MYKEY_LOG_SIGNING_KEY" in refused.value.message and refused.value.message_ja
    # The background checkpointer refuses too, and a write through the wrong log leaves
    # neither a transfer nor a leaf.
    with pytest.raises(MyKeyError):
        CheckpointJob(lambda: database.uow(), other, seconds=1).run_once()
    wrong = UnitOfWork(database.engine, clock=database.clock, log=other)
    with pytest.raises(MyKeyError) as refused:
        grant(wrong, t, w, 5)
    assert refused.value.code == "log_key_mismatch"
    assert database.count("ledger_transfers") == database.count("history_leaves") == 1
    # A key of another name (another deployment's) is named, and so is the log's.
    stranger = Signer("elsewhere.test.invalid/tx", bytes([43]) * 32)
    with pytest.raises(MyKeyError) as refused:
        hlog.make_checkpoint(uow, HistoryLog(stranger))
    assert refused.value.code == "log_key_mismatch"
    for message in (refused.value.message, refused.value.message_ja):
        assert f"{LOG_SIGNER.name}+{LOG_SIGNER.key_id:08x}" in message
        assert f"{stranger.name}+{stranger.key_id:08x}" in message
    # A salt key other than the log's is refused as well (the leaves would not match).
    with pytest.raises(MyKeyError) as refused:
        hlog.make_checkpoint(uow, HistoryLog(LOG_SIGNER, salt_key=bytes(32)))
    assert refused.value.code == "log_salt_key_mismatch"
    # The log's own key goes on as before (an existing log keeps working).
    grant(uow, t, w, 7)
    assert hlog.make_checkpoint(uow, LOG).checkpoint.size == 2
    assert audit.verify(uow, LOG).ok


def test_a_rotation_is_an_entry_of_the_log_signed_by_both_keys(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    for amount in (100, 200, 300):
        grant(uow, t, w, amount)
    first = hlog.make_checkpoint(uow, LOG).checkpoint
    new = _key(42)
    done = rotate_key(uow, LOG, new)
    # The rotation is entry 3; the handoff is signed with the previous key and includes it.
    assert (done.index, done.resumed) == (3, False)
    handoff = open_checkpoint(done.handoff.note, LOG_SIGNER.verifier())
    assert handoff.size == 4 > done.index
    r = done.rotation
    assert (r.old_key, r.new_key) == (LOG_SIGNER.verifier().vkey(), new.verifier().vkey())
    assert r.salt_key_id == salt_key_id(LOG.salt_key) and r.problem() is None
    assert LOG_SIGNER.verifier().verify(r.statement(), base64.b64decode(r.old_signature))
    assert new.verifier().verify(r.statement(), base64.b64decode(r.new_signature))
    # Its leaf is public: no secret salt, anyone can check the record against it.
    entry = hlog.entries(uow, start=3, end=4)[0]
    assert (entry.kind, entry.record_id) == ("key_rotation", "1")
    record = record_of("key_rotation", r.payload())
    assert parse_leaf(entry.leaf).commitment == commitment(PUBLIC_SALT, record.data)
    listed = key_rotations(uow)
    assert [(x["number"], x["index"], x["handoff_size"]) for x in listed] == [(1, 3, 4)]
    assert listed[0]["checkpoint"] == done.handoff.note
    history = uow.run(lambda: key_history(uow.connection))
    assert history.current == new.verifier().vkey() and history.problems == ()
    assert (history.key_for(first.size), history.key_for(4), history.key_for(5)) == (
        r.old_key,
        r.old_key,
        r.new_key,
    )

    # From now on the previous key signs nothing, and the new key needs the log's salt key.
    with pytest.raises(MyKeyError) as refused:
        hlog.make_checkpoint(uow, LOG)
    assert refused.value.code == "log_key_mismatch"
    with pytest.raises(MyKeyError) as refused:
        hlog.make_checkpoint(uow, HistoryLog(new))
    assert refused.value.code == "log_salt_key_mismatch"
    rotated = HistoryLog(new, salt_key=LOG.salt_key)
    after = UnitOfWork(database.engine, clock=database.clock, log=rotated)
    assert audit.verify(after, rotated).ok  # the latest checkpoint is the handoff
    grant(after, t, w, 400)
    latest = hlog.make_checkpoint(after, rotated)
    assert open_checkpoint(latest.note, new.verifier()).size == 5
    report = audit.verify(after, rotated)
    assert report.ok, report.findings
    # Another rotation must start from the current key.
    with pytest.raises(MyKeyError) as refused:
        rotate_key(uow, LOG, _key(43))
    assert refused.value.code == "log_key_mismatch"


def test_a_recorded_rotation_is_finished_by_running_it_again(
    uow: UnitOfWork, database: Database
) -> None:
    """If the process stops between the record and the handoff, the new key may not sign
    (nothing under the previous key commits to the change yet); the same command finishes."""
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    hlog.make_checkpoint(uow, LOG)
    new = _key(44)
    rotation = Rotation.signed(1, LOG_SIGNER, new, salt_key_id(LOG.salt_key), database.clock())
    with uow:  # what `rotate_key` writes first, without the handoff after it
        LOG.append(uow.connection, "key_rotation", rotation.payload())
        uow.connection.execute(insert(ROTATIONS).values(rotation.payload()))
        uow.commit()
    rotated = HistoryLog(new, salt_key=LOG.salt_key)
    with pytest.raises(MyKeyError) as refused:
        hlog.make_checkpoint(uow, rotated)
    assert refused.value.code == "log_key_rotation_unfinished"
    with pytest.raises(MyKeyError) as refused:
        rotate_key(uow, LOG, _key(45))  # another new key while one is pending
    assert refused.value.code == "key_rotation_refused"
    done = rotate_key(uow, LOG, new)
    assert done.resumed and done.handoff.checkpoint.size == 2
    assert hlog.make_checkpoint(uow, rotated).checkpoint.size == 2  # signed already


def test_a_rotation_keeps_the_origin_and_changes_the_key(uow: UnitOfWork) -> None:
    t = town(uow)
    grant(uow, t, wallet(uow, t), 100)
    hlog.make_checkpoint(uow, LOG)
    for bad, why in ((Signer("other.invalid/log", bytes([46]) * 32), "name"), (LOG_SIGNER, "same")):
        with pytest.raises(MyKeyError) as refused:
            rotate_key(uow, LOG, bad)
        assert refused.value.code == "key_rotation_refused", why
    assert uow.run(lambda: key_history(uow.connection)).steps == ()
