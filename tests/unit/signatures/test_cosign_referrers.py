"""cosign "experimental OCI 1.1" signatures: `.sig` layers in a referrer of the image."""

from __future__ import annotations

import base64
import json
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.errors import VerificationError
from safedocker.policy.model import Identity
from safedocker.reference import Digest
from safedocker.signatures.cosign import (
    SIGNATURE_ARTIFACT_TYPE,
    is_signature_referrer,
    referrer_signatures,
    verify_with_keys,
)
from safedocker.signatures.keyless import verify_keyless
from safedocker.trust.keys import load_public_key
from safedocker.trust.roots import parse_trust_root
from tests.sigstore_world import SIG_ANNOTATION, SIMPLE_SIGNING, SigstoreWorld, public_pem

DIGEST = Digest.of(b"oci 1.1 image manifest")


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_layer(key: ec.EllipticCurvePrivateKey,
              digest: Digest = DIGEST) -> tuple[dict[str, str], str, bytes]:
    payload = SigstoreWorld.simple_signing(str(digest))
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return {SIG_ANNOTATION: base64.b64encode(signature).decode()}, SIMPLE_SIGNING, payload


def test_key_signature_in_a_referrer_verifies(signing_key: ec.EllipticCurvePrivateKey) -> None:
    manifest, blobs = SigstoreWorld.cosign_referrer_manifest([key_layer(signing_key)],
                                                             str(DIGEST), 321)
    assert is_signature_referrer(manifest)
    signatures, skipped = referrer_signatures(manifest, DIGEST, blobs)
    assert skipped == [] and len(signatures) == 1
    result = verify_with_keys(signatures[0], [load_public_key(public_pem(signing_key), "team")],
                              DIGEST)
    assert result.verified and result.key_name == "team"


def test_keyless_signature_in_a_referrer_verifies(world: SigstoreWorld) -> None:
    leaf = world.issue()
    layer = world.cosign_layer(leaf, world.simple_signing(str(DIGEST)))
    manifest, blobs = SigstoreWorld.cosign_referrer_manifest([layer], str(DIGEST), 321)
    (signature,), _ = referrer_signatures(manifest, DIGEST, blobs)
    root = parse_trust_root(world.trusted_root_json())
    alice = Identity(issuer="https://issuer.example", subject="dev@example.com")
    result = verify_keyless(signature, DIGEST, [alice], root)
    assert result.verified, result.reason


def test_older_cosign_artifacts_typed_by_their_config_only_are_recognised(
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    manifest, _ = SigstoreWorld.cosign_referrer_manifest([key_layer(signing_key)],
                                                         str(DIGEST), 321)
    document = json.loads(manifest)
    del document["artifactType"]
    assert is_signature_referrer(json.dumps(document).encode())
    document["config"]["mediaType"] = "application/vnd.oci.empty.v1+json"
    assert not is_signature_referrer(json.dumps(document).encode())


def test_a_referrer_of_another_image_is_refused(signing_key: ec.EllipticCurvePrivateKey) -> None:
    manifest, blobs = SigstoreWorld.cosign_referrer_manifest([key_layer(signing_key)],
                                                             str(Digest.of(b"other")), 321)
    with pytest.raises(VerificationError, match="not sha256:"):
        referrer_signatures(manifest, DIGEST, blobs)


def test_other_artifacts_are_not_read_as_signatures(
        world: SigstoreWorld, signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    bundle = world.bundle(None, str(DIGEST), key=signing_key)
    manifest, _ = SigstoreWorld.referrer_manifest(bundle, str(DIGEST), 321)
    assert not is_signature_referrer(manifest) and not is_signature_referrer(b"not json")
    with pytest.raises(VerificationError, match=re.escape(SIGNATURE_ARTIFACT_TYPE)):
        referrer_signatures(manifest, DIGEST, {})


def test_missing_or_altered_layers_are_skipped_with_a_reason(
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    layers = [key_layer(signing_key), key_layer(signing_key, Digest.of(b"second"))]
    manifest, blobs = SigstoreWorld.cosign_referrer_manifest(layers, str(DIGEST), 321)
    first, second = (d["digest"] for d in json.loads(manifest)["layers"])
    blobs = {first: blobs[first] + b" ", second: blobs[second]}
    signatures, skipped = referrer_signatures(manifest, DIGEST, blobs)
    assert len(signatures) == 1 and skipped == [f"signature layer {first} missing or altered"]
    signatures, skipped = referrer_signatures(manifest, DIGEST, {})
    assert signatures == [] and len(skipped) == 2
