"""Rekor SETs: a SET proves something only about the exact signature, key and payload."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.errors import VerificationError
from safedocker.reference import Digest
from safedocker.signatures.canonicaljson import canonicalize
from safedocker.signatures.cosign import (
    BUNDLE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    CosignSignature,
    from_layer,
)
from safedocker.signatures.cosignkey import public_key_pem, sign
from safedocker.signatures.rekor import parse_bundle, verify_set
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import PublicKey, load_public_key
from tests.unit.signatures.cosign_real import key, rekor_key, signatures

WHEN = 1_700_000_000


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Log:
    """A throwaway Rekor: one key, entries signed as the real log signs SETs."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.key = load_public_key(public_key_pem(self.private), "test-log")
        self.log_id = self.key.fingerprint.removeprefix("sha256:")

    def bundle(self, body: dict[str, object], *, when: int = WHEN, tamper: str = "") -> str:
        payload: dict[str, object] = {
            "body": b64(json.dumps(body).encode()),
            "integratedTime": when,
            "logIndex": 42,
            "logID": self.log_id,
        }
        signed = self.private.sign(canonicalize(payload), ec.ECDSA(hashes.SHA256()))
        if tamper == "time":
            payload["integratedTime"] = when + 1
        if tamper == "body":
            text = str(payload["body"])
            payload["body"] = text[:10] + ("A" if text[10] != "A" else "B") + text[11:]
        return json.dumps({"SignedEntryTimestamp": b64(signed), "Payload": payload})


def hashedrekord(signature: bytes, pem: bytes, payload: bytes) -> dict[str, object]:
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
            "signature": {"content": b64(signature), "publicKey": {"content": b64(pem)}},
        },
    }


def signed_with_bundle(
    log: Log, body: dict[str, object] | None = None, **bundle_options: object
) -> tuple[CosignSignature, PublicKey]:
    private = ec.generate_private_key(ec.SECP256R1())
    signer = load_public_key(public_key_pem(private), "signer")
    payload = make_payload("registry.example/app", Digest.of(b"m"))
    signature = sign(private, payload)
    entry = body if body is not None else hashedrekord(signature, signer.pem, payload)
    annotations = {
        SIGNATURE_ANNOTATION: b64(signature),
        BUNDLE_ANNOTATION: log.bundle(entry, **bundle_options),  # type: ignore[arg-type]
    }
    return from_layer(annotations, SIMPLE_SIGNING_MEDIA_TYPE, payload), signer


def test_a_valid_set_gives_the_integrated_time() -> None:
    log = Log()
    sig, signer = signed_with_bundle(log)
    entry = verify_set(sig, [key("cosign.pub"), log.key], signer.pem)
    assert entry.integrated_time == datetime.fromtimestamp(WHEN, tz=timezone.utc)
    assert (entry.log_index, entry.log_key, entry.kind) == (42, "test-log", "hashedrekord")


@pytest.mark.parametrize("tamper", ["time", "body"])
def test_tampered_payload_breaks_the_set(tamper: str) -> None:
    log = Log()
    sig, signer = signed_with_bundle(log, tamper=tamper)
    with pytest.raises(VerificationError, match="not signed by Rekor key 'test-log'"):
        verify_set(sig, [log.key], signer.pem)


def test_entry_for_another_signature_key_or_payload_is_refused() -> None:
    log = Log()
    sig, signer = signed_with_bundle(log)
    other = ec.generate_private_key(ec.SECP256R1())
    other_pem = public_key_pem(other)
    cases = {
        "different signature": hashedrekord(b"other sig", signer.pem, sig.payload),
        "different signing key": hashedrekord(sig.signature, other_pem, sig.payload),
        "different payload": hashedrekord(sig.signature, signer.pem, b"other payload"),
    }
    for why, body in cases.items():
        forged, _ = signed_with_bundle(log, body)
        # Re-home the honest signature and payload under the forged entry's bundle.
        mixed = CosignSignature(
            sig.media_type, sig.payload, sig.signature_b64, bundle_json=forged.bundle_json
        )
        with pytest.raises(VerificationError, match=why):
            verify_set(mixed, [log.key], signer.pem)


