"""C2SP signed notes (Ed25519) and tlog-checkpoints: make, sign, parse and verify them.

Reusable as they are by a witness (part 2): `Signer` / `Verifier` for any key name, `sign_note`
adds signature lines to a note, `open_note` checks a note against known verifier keys and
ignores unknown signatures (so cosignatures can be added later), `Checkpoint` is the body.

Formats (c2sp.org/signed-note v1.0.0, c2sp.org/tlog-checkpoint v1.0.0):

    signer key   PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte Ed25519 seed)>
    verifier key <name>+<hex key id>+<base64(0x01 ‖ 32-byte Ed25519 public key)>
    key id       SHA-256(<name> ‖ 0x0A ‖ 0x01 ‖ public key)[:4], big-endian uint32
    note         <text, every line ending in \\n>\\n— <name> <base64(key id ‖ signature)>\\n…
    checkpoint   <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[extension lines]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # EM DASH and a space
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A malformed key, note or checkpoint, or a signature that does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"not base64: {text[:20]!r}") from exc


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"bad key name {name!r}: non-empty, no spaces, no '+'")


def key_id(name: str, key_type: int, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)  # base64 may contain '+'
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<hex id>+<base64 key>")
        name, hex_id, key_b64 = parts
        _check_name(name)
        if len(hex_id) != 8:
            raise NoteError("a key id is 8 hex digits")
        try:
            claimed = int(hex_id, 16)
        except ValueError as exc:
            raise NoteError("a key id is 8 hex digits") from exc
        raw = _unb64(key_b64)
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
        if key_id(name, ED25519, raw[1:]) != claimed:
            raise NoteError("the key id does not match the key name and key")
        return cls(name, claimed, raw[1:])

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([ED25519]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def from_key(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        name, hex_id, key_b64 = parts[2:]
        _check_name(name)
        raw = _unb64(key_b64)
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 signer keys (type 0x01, 32-byte seed) are supported")
        signer = cls(name, raw[1:])
        if f"{signer.key_id:08x}" != hex_id.lower():
            raise NoteError("the key id does not match the key name and key")
        return signer

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return _raw_public(self._private.public_key())

    @property
    def key_id(self) -> int:
        return key_id(self.name, ED25519, self.public_key)

    def key_string(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{_b64(bytes([ED25519]) + self.seed)}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    for c in text:
        if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F:
            raise NoteError("note text contains a control character")


def sign_note(text: str, *signers: Signer) -> str:
    """The signed note: `text`, an empty line, one signature line per signer."""
    _check_text(text)
    message = text.encode()
    lines = [
        f"{SIG_PREFIX}{s.name} {_b64(s.key_id.to_bytes(4, 'big') + s.sign(message))}\n"
        for s in signers
    ]
    return text + "\n" + "".join(lines)


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """The text and the signature lines of a note (nothing verified yet)."""
    if not note.endswith("\n"):
        raise NoteError("a note ends with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("a note has an empty line before its signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    _check_text(text)
    sigs: list[NoteSignature] = []
    for line in block.split("\n")[:-1]:
        if not line.startswith(SIG_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, payload = line[len(SIG_PREFIX) :].rpartition(" ")
        _check_name(name)
        raw = _unb64(payload)
        if len(raw) < 5:
            raise NoteError("a signature is too short")
        sigs.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    if not sigs:
        raise NoteError("a note has at least one signature")
    if len(sigs) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    return text, sigs


def open_note(note: str, *verifiers: Verifier) -> tuple[str, list[str]]:
    """Verify `note` with the known keys: unknown signatures are ignored, a known key whose
    signature fails rejects the note, and at least one known key must sign. Returns the text
    and the names that verified."""
    text, sigs = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    good: list[str] = []
    for sig in sigs:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text.encode(), sig.signature):
            raise NoteError(f"the signature of {sig.name} does not verify")
        good.append(sig.name)
    if not good:
        raise NoteError("no signature by a known key")
    return text, good


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteError("a checkpoint ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has an origin, a size and a root hash")
        origin, size_text, root_text, *ext = lines
        if not origin:
            raise NoteError("empty origin")
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError("tree size is a decimal without leading zeros")
        root = _unb64(root_text)
        if len(root) != 32:
            raise NoteError("root hash is 32 bytes")
        if any(not line for line in ext):
            raise NoteError("empty extension line")
        return cls(origin, int(size_text), root, tuple(ext))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.text(), signer)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """A checkpoint signed by `verifier`, whose origin is the key name (as the log signs)."""
    text, _ = open_note(note, verifier)
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin != verifier.name:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {verifier.name!r}")
    return checkpoint
