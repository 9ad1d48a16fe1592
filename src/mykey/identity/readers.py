"""Card readers: the JPKI application's APDUs over any transport (PC/SC, simulator, replay).

Only the JPKI application (公的個人認証AP) is ever selected, and in it only the files for the
user-authentication certificate and key (research/jpki-card.md §1–2). The My Number lives in
another application (券面事項入力補助AP) and the signing certificate (which carries name,
address, birth date and sex) in EF 0001: an allow-list refuses both before any byte reaches the
card.

The APDUs (hex):

    00 A4 04 0C 0A D392F000260100000001     SELECT the JPKI application        -> 9000
    00 A4 02 0C 02 0006 ; 00 B0 00 00 20     token label "JPKIAPICCTOKEN2"      -> 32 bytes 9000
    00 A4 02 0C 02 000A ; 00 B0 00 00 04     certificate header 30 82 LL LL     -> 9000
    00 B0 <offset> <length ≤ FF> …           the rest of the DER, never past its end
    00 A4 02 0C 02 0018 ; 00 20 00 80        PIN tries left                     -> 63 Cx
    00 20 00 80 04 <4 ASCII digits>          VERIFY the PIN                      -> 9000 | 63 Cx
    00 A4 02 0C 02 0017                      the user-authentication key
    80 2A 00 80 33 <DigestInfo SHA-256> 00   COMPUTE DIGITAL SIGNATURE           -> 256 bytes 9000

`61 xx` (more data: GET RESPONSE) and `6C xx` (wrong length: repeat with Le = xx) are handled in
one place. A PC/SC session is exclusive and resets the card on disconnect, so the verified PIN
never outlives one proof.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from mykey.errors import ErrorKind, MyKeyError, refused
from mykey.identity.simulator import SimulatedCard

JPKI_AID = bytes.fromhex("D392F000260100000001")
EF_TOKEN, EF_AUTH_CERT, EF_AUTH_CA, EF_AUTH_KEY, EF_AUTH_PIN = (
    0x0006,
    0x000A,
    0x000B,
    0x0017,
    0x0018,
)
ALLOWED_APPLICATIONS = frozenset({JPKI_AID})
ALLOWED_FILES = frozenset({EF_TOKEN, EF_AUTH_CERT, EF_AUTH_CA, EF_AUTH_KEY, EF_AUTH_PIN})
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
OK = b"\x90\x00"


class TokenKind(StrEnum):
    CARD = "JPKIAPICCTOKEN2"  # My Number card
    ANDROID = "JPKIAPGPSETOKEN"  # smartphone certificate (Android)
    IPHONE = "JPKIAPIOSTOKEN"
    JUKI = "JPKIAPICCTOKEN"  # the old 住基カード


class CardTransport(Protocol):
    """One ISO 7816-4 exchange: command APDU in, response (data + SW1 SW2) out."""

    def transmit(self, apdu: bytes) -> bytes: ...

    def close(self) -> None: ...


def card_error(code: str, message: str, message_ja: str, **details: Any) -> MyKeyError:
    return refused(code, message, message_ja, **details)


class JpkiCard:
    """Speaks the JPKI application's APDUs over a transport; the only place that builds them."""

    def __init__(self, transport: CardTransport) -> None:
        self.transport = transport

    # -- transport, in one place ---------------------------------------------------------------

    def _exchange(self, apdu: bytes) -> tuple[bytes, bytes]:
        response = self.transport.transmit(apdu)
        data, sw = response[:-2], response[-2:]
        if sw[0] == 0x6C:  # wrong Le: repeat with the length the card asks for
            response = self.transport.transmit(apdu[:-1] + sw[1:2])
            data, sw = response[:-2], response[-2:]
        while sw[0] == 0x61:  # more data waiting: GET RESPONSE
            more = self.transport.transmit(bytes([0x00, 0xC0, 0x00, 0x00, sw[1]]))
            data, sw = data + more[:-2], more[-2:]
        return data, sw

    def _check(self, sw: bytes, doing: str) -> None:
        if sw != OK:
            raise card_error(
                "card_error",
                f"The card answered {sw.hex().upper()} to {doing}.",
                f"カードが {doing} に {sw.hex().upper()} を返しました。",
                status=sw.hex(),
            )

    def _select_application(self, aid: bytes) -> None:
        if aid not in ALLOWED_APPLICATIONS:
            raise card_error(
                "forbidden_application",
                "Only the JPKI application may be selected (never the My Number's).",
                "公的個人認証AP以外は選択しません（マイナンバーのAPは読みません）。",
            )
        _, sw = self._exchange(bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid)
        if sw == bytes.fromhex("6A82"):
            raise card_error(
                "not_a_jpki_card",
                "This is not a My Number card (no JPKI application).",
                "マイナンバーカードではありません（公的個人認証APがありません）。",
            )
        self._check(sw, "SELECT JPKI")

    def _select_file(self, fid: int) -> None:
        if fid not in ALLOWED_FILES:
            raise card_error(
                "forbidden_file",
                f"File {fid:04X} is never read (it holds personal data).",
                f"ファイル {fid:04X} は個人情報を含むため読みません。",
            )
        _, sw = self._exchange(bytes([0x00, 0xA4, 0x02, 0x0C, 0x02, fid >> 8, fid & 0xFF]))
        self._check(sw, f"SELECT {fid:04X}")

    def _read(self, offset: int, length: int) -> bytes:
        data, sw = self._exchange(
            bytes([0x00, 0xB0, (offset >> 8) & 0x7F, offset & 0xFF, length & 0xFF])
        )
        self._check(sw, "READ BINARY")
        return data

    # -- what a terminal asks of the card --------------------------------------------------------

    def token_kind(self) -> TokenKind:
        self._select_application(JPKI_AID)
        self._select_file(EF_TOKEN)
        label = self._read(0, 0x20).rstrip(b" \x00").decode("ascii", "replace")
        try:
            return TokenKind(label)
        except ValueError:
            raise card_error(
                "not_a_jpki_card",
                f"Unknown JPKI token {label!r}.",
                f"不明なトークン {label!r} です。",
            ) from None

    def read_auth_certificate(self) -> bytes:
        """The user-authentication certificate (DER); readable without the PIN."""
        self._select_application(JPKI_AID)
        self._select_file(EF_AUTH_CERT)
        head = self._read(0, 4)
        if len(head) != 4 or head[0] != 0x30 or head[1] != 0x82:
            raise card_error(
                "card_error", "The certificate file is not DER.", "証明書の形式が不正です。"
            )
        total = 4 + int.from_bytes(head[2:4], "big")
        body = bytearray(head)
        while len(body) < total:
            chunk = self._read(len(body), min(0xFF, total - len(body)))
            if not chunk:
                break
            body += chunk
        return bytes(body[:total])

    def pin_tries_left(self) -> int:
        self._select_application(JPKI_AID)
        self._select_file(EF_AUTH_PIN)
        _, sw = self._exchange(bytes([0x00, 0x20, 0x00, 0x80]))
        if sw[0] == 0x63 and sw[1] & 0xF0 == 0xC0:
            return sw[1] & 0x0F
        return 0 if sw in (bytes.fromhex("6983"), bytes.fromhex("6984")) else 3

    def sign_with_auth_key(self, pin: str, message: bytes) -> bytes:
        """VERIFY the PIN, then sign SHA-256(message) with the user-authentication key."""
        if len(pin) != 4 or not pin.isascii() or not pin.isdigit():
            raise MyKeyError(
                "invalid_pin",
                ErrorKind.INVALID,
                "The PIN is 4 digits.",
                "暗証番号は数字 4 桁です。",
            )
        self._select_application(JPKI_AID)
        self._select_file(EF_AUTH_PIN)
        _, sw = self._exchange(bytes([0x00, 0x20, 0x00, 0x80, 0x04]) + pin.encode())
        if sw in (bytes.fromhex("6983"), bytes.fromhex("6984"), bytes.fromhex("63C0")):
            raise card_error(
                "pin_locked",
                "The PIN is locked; the card must be reset at the town hall.",
                "暗証番号がロックされています。市区町村の窓口で初期化してください。",
            )
        if sw[0] == 0x63:
            raise card_error(
                "wrong_pin",
                f"Wrong PIN; {sw[1] & 0x0F} tries left.",
                f"暗証番号が違います（残り {sw[1] & 0x0F} 回）。",
                tries_left=sw[1] & 0x0F,
            )
        self._check(sw, "VERIFY")
        self._select_file(EF_AUTH_KEY)
        digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        data, sw = self._exchange(
            bytes([0x80, 0x2A, 0x00, 0x80, len(digest_info)]) + digest_info + b"\x00"
        )
        self._check(sw, "COMPUTE DIGITAL SIGNATURE")
        return data


