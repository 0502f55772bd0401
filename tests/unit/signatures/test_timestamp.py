"""RFC 3161 timestamps over a bundle's signature, against the trust root's TSAs."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from safedocker.errors import VerificationError
from safedocker.signatures.timestamp import (
    MAX_TIMESTAMPS,
    timestamps_of,
    verify_timestamp,
    verify_timestamps,
)
from safedocker.trust.roots import TrustRoot, parse_trust_root
from tests.sigstore_v2 import TimestampAuthority
from tests.sigstore_world import SigstoreWorld

SIGNATURE = b"the bundle's signature bytes"


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def root(world: SigstoreWorld) -> TrustRoot:
    return parse_trust_root(world.trusted_root_json(with_rekor_v2=True, with_tsa=True),
                            name="world")


@pytest.mark.parametrize("embed", [True, False], ids=["embedded-cert", "no-embedded-cert"])
def test_timestamp_of_a_trusted_tsa_gives_its_time(world: SigstoreWorld, root: TrustRoot,
                                                   embed: bool) -> None:
    when = world.now - timedelta(minutes=3)
    stamp = verify_timestamp(world.tsa.timestamp(SIGNATURE, when, embed_certificate=embed),
                             SIGNATURE, root)
    assert (stamp.time, stamp.authority) == (when, world.tsa.uri)


def test_timestamp_over_other_bytes_is_refused(world: SigstoreWorld, root: TrustRoot) -> None:
    with pytest.raises(VerificationError, match="Mismatch between messages"):
        verify_timestamp(world.tsa.timestamp(b"other", world.now), SIGNATURE, root)


def test_timestamp_of_an_unknown_tsa_is_refused(world: SigstoreWorld, root: TrustRoot) -> None:
    rogue = TimestampAuthority(world.now, name="rogue")
    with pytest.raises(VerificationError, match="no trusted timestamp authority"):
        verify_timestamp(rogue.timestamp(SIGNATURE, world.now), SIGNATURE, root)


def test_tsa_certificate_must_be_valid_at_the_timestamps_time_not_now(world: SigstoreWorld) -> None:
    short = TimestampAuthority(world.now, name="short", cert_lifetime=timedelta(days=30))
    short_world = SigstoreWorld(now=world.now)
    short_world.tsa = short
    root = parse_trust_root(short_world.trusted_root_json(with_rekor_v2=True, with_tsa=True))
    early = world.now - timedelta(days=350)  # inside the certificate's 30 days, long ago
    assert verify_timestamp(short.timestamp(SIGNATURE, early), SIGNATURE, root).time == early
    with pytest.raises(VerificationError, match="no trusted timestamp authority"):
        verify_timestamp(short.timestamp(SIGNATURE, world.now), SIGNATURE, root)


def test_garbage_is_not_a_timestamp(root: TrustRoot) -> None:
    with pytest.raises(VerificationError, match="not an RFC 3161"):
        verify_timestamp(b"\x30\x03\x02\x01\x00", SIGNATURE, root)


def test_timestamps_need_a_trust_root_only_when_there_are_some(world: SigstoreWorld) -> None:
    assert verify_timestamps([], SIGNATURE, None) == []
    with pytest.raises(VerificationError, match="no trust root"):
        verify_timestamps([world.tsa.timestamp(SIGNATURE, world.now)], SIGNATURE, None)


def _material(*responses: bytes) -> dict[str, object]:
    return {"timestampVerificationData": {"rfc3161Timestamps": [
        {"signedTimestamp": base64.b64encode(r).decode()} for r in responses]}}


def test_timestamps_are_read_bounded_and_without_duplicates(world: SigstoreWorld) -> None:
    one = world.tsa.timestamp(SIGNATURE, world.now)
    assert timestamps_of({}) == []
    assert timestamps_of(_material(one)) == [one]
    with pytest.raises(VerificationError, match="twice"):
        timestamps_of(_material(one, one))
    many = [world.tsa.timestamp(SIGNATURE, world.now, serial=i) for i in range(MAX_TIMESTAMPS + 1)]
    with pytest.raises(VerificationError, match="more than"):
        timestamps_of(_material(*many))


def test_wrapped_base64_is_read_as_go_reads_it(world: SigstoreWorld) -> None:
    one = world.tsa.timestamp(SIGNATURE, world.now)
    text = base64.encodebytes(one).decode()  # 76-column lines, as `base64 file` writes
    assert "\n" in text
    material = {"timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": text}]}}
    assert timestamps_of(material) == [one]
