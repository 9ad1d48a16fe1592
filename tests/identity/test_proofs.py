"""Card proofs with simulator cards, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.identity.proofs import (
    TOKEN_LENGTH,
    CardProof,
    ChallengeKey,
    TrustAnchors,
    issue_challenge,
    revoke_card,
    verify_card_proof,
)
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from tests.conftest import Database
from tests.roundtrips import statements as _statements

START = datetime(2026, 10, 15, 3, 0, tzinfo=UTC)  # the test clock's start


@pytest.fixture(scope="module")
def ca() -> SimulatorCA:
    return SimulatorCA.create(now=START - timedelta(days=30))


@pytest.fixture(scope="module")
def card(ca: SimulatorCA) -> SimulatedCard:
    return ca.issue(now=START - timedelta(days=1))


@pytest.fixture(scope="module")
def anchors(ca: SimulatorCA) -> TrustAnchors:
    return TrustAnchors((ca.certificate,))


def prove(
    uow: UnitOfWork, card: SimulatedCard, anchors: TrustAnchors, asker: str | None = None
) -> CardProof:
    challenge = issue_challenge(uow, key=anchors.challenge_key, asker=asker)
    return CardProof(**card.proof(challenge.id, challenge.nonce))


def refusal(
    uow: UnitOfWork, proof: CardProof, anchors: TrustAnchors, asker: str | None = None
) -> MyKeyError:
    with pytest.raises(MyKeyError) as caught:
        verify_card_proof(uow, proof=proof, anchors=anchors, actor="terminal:T1", asker=asker)
    return caught.value


def test_a_good_proof_names_the_card_by_its_key_and_uses_up_the_challenge(
    uow: UnitOfWork, database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    proof = prove(uow, card, anchors)

    verified = verify_card_proof(uow, proof=proof, anchors=anchors, actor="terminal:T1")

    assert verified.card_key == card.card_key
    assert len(verified.card_key) == 64
    assert verified.not_after == card.certificate.not_valid_after_utc
    assert database.count("card_proof_attempts") == 0
    replayed = refusal(uow, proof, anchors)
    assert replayed.code == "challenge_used"
    assert database.count("card_proof_attempts") == 1


def test_an_expired_challenge_is_refused(
    uow: UnitOfWork, database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    proof = prove(uow, card, anchors)
    database.clock.advance(seconds=61)
    assert refusal(uow, proof, anchors).code == "challenge_expired"


def test_a_forged_signature_is_refused_and_burns_the_challenge(
    uow: UnitOfWork, database: Database, ca: SimulatorCA, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    thief = ca.issue(now=START)
    challenge = issue_challenge(uow, key=anchors.challenge_key, asker=None)
    # The certificate of `card` (public, copyable) with a signature by another key.
    forged = CardProof(
        certificate=card.proof(challenge.id, challenge.nonce)["certificate"],
        challenge_id=challenge.id,
        signature=thief.proof(challenge.id, challenge.nonce)["signature"],
    )

    error = refusal(uow, forged, anchors)

    assert error.code == "bad_signature"
    assert error.kind is ErrorKind.REFUSED
    honest = CardProof(**card.proof(challenge.id, challenge.nonce))
    assert refusal(uow, honest, anchors).code == "challenge_used"


def test_a_card_from_another_authority_is_untrusted(uow: UnitOfWork, anchors: TrustAnchors) -> None:
    rogue = SimulatorCA.create(now=START - timedelta(days=1), name="Rogue").issue(now=START)
    assert refusal(uow, prove(uow, rogue, anchors), anchors).code == "untrusted_card"


def test_an_expired_certificate_is_refused(
    uow: UnitOfWork, database: Database, ca: SimulatorCA, anchors: TrustAnchors
) -> None:
    short = ca.issue(now=START, valid_for=timedelta(days=2))
    database.clock.advance(days=3)
    assert refusal(uow, prove(uow, short, anchors), anchors).code == "card_expired"


def test_a_revoked_card_is_refused_by_the_table_and_by_the_crl(
    uow: UnitOfWork, ca: SimulatorCA, anchors: TrustAnchors
) -> None:
    lost = ca.issue(now=START)
    verify_card_proof(uow, proof=prove(uow, lost, anchors), anchors=anchors, actor="terminal:T1")
    revoke_card(uow, card_key=lost.card_key, reason="reported lost", actor="staff:1")
    revoke_card(uow, card_key=lost.card_key, reason="reported lost", actor="staff:1")
    assert refusal(uow, prove(uow, lost, anchors), anchors).code == "card_revoked"

    reissued = ca.issue(now=START)
    with_crl = replace(anchors, crls=(ca.crl(now=START, revoked=[reissued.certificate]),))
    assert refusal(uow, prove(uow, reissued, anchors), with_crl).code == "card_revoked"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("certificate", "not base64!"),
        ("certificate", base64.b64encode(b"not a certificate").decode()),
        ("signature", ""),
        ("challenge_id", "short"),
    ],
)
def test_malformed_proofs_are_invalid_and_recorded(
    uow: UnitOfWork,
    database: Database,
    card: SimulatedCard,
    anchors: TrustAnchors,
    field: str,
    value: str,
) -> None:
    proof = replace(prove(uow, card, anchors), **{field: value})
    error = refusal(uow, proof, anchors)
    assert error.code == "invalid_card_proof"
    assert error.kind is ErrorKind.INVALID
    assert database.count("card_proof_attempts") == 1


def test_an_unknown_challenge_is_not_found(
    uow: UnitOfWork, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    proof = CardProof(**card.proof("00000000-0000-4000-8000-000000000000", b"x" * 32))
    assert refusal(uow, proof, anchors).code == "unknown_challenge"


def test_no_field_of_the_certificate_is_stored(
    uow: UnitOfWork, database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    verify_card_proof(uow, proof=prove(uow, card, anchors), anchors=anchors, actor="terminal:T1")
    refusal(
        uow, replace(prove(uow, card, anchors), signature=base64.b64encode(b"x").decode()), anchors
    )
    cn = card.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    serial = str(card.certificate.serial_number)
    der = card.certificate.public_bytes(serialization.Encoding.DER)
    with database.engine.connect() as conn:
        dump = "\n".join(
            repr(tuple(row))
            for table in ("card_challenge_uses", "card_proof_attempts")
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
        )
    assert str(cn) not in dump
    assert serial not in dump
    assert base64.b64encode(der).decode()[:40] not in dump
    assert card.card_key in dump  # the failed attempt names the card by its key only


def test_simulated_cards_survive_a_round_trip_through_files(
    tmp_path: object, ca: SimulatorCA, card: SimulatedCard
) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    ca.save(folder)
    again = SimulatorCA.load(folder)
    assert again.certificate == ca.certificate
    copy = SimulatedCard.from_json(card.to_json())
    assert copy.card_key == card.card_key
    assert copy.sign(b"nonce") == card.sign(b"nonce")  # PKCS#1 v1.5 is deterministic
    anchors = TrustAnchors.from_files(folder / "ca.pem")
    assert anchors.certificates == (ca.certificate,)


def test_a_certificate_not_made_for_authentication_is_refused(
    uow: UnitOfWork, ca: SimulatorCA, anchors: TrustAnchors
) -> None:
    # The CA's own certificate (self-issued, so it "chains") signed by the CA's key.
    as_card = SimulatedCard(ca.key, ca.certificate)
    assert refusal(uow, prove(uow, as_card, anchors), anchors).code == "untrusted_card"


def test_keys_are_bound_as_their_role_requires(uow: UnitOfWork) -> None:
    from mykey.identity.keys import Role, authenticate, create_key, revoke_key

    key, principal = create_key(uow, role="municipality_staff", label="津市", municipality="242012")
    assert authenticate(uow, key) == principal
    assert principal.role is Role.MUNICIPALITY_STAFF
    for kwargs, code in (
        ({"role": "terminal"}, "invalid_key_binding"),
        ({"role": "operator", "provider_id": "A1"}, "invalid_key_binding"),
        ({"role": "municipality_staff", "municipality": "242013"}, "invalid_municipality_code"),
        ({"role": "janitor"}, "invalid_role"),
        ({"role": "terminal", "provider_id": "ZZ"}, "unknown_provider"),
    ):
        with pytest.raises(MyKeyError) as caught:
            create_key(uow, label="x", **kwargs)  # type: ignore[arg-type]
        assert caught.value.code == code
    revoke_key(uow, principal.key_id)
    with pytest.raises(MyKeyError) as caught:
        authenticate(uow, key)
    assert caught.value.code == "invalid_api_key"


def test_issuing_a_challenge_makes_no_database_statement(
    database: Database, anchors: TrustAnchors
) -> None:
    uow = database.uow()
    with _statements(database.engine) as seen:
        challenges = [
            issue_challenge(uow, key=anchors.challenge_key, asker=asker)
            for asker in (None, "bearer:terminal-key", "staff:1")
        ]

    assert seen == []  # no statement, not even a connection taken from the pool
    assert all(len(c.id) == TOKEN_LENGTH and len(c.nonce) == 32 for c in challenges)
    assert len({c.id for c in challenges}) == 3
    assert all(c.expires_at == START + timedelta(seconds=60) for c in challenges)


def test_a_good_proof_reads_no_challenge_and_writes_one_small_use(
    database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    uow = database.uow()
    proof = prove(uow, card, anchors)
    with _statements(database.engine) as seen:
        verify_card_proof(uow, proof=proof, anchors=anchors, actor="terminal:T1")

    assert not [s for s in seen if "card_challenges" in s]  # nothing read, nothing written
    assert len([s for s in seen if "card_challenge_uses" in s]) == 1  # the one insert
    assert database.count("card_challenges") == 0
    with database.engine.connect() as conn:
        (use_id,) = conn.exec_driver_sql("SELECT challenge_id FROM card_challenge_uses").one()
    assert len(use_id) == 36  # the challenge's id, not its token


def test_a_forged_challenge_is_unknown_and_burns_nothing(
    uow: UnitOfWork, database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    good = prove(uow, card, anchors)
    token = good.challenge_id
    altered = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]  # another expiry, id…
    other_server = issue_challenge(uow, key=ChallengeKey.from_secret("another secret"), asker=None)
    forged = [
        CardProof(**card.proof(altered, base64.urlsafe_b64decode(token + "=")[-32:])),
        CardProof(**card.proof(other_server.id, other_server.nonce)),  # or a rotated key's
        CardProof(**card.proof("00000000-0000-4000-8000-000000000000", b"x" * 32)),  # pre-#14
    ]

    for proof in forged:
        error = refusal(uow, proof, anchors)
        assert (error.code, error.kind) == ("unknown_challenge", ErrorKind.NOT_FOUND)

    assert database.count("card_challenge_uses") == 0
    assert database.count("card_proof_attempts") == 3  # recorded, with no challenge id
    with database.engine.connect() as conn:
        ids = conn.exec_driver_sql("SELECT challenge_id FROM card_proof_attempts").scalars()
        assert set(ids) == {None}
    verify_card_proof(uow, proof=good, anchors=anchors, actor="terminal:T1")  # still good


def test_a_challenge_asked_for_by_one_terminal_is_refused_to_another_and_kept_for_it(
    uow: UnitOfWork, database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    mine = prove(uow, card, anchors, asker="bearer:key-of-T1")

    for other in ("bearer:key-of-T2", None):  # another terminal, or a request with no key
        error = refusal(uow, mine, anchors, asker=other)
        assert (error.code, error.kind) == ("challenge_not_yours", ErrorKind.REFUSED)

    assert database.count("card_proof_attempts") == 2  # recorded
    assert database.count("card_challenge_uses") == 0  # not spoilt for the one who asked
    verified = verify_card_proof(
        uow, proof=mine, anchors=anchors, actor="terminal:T1", asker="bearer:key-of-T1"
    )
    assert verified.card_key == card.card_key
    assert refusal(uow, mine, anchors, asker="bearer:key-of-T1").code == "challenge_used"
    # a challenge asked for without a key is anyone's, as every challenge was before
    anyones = prove(uow, card, anchors)
    verify_card_proof(uow, proof=anyones, anchors=anchors, actor="terminal:T2", asker="bearer:x")


def test_an_expired_challenge_is_used_up_and_recorded_with_its_id(
    uow: UnitOfWork, database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    proof = prove(uow, card, anchors)
    database.clock.advance(seconds=60)

    assert refusal(uow, proof, anchors).code == "challenge_expired"
    assert refusal(uow, proof, anchors).code == "challenge_used"  # the failure used it up

    assert database.count("card_challenge_uses") == 1
    with database.engine.connect() as conn:
        attempts = conn.exec_driver_sql(
            "SELECT challenge_id, card_key, outcome FROM card_proof_attempts"
        ).all()
    assert len(attempts) == 2
    assert sorted((len(a[0]), a[1], a[2]) for a in attempts) == [
        (36, card.card_key, "challenge_expired"),
        (36, card.card_key, "challenge_used"),
    ]


def test_twin_proofs_sent_at_once_use_the_challenge_once(
    database: Database, card: SimulatedCard, anchors: TrustAnchors
) -> None:
    """The unique key is the whole single-use check: twins that both pass every check in
    memory are settled by the insert (the second waits for the first, then finds its row)."""
    proof = prove(database.uow(), card, anchors)
    start = threading.Barrier(2)

    def verify() -> str:
        uow = database.uow()
        start.wait()
        try:
            verify_card_proof(uow, proof=proof, anchors=anchors, actor="terminal:T1")
        except MyKeyError as error:
            return error.code
        return "ok"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: verify(), range(2)))

    assert outcomes == ["challenge_used", "ok"]
    assert database.count("card_challenge_uses") == 1