class SoftJpkiApplet:
    """The JPKI application of a simulated card, answering APDUs as the real one does.

    `chunk` makes it answer long responses with `61 xx`, as T=0 contact readers do.
    """

    def __init__(self, card: SimulatedCard, *, pin: str = "1234", chunk: int | None = None):
        self.card = card
        self.pin = pin
        self.tries = 3
        self.chunk = chunk
        self.selected_app = False
        self.selected_file: int | None = None
        self.verified = False
        self.pending = b""
        self.log: list[tuple[str, str]] = []

    def _respond(self, data: bytes, sw: bytes = OK) -> bytes:
        if self.chunk is not None and len(data) > self.chunk:
            self.pending = data[self.chunk :]
            return data[: self.chunk] + bytes([0x61, min(len(self.pending), 0xFF)])
        return data + sw

    def transmit(self, apdu: bytes) -> bytes:
        response = self._handle(apdu)
        self.log.append((apdu.hex(), response.hex()))
        return response

    def _handle(self, apdu: bytes) -> bytes:
        cla, ins, p1, p2 = apdu[:4]
        if (cla, ins) == (0x00, 0xC0):
            part, self.pending = self.pending[: apdu[4] or 256], self.pending[apdu[4] or 256 :]
            return part + (bytes([0x61, min(len(self.pending), 0xFF)]) if self.pending else OK)
        if (cla, ins, p1) == (0x00, 0xA4, 0x04):
            self.selected_app = apdu[5 : 5 + apdu[4]] == JPKI_AID
            self.verified = False
            return OK if self.selected_app else bytes.fromhex("6A82")
        if not self.selected_app:
            return bytes.fromhex("6985")
        if (cla, ins, p1) == (0x00, 0xA4, 0x02):
            self.selected_file = int.from_bytes(apdu[5:7], "big")
            return OK
        if (cla, ins) == (0x00, 0xB0):
            offset, length = ((p1 & 0x7F) << 8) | p2, apdu[4] or 256
            if self.selected_file == EF_TOKEN:
                content = TokenKind.CARD.value.encode().ljust(32, b" ")
            elif self.selected_file == EF_AUTH_CERT:
                content = self.card.certificate_der
            else:
                return bytes.fromhex("6982")
            return self._respond(content[offset : offset + length])
        if (cla, ins) == (0x00, 0x20) and self.selected_file == EF_AUTH_PIN:
            if self.tries == 0:
                return bytes.fromhex("6983")
            if len(apdu) == 4:
                return bytes([0x63, 0xC0 | self.tries])
            if apdu[5 : 5 + apdu[4]].decode() == self.pin:
                self.tries, self.verified = 3, True
                return OK
            self.tries -= 1
            return bytes([0x63, 0xC0 | self.tries])
        if (cla, ins) == (0x80, 0x2A):
            if not self.verified or self.selected_file != EF_AUTH_KEY:
                return bytes.fromhex("6982")
            digest_info = apdu[5 : 5 + apdu[4]]
            if not digest_info.startswith(SHA256_DIGEST_INFO):
                return bytes.fromhex("6A80")
            digest = digest_info[len(SHA256_DIGEST_INFO) :]
            signature = self.card.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
            return self._respond(signature)
        return bytes.fromhex("6D00")

    def close(self) -> None:
        self.verified = False


