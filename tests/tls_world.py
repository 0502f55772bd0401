"""Certificates for tests of TLS at the HTTP boundary: a CA, server certificates it
signs, and a CA directory hashed as OpenSSL looks one up (``c_rehash``), made with
``cryptography`` alone (no openssl command)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from pathlib import Path

_ONE_DAY = datetime.timedelta(days=1)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class Authority:
    """A CA whose common name is lower-case ASCII (so its subject's canonical form, which
    OpenSSL hashes, is the name as written)."""

    def __init__(self, common_name: str) -> None:
        if common_name != common_name.lower().strip() or not common_name.isascii():
            raise ValueError("a lower-case ASCII name keeps subject_hash simple")
        self.common_name = common_name
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY).not_valid_after(now + _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256()))

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def subject_hash(self) -> str:
        """OpenSSL's X509_NAME_hash of the subject: SHA-1 of its canonical form (each RDN's
        SET with UTF8String values, lower-cased, without the outer SEQUENCE), the first
        four bytes little-endian."""
        value = self.common_name.encode()
        ava = b"\x06\x03\x55\x04\x03" + b"\x0c" + bytes([len(value)]) + value
        sequence = b"\x30" + bytes([len(ava)]) + ava
        rdn = b"\x31" + bytes([len(sequence)]) + sequence
        return f"{int.from_bytes(hashlib.sha1(rdn).digest()[:4], 'little'):08x}"  # noqa: S324

    def hashed_dir(self, directory: Path) -> Path:
        """``directory`` holding this CA as ``<subject hash>.0``, as c_rehash leaves it."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{self.subject_hash()}.0").write_bytes(self.pem())
        return directory

    def server_context(self, directory: Path, *names: str, expired: bool = False,
                       common_name_only: bool = False) -> ssl.SSLContext:
        """A server context whose certificate this CA signed for ``names`` (DNS names or
        IP addresses); ``expired``: valid until two days ago; ``common_name_only``: the
        first name as the subject's common name, and no subjectAltName (as certificates
        were before RFC 2818 had clients read the SAN alone)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc) - (3 * _ONE_DAY if expired
                                                               else datetime.timedelta())
        alternatives = [_general_name(name) for name in names]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY).not_valid_after(now + _ONE_DAY)
            # Python 3.13's default context is strict X.509 (RFC 5280), which wants it
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False))
        if not common_name_only:
            builder = builder.add_extension(x509.SubjectAlternativeName(alternatives),
                                            critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        directory.mkdir(parents=True, exist_ok=True)
        chain, secret = directory / "server.pem", directory / "server.key"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        secret.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, secret)
        return context
