"""The JPKI application's APDUs: against the simulator's applet and a recorded session."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mykey.errors import MyKeyError
from mykey.identity.readers import (
    EF_AUTH_PIN,
    JpkiCard,
    PcscTransport,
    RecordedTransport,
    SoftJpkiApplet,
    TokenKind,
)
from mykey.identity.simulator import SimulatedCard, SimulatorCA

RECORDED = Path(__file__).parent / "data" / "jpki-session.json"
NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture(scope="module")
def card() -> SimulatedCard:
    return SimulatorCA.create(now=NOW - timedelta(days=1)).issue(now=NOW)


def test_a_recorded_session_replays_byte_for_byte_and_its_signature_verifies() -> None:
    session = json.loads(RECORDED.read_text())
    reader = JpkiCard(RecordedTransport([tuple(e) for e in session["exchanges"]]))
    message = bytes.fromhex(session["message"])

    assert reader.token_kind() is TokenKind.CARD
    der = reader.read_auth_certificate()
    assert reader.pin_tries_left() == 3
    signature = reader.sign_with_auth_key("4321", message)

    certificate = x509.load_der_x509_certificate(der)
    ca = x509.load_pem_x509_certificate(session["ca"].encode())
    certificate.verify_directly_issued_by(ca)
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    commands = [bytes.fromhex(c) for c, _ in session["exchanges"]]
    assert commands[0] == bytes.fromhex("00a4040c0ad392f000260100000001")  # SELECT JPKI
    assert bytes.fromhex("00a4020c02000a") in commands  # the authentication certificate
    assert any(
        c.startswith(bytes.fromhex("802a0080333031300d0609608648016503040201")) for c in commands
    )
    assert not any(c.startswith(bytes.fromhex("00a4020c020001")) for c in commands)


def test_the_applet_gives_the_certificate_and_signs_after_the_pin(card: SimulatedCard) -> None:
    reader = JpkiCard(SoftJpkiApplet(card, pin="1234"))
    assert reader.read_auth_certificate() == card.certificate_der
    signature = reader.sign_with_auth_key("1234", b"nonce")
    assert signature == card.sign(b"nonce")  # what the server's check expects


def test_long_answers_in_pieces_are_put_together(card: SimulatedCard) -> None:
    reader = JpkiCard(SoftJpkiApplet(card, pin="1234", chunk=64))
    assert reader.read_auth_certificate() == card.certificate_der
    assert reader.sign_with_auth_key("1234", b"nonce") == card.sign(b"nonce")


def test_wrong_pins_count_down_then_lock(card: SimulatedCard) -> None:
    reader = JpkiCard(SoftJpkiApplet(card, pin="1234"))
    for left in (2, 1):
        with pytest.raises(MyKeyError) as caught:
            reader.sign_with_auth_key("0000", b"nonce")
        assert (caught.value.code, caught.value.details["tries_left"]) == ("wrong_pin", left)
        assert reader.pin_tries_left() == left
    with pytest.raises(MyKeyError) as caught:
        reader.sign_with_auth_key("0000", b"nonce")
    assert caught.value.code == "pin_locked"
    with pytest.raises(MyKeyError) as caught:
        reader.sign_with_auth_key("1234", b"nonce")
    assert caught.value.code == "pin_locked"


def test_the_my_number_and_the_signing_certificate_are_never_selected(
    card: SimulatedCard,
) -> None:
    applet = SoftJpkiApplet(card)
    reader = JpkiCard(applet)
    with pytest.raises(MyKeyError) as caught:
        reader._select_application(bytes.fromhex("D3921000310001010408"))  # the text AP
    assert caught.value.code == "forbidden_application"
    with pytest.raises(MyKeyError) as caught:
        reader._select_file(0x0001)  # the signing certificate: name, address, birth date
    assert caught.value.code == "forbidden_file"
    assert applet.log == []  # refused before any byte reached the card
    assert EF_AUTH_PIN == 0x0018


def test_a_card_without_jpki_is_not_a_my_number_card() -> None:
    replay = RecordedTransport([("00a4040c0ad392f000260100000001", "6a82")])
    with pytest.raises(MyKeyError) as caught:
        JpkiCard(replay).read_auth_certificate()
    assert caught.value.code == "not_a_jpki_card"


def test_a_reader_needs_the_card_extra_or_a_reader() -> None:
    with pytest.raises(MyKeyError) as caught:
        PcscTransport()
    assert caught.value.code == "reader_unavailable"
