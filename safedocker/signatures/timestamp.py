"""RFC 3161 signed timestamps over a bundle's signature, checked against trusted TSAs.

Rekor v2 gives an entry no integrated time, so a bundle logged there proves *when* it was
signed with a timestamp from a Timestamping Authority (``verificationMaterial.
timestampVerificationData.rfc3161Timestamps``). The TSA signs a hash of the bundle's
signature bytes. A timestamp counts when, for one TSA of the trusted root, rfc3161-client
verifies the CMS signature and the TSA certificate chain at the timestamp's genTime, the
message imprint matches, and genTime lies inside that TSA's ``validFor`` window (closed at
both ends). Every timestamp a bundle carries must verify: a timestamp from an unknown TSA
is refused, never skipped.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import timezone
from typing import TYPE_CHECKING, Any

from safedocker._internal.encoding import b64decode_protojson
from safedocker.errors import VerificationError

if TYPE_CHECKING:
    from datetime import datetime

    from safedocker.trust.roots import CertificateAuthority, TrustRoot

MAX_TIMESTAMPS = 32  # as sigstore-go and sigstore-python bound them
MAX_TIMESTAMP_SIZE = 64 * 1024


def _fail(why: str) -> VerificationError:
    return VerificationError(
        "signed timestamp does not verify",
        why=why,
        hint="check that the trust root lists the timestamp authority that signed it",
    )


@dataclass(frozen=True)
class SignedTime:
    """A verified RFC 3161 timestamp: when, and which trusted TSA said so."""

    time: datetime  # aware, UTC
    authority: str  # the TSA's URI, else its subject


def timestamps_of(material: dict[str, Any]) -> list[bytes]:
    """The DER timestamp responses of ``verificationMaterial``, bounded and de-duplicated."""
    data = material.get("timestampVerificationData")
    if data is None:
        return []
    if not isinstance(data, dict):
        raise _fail("timestampVerificationData is not an object")
    items = data.get("rfc3161Timestamps", [])
    if not isinstance(items, list):
        raise _fail("rfc3161Timestamps is not a list")
    if len(items) > MAX_TIMESTAMPS:
        raise _fail(f"more than {MAX_TIMESTAMPS} signed timestamps")
    out: list[bytes] = []
    for item in items:
        text = item.get("signedTimestamp") if isinstance(item, dict) else None
        if not isinstance(text, str) or len(text) > MAX_TIMESTAMP_SIZE:
            raise _fail("signedTimestamp is missing or too large")
        try:
            raw = b64decode_protojson(text)
        except (binascii.Error, ValueError) as e:
            raise _fail("signedTimestamp is not base64") from e
        if raw in out:
            raise _fail("the same signed timestamp appears twice")
        out.append(raw)
    return out


def _authority_name(ca: CertificateAuthority) -> str:
    return ca.uri or ca.subject


def verify_timestamp(response: bytes, signature: bytes, trust_root: TrustRoot) -> SignedTime:
    """Verify one DER TimeStampResp over ``signature`` with the trust root's TSAs."""
    from rfc3161_client import VerificationError as TimestampError
    from rfc3161_client import VerifierBuilder, decode_timestamp_response

    try:
        decoded = decode_timestamp_response(response)
        when = decoded.tst_info.gen_time
    except ValueError as e:
        raise _fail("not an RFC 3161 timestamp response") from e
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when
    if not trust_root.timestamp_authorities:
        raise _fail(f"trust root {trust_root.name!r} lists no timestamp authority")
    reasons = []
    for ca in trust_root.timestamp_authorities:
        name = _authority_name(ca)
        if len(ca.chain) < 2:
            reasons.append(f"{name}: its certificate chain has no root")
            continue
        builder = VerifierBuilder(tsa_certificate=ca.chain[0], roots=[ca.chain[-1]],
                                  intermediates=list(ca.chain[1:-1]))
        try:
            builder.build().verify_message(decoded, signature)
        except (TimestampError, ValueError) as e:
            # OpenSSL's error stacks mean nothing to a user; keep rfc3161-client's words.
            reasons.append(f"{name}: {str(e).split(': ErrorStack')[0]}")
            continue
        if not ca.validity.contains(when):
            reasons.append(f"{name}: {when.isoformat()} is outside its validity in the trust "
                           f"root ({ca.validity.describe()})")
            continue
        return SignedTime(when, name)
    raise _fail("no trusted timestamp authority verifies it (" + "; ".join(reasons) + ")")


def verify_timestamps(responses: list[bytes], signature: bytes,
                      trust_root: TrustRoot | None) -> list[SignedTime]:
    """Verify every timestamp; an empty list when there are none."""
    if not responses:
        return []
    if trust_root is None:
        raise _fail("no trust root to verify the signed timestamp with")
    return [verify_timestamp(r, signature, trust_root) for r in responses]
