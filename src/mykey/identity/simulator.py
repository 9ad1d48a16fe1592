"""A card simulator: a test CA and cards with JPKI-like user-authentication certificates.

Shaped after research/jpki-card.md §3: RSA-2048 (e = 65537), sha256WithRSAEncryption, a CA
whose DN has the JPKI shape but says `O=JPKI-TEST` (it never impersonates the real one), an
end-entity subject of `C=JP, CN=<21 random base32 characters>` with no personal data,
KeyUsage digitalSignature, random 64-bit serials. A card signs a challenge as the real card's
JPKI application does: RSASSA-PKCS1-v1_5 with SHA-256, deterministic, so a simulated
signature is byte-for-byte what a real card would return for the same key.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from mykey.identity.proofs import card_key_of

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class SimulatorCA:
    """A certificate authority for simulated cards (never trusted in production)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, *, now: datetime, name: str = "MyKey simulator") -> SimulatorCA:
        key = _key()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-TEST"),
                x509.NameAttribute(
                    NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"
                ),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, name),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def issue(
        self,
        *,
        now: datetime,
        valid_for: timedelta = timedelta(days=5 * 365),
        planted_number: str | None = None,
    ) -> SimulatedCard:
        """A new card: a fresh key pair and a user-authentication certificate for it.

        `planted_number` puts a fake 12-digit "My Number" into the subject (a real
        authentication certificate has none), so that a test can prove that nothing read from
        a certificate is ever stored or logged.
        """
        key = _key()
        serial = int.from_bytes(secrets.token_bytes(8), "big") >> 1 or 1
        cn = "".join(secrets.choice(BASE32) for _ in range(21))
        names = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
        if planted_number is not None:
            names.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, planted_number))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(names))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + valid_for)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        return SimulatedCard(key, certificate)

    def crl(
        self, *, now: datetime, revoked: list[x509.Certificate]
    ) -> x509.CertificateRevocationList:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - timedelta(minutes=1))
            .next_update(now + timedelta(days=1))
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(now - timedelta(minutes=1))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def save(self, folder: Path) -> tuple[Path, Path]:
        """Write ca.pem (the trust anchor) and ca-key.pem (keep it private) into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
        cert_path.write_bytes(self.certificate_pem())
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path

    @classmethod
    def load(cls, folder: Path) -> SimulatorCA:
        key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the CA key is not an RSA key")
        return cls(key, x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes()))


@dataclass(frozen=True)
class SimulatedCard:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def card_key(self) -> str:
        return card_key_of(self.certificate)

    def sign(self, message: bytes) -> bytes:
        """What the card's JPKI application returns for COMPUTE DIGITAL SIGNATURE."""
        return self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def proof(self, challenge_id: str, nonce: bytes) -> dict[str, str]:
        """The `card_proof` a terminal sends: certificate, challenge id, signature (base64)."""
        return {
            "certificate": base64.b64encode(self.certificate_der).decode(),
            "challenge_id": challenge_id,
            "signature": base64.b64encode(self.sign(nonce)).decode(),
        }

    def to_json(self) -> str:
        key_pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode()
        return json.dumps(
            {"card_key": self.card_key, "certificate": cert_pem, "private_key": key_pem}, indent=2
        )

    @classmethod
    def from_json(cls, text: str) -> SimulatedCard:
        data = json.loads(text)
        key = serialization.load_pem_private_key(data["private_key"].encode(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the card key is not an RSA key")
        return cls(key, x509.load_pem_x509_certificate(data["certificate"].encode()))
