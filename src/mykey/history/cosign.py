"""C2SP tlog-cosignature v1 (Ed25519, signature type 0x04): witness keys and cosignatures.

    cosigner key  PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 ‖ 32-byte Ed25519 seed)>
    verifier key  <name>+<hex key id>+<base64(0x04 ‖ 32-byte Ed25519 public key)>
    key id        SHA-256(<name> ‖ 0x0A ‖ 0x04 ‖ public key)[:4]
    message       "cosignature/v1\\n" "time <POSIX seconds>\\n" <checkpoint text>
    line          — <name> base64(key id[4] ‖ timestamp u64 big-endian ‖ signature[64])

A cosignature says: "as of <time>, the largest consistent tree head I have observed for this
origin has this root". The same key also signs a witness's read requests to the log (a
different message prefix, so one can never be taken for the other).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from mykey.history.checkpoints import (
    SIG_PREFIX,
    NoteError,
    _check_name,
    _unb64,
    key_id,
    split_note,
)

COSIGNATURE = 0x04
REQUEST_TAG = "mykey-witness-read/v1\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def request_message(timestamp: int, target: str) -> bytes:
    """What a witness signs to read the log's record bytes: time and path with query."""
    return f"{REQUEST_TAG}{timestamp}\n{target}\n".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise NoteError("a verifier key is <name>+<8 hex digits>+<base64 key>")
        name, hex_id, key_b64 = parts
        _check_name(name)
        try:
            claimed = int(hex_id, 16)
        except ValueError as exc:
            raise NoteError("a key id is 8 hex digits") from exc
        raw = _unb64(key_b64)
        if len(raw) != 33 or raw[0] != COSIGNATURE:
            raise NoteError("a witness key is an Ed25519 cosignature key (type 0x04, 32 bytes)")
        if key_id(name, COSIGNATURE, raw[1:]) != claimed:
            raise NoteError("the key id does not match the key name and key")
        return cls(name, claimed, raw[1:])

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([COSIGNATURE]) + self.public_key)}"

    def _verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def verify_request(self, timestamp: int, target: str, signature: bytes) -> bool:
        return self._verify(request_message(timestamp, target), signature)

    def cosignature_in(self, note: str) -> int | None:
        """The timestamp of this witness's valid cosignature on the note, or None. A line
        with this key's name and id whose signature fails rejects the note (signed-note
        rules)."""
        text, sigs = split_note(note)
        for sig in sigs:
            if (sig.name, sig.key_id) != (self.name, self.key_id):
                continue
            if len(sig.signature) != 8 + 64:
                raise NoteError(f"the cosignature of {self.name} has the wrong length")
            (timestamp,) = struct.unpack(">Q", sig.signature[:8])
            if not self._verify(cosigned_message(text, timestamp), sig.signature[8:]):
                raise NoteError(f"the cosignature of {self.name} does not verify")
            return int(timestamp)
        return None


@dataclass(frozen=True)
class Cosigner:
    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        _check_name(name)
        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def from_key(cls, text: str) -> Cosigner:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a witness key is PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        name, hex_id, key_b64 = parts[2:]
        _check_name(name)
        raw = _unb64(key_b64)
        if len(raw) != 33 or raw[0] != COSIGNATURE:
            raise NoteError("a witness key is an Ed25519 cosignature key (type 0x04)")
        cosigner = cls(name, raw[1:])
        if f"{cosigner.key_id:08x}" != hex_id.lower():
            raise NoteError("the key id does not match the key name and key")
        return cosigner

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> int:
        return key_id(self.name, COSIGNATURE, self.public_key)

    def key_string(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{_b64(bytes([COSIGNATURE]) + self.seed)}"

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.key_id, self.public_key)

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """The cosignature line (with its final newline) for a checkpoint's text."""
        if timestamp <= 0:
            raise NoteError("a cosignature's timestamp is positive")
        signature = self._private.sign(cosigned_message(checkpoint_text, timestamp))
        payload = self.key_id.to_bytes(4, "big") + struct.pack(">Q", timestamp) + signature
        return f"{SIG_PREFIX}{self.name} {_b64(payload)}\n"

    def sign_request(self, timestamp: int, target: str) -> str:
        """The X-MyKey-Witness header value for a read request to the log."""
        signature = self._private.sign(request_message(timestamp, target))
        return f"{self.name} {timestamp} {_b64(signature)}"


def add_signatures(note: str, lines: list[str]) -> str:
    """The note with these signature lines appended (each once, none already present)."""
    split_note(note)
    present = set(note.split("\n"))
    extra = [line for line in lines if line.rstrip("\n") not in present]
    return note + "".join(dict.fromkeys(extra))


def log_only(note: str, log_name: str) -> str:
    """The note with only the log's own signature lines (cosignatures removed)."""
    text, _ = split_note(note)
    block = note[len(text) + 1 :]
    keep = [line for line in block.split("\n")[:-1] if line.startswith(f"{SIG_PREFIX}{log_name} ")]
    return text + "\n" + "".join(line + "\n" for line in keep)