class RecordedTransport:
    """Replays a recorded session: each command must be the one recorded, answered as then."""

    def __init__(self, exchanges: Sequence[tuple[str, str]]) -> None:
        self.exchanges = list(exchanges)
        self.position = 0

    @classmethod
    def from_file(cls, path: Path) -> RecordedTransport:
        return cls([(c, r) for c, r in json.loads(path.read_text())])

    def transmit(self, apdu: bytes) -> bytes:
        command, response = self.exchanges[self.position]
        if apdu.hex() != command:
            raise AssertionError(f"APDU {self.position}: sent {apdu.hex()}, recorded {command}")
        self.position += 1
        return bytes.fromhex(response)

    def close(self) -> None:
        return None


class PcscTransport:
    """A real reader through PC/SC (`pip install mykey[card]`, pyscard; pcscd running)."""

    def __init__(self, reader_name: str | None = None) -> None:
        try:
            # pyscard is the optional extra `mykey[card]`, and ships no type information.
            from smartcard import scard  # type: ignore[import-not-found]
            from smartcard.System import readers  # type: ignore[import-not-found]
        except ImportError:
            raise card_error(
                "reader_unavailable",
                "PC/SC support is not installed: pip install 'mykey[card]'.",
                "カードリーダーの機能がインストールされていません。",
            ) from None
        available = [r for r in readers() if reader_name is None or reader_name in str(r)]
        if not available:
            raise card_error(
                "reader_unavailable", "No card reader found.", "カードリーダーが見つかりません。"
            )
        self.connection = available[0].createConnection()
        self.connection.connect(
            mode=scard.SCARD_SHARE_EXCLUSIVE, disposition=scard.SCARD_RESET_CARD
        )

    def transmit(self, apdu: bytes) -> bytes:
        data, sw1, sw2 = self.connection.transmit(list(apdu))
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        self.connection.disconnect()