def test_entry_checked_against_the_signer_we_trust_not_the_one_logged() -> None:
    log = Log()
    sig, _ = signed_with_bundle(log)
    stranger = public_key_pem(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(VerificationError, match="different signing key"):
        verify_set(sig, [log.key], stranger)


def test_rekord_entries_with_inline_content_are_understood() -> None:
    log = Log()
    sig, signer = signed_with_bundle(log)
    body: dict[str, object] = {
        "apiVersion": "0.0.1",
        "kind": "rekord",
        "spec": {
            "data": {"content": b64(sig.payload)},
            "signature": {
                "format": "x509",
                "content": sig.signature_b64,
                "publicKey": {"content": b64(signer.pem)},
            },
        },
    }
    forged, _ = signed_with_bundle(log, body)
    rehomed = CosignSignature(
        sig.media_type, sig.payload, sig.signature_b64, bundle_json=forged.bundle_json
    )
    assert verify_set(rehomed, [log.key], signer.pem).kind == "rekord"


def test_other_entry_kinds_are_refused() -> None:
    log = Log()
    sig, signer = signed_with_bundle(log, {"kind": "intoto", "apiVersion": "0.0.2", "spec": {}})
    with pytest.raises(VerificationError, match="not hashedrekord or rekord"):
        verify_set(sig, [log.key], signer.pem)


@pytest.mark.parametrize(
    ("bundle", "why"),
    [
        (b"nope", "not JSON"),
        (b"{}", "no Payload"),
        (b'{"Payload":{"body":1}}', "body is not a string"),
        (b'{"Payload":{"body":"","logID":"xyz"}}', "logID"),
        (
            b'{"SignedEntryTimestamp":"!","Payload":{"body":"","logID":"'
            + b"a" * 64
            + b'","integratedTime":1,"logIndex":1}}',
            "not valid base64",
        ),
        (
            b'{"SignedEntryTimestamp":"","Payload":{"body":"","logID":"'
            + b"a" * 64
            + b'","integratedTime":1.5,"logIndex":1}}',
            "integratedTime",
        ),
        (
            b'{"SignedEntryTimestamp":"","Payload":{"body":"","logID":"'
            + b"a" * 64
            + b'","integratedTime":true,"logIndex":1}}',
            "integratedTime",
        ),
    ],
)
def test_malformed_bundles_are_refused(bundle: bytes, why: str) -> None:
    with pytest.raises(VerificationError, match=why):
        parse_bundle(bundle)


def real_with(mutate: object) -> CosignSignature:
    (sig,) = signatures("dir-img-cosign-key-rekor-valid")
    assert sig.bundle_json is not None
    document = json.loads(sig.bundle_json)
    mutate(document["Payload"])  # type: ignore[operator]
    return CosignSignature(
        sig.media_type, sig.payload, sig.signature_b64, bundle_json=json.dumps(document).encode()
    )


def flip_body(payload: dict[str, object]) -> None:
    body = bytearray(base64.b64decode(str(payload["body"])))
    body[body.index(b"hashedrekord") + 2] ^= 0x01
    payload["body"] = b64(bytes(body))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.update(integratedTime=p["integratedTime"] + 1),
        lambda p: p.update(logIndex=p["logIndex"] - 1),
        flip_body,
    ],
    ids=["integratedTime", "logIndex", "body"],
)
def test_real_set_tampering_is_detected(mutate: object) -> None:
    with pytest.raises(VerificationError, match="not signed by Rekor key"):
        verify_set(real_with(mutate), [rekor_key()], key("cosign2.pub").pem)


def test_real_set_ignores_fields_cosign_does_not_sign() -> None:
    sig = real_with(lambda p: p.update(note="ignored by cosign too"))
    assert verify_set(sig, [rekor_key()], key("cosign2.pub").pem).log_index == 11608800


def test_real_set_with_uppercase_log_id_is_not_the_signed_bytes() -> None:
    sig = real_with(lambda p: p.update(logID=p["logID"].upper()))
    with pytest.raises(VerificationError, match="not signed"):
        verify_set(sig, [rekor_key()], key("cosign2.pub").pem)
