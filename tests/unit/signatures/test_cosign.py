"""The .sig manifest layers and one signature's verification, on signatures we make."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.errors import VerificationError
from safedocker.reference import Digest, parse_reference
from safedocker.signatures.cosign import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    MAX_LAYERS,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    CosignSignature,
    check_annotations,
    check_reference,
    from_layer,
    signature_layers,
    verify_with_keys,
)
from safedocker.signatures.cosignkey import public_key_pem, sign
from safedocker.signatures.simplesigning import MAX_PAYLOAD_SIZE, make_payload, parse_payload
from safedocker.trust.keys import load_public_key

IMAGE = Digest.of(b"the image manifest")
OTHER = Digest.of(b"another manifest")


def signed(
    reference: str = "registry.example/team/app", digest: Digest = IMAGE, **annotations: str
) -> tuple[CosignSignature, ec.EllipticCurvePrivateKey]:
    private = ec.generate_private_key(ec.SECP256R1())
    payload = make_payload(reference, digest, annotations or None)
    layer = {SIGNATURE_ANNOTATION: base64.b64encode(sign(private, payload)).decode()}
    return from_layer(layer, SIMPLE_SIGNING_MEDIA_TYPE, payload), private


def manifest(layers: list[dict[str, object]], media_type: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": 2,
                "digest": str(Digest.of(b"{}")),
            },
            "layers": layers,
        }
    ).encode()


def layer(**annotations: str) -> dict[str, object]:
    return {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": 250,
        "digest": str(Digest.of(b"payload")),
        "annotations": annotations,
    }


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ],
)
def test_signature_layers_of_oci_and_docker_manifests(media_type: str) -> None:
    layers = signature_layers(
        manifest([layer(**{SIGNATURE_ANNOTATION: "c2ln"}), layer()], media_type)
    )
    assert len(layers) == 2
    assert layers[0].media_type == SIMPLE_SIGNING_MEDIA_TYPE
    assert layers[0].digest == Digest.of(b"payload")
    assert layers[0].annotations[SIGNATURE_ANNOTATION] == "c2ln"
    assert not layers[0].oversized


def test_oversized_layer_is_flagged_so_it_is_never_fetched() -> None:
    big = layer()
    big["size"] = MAX_PAYLOAD_SIZE + 1
    (descriptor,) = signature_layers(manifest([big], "application/vnd.oci.image.manifest.v1+json"))
    assert descriptor.oversized


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b"not json", "not JSON"),
        (b'{"schemaVersion":1}', "schema 2"),
        (b'{"schemaVersion":2,"layers":{}}', "no layers"),
        (b'{"schemaVersion":2,"layers":[1]}', "not an object"),
        (
            b'{"schemaVersion":2,"layers":[{"mediaType":"x","size":true,"digest":"sha256:'
            + b"a" * 64
            + b'"}]}',
            "invalid size",
        ),
        (b'{"schemaVersion":2,"layers":[{"mediaType":"x","size":1,"digest":"md5:ab"}]}', "digest"),
        (
            b'{"schemaVersion":2,"layers":[{"mediaType":"x","size":1,"digest":"sha256:'
            + b"a" * 64
            + b'","annotations":{"a":1}}]}',
            "not strings",
        ),
    ],
)
def test_malformed_manifests_are_refused(document: bytes, why: str) -> None:
    with pytest.raises(VerificationError, match=why):
        signature_layers(document)


def test_too_many_layers_are_refused() -> None:
    document = manifest([layer()] * (MAX_LAYERS + 1), "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(VerificationError, match="more than"):
        signature_layers(document)


def test_from_layer_carries_certificate_chain_and_bundle() -> None:
    annotations = {
        SIGNATURE_ANNOTATION: "c2ln",
        CERTIFICATE_ANNOTATION: "CERT",
        CHAIN_ANNOTATION: "CHAIN",
        BUNDLE_ANNOTATION: "{}",
        "other": "x",
    }
    sig = from_layer(annotations, SIMPLE_SIGNING_MEDIA_TYPE, b"p")
    assert (sig.certificate_pem, sig.chain_pem, sig.bundle_json) == (b"CERT", b"CHAIN", b"{}")
    assert sig.signature == b"sig" and sig.annotations["other"] == "x"


def test_from_layer_refuses_an_oversized_blob() -> None:
    with pytest.raises(VerificationError, match="larger than"):
        from_layer({}, SIMPLE_SIGNING_MEDIA_TYPE, b"x" * (MAX_PAYLOAD_SIZE + 1))


def test_a_signature_verifies_with_its_key_among_others() -> None:
    sig, private = signed()
    stranger = load_public_key(public_key_pem(ec.generate_private_key(ec.SECP256R1())), "a")
    ours = load_public_key(public_key_pem(private), "ours")
    result = verify_with_keys(sig, [stranger, ours], IMAGE)
    assert result.verified and result.key_name == "ours" and result.reason == ""
    assert result.payload is not None and result.payload.manifest_digest == IMAGE


def test_a_signature_for_another_digest_is_refused_with_both_digests() -> None:
    sig, private = signed(digest=OTHER)
    result = verify_with_keys(sig, [load_public_key(public_key_pem(private), "k")], IMAGE)
    assert not result.verified
    assert result.reason == f"signed payload names digest {OTHER}, not {IMAGE}"


def test_no_keys_says_so() -> None:
    sig, _ = signed()
    assert verify_with_keys(sig, [], IMAGE).reason.endswith("(none configured)")


def test_missing_or_bad_signature_annotation() -> None:
    sig, private = signed()
    key = load_public_key(public_key_pem(private), "k")
    for text, why in (("", "no signature annotation"), ("!!", "signature is not base64")):
        bad = CosignSignature(sig.media_type, sig.payload, text)
        assert verify_with_keys(bad, [key], IMAGE).reason == why


def test_a_signed_but_malformed_payload_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    payload = b'{"critical":{},"optional":null}'
    sig = from_layer(
        {SIGNATURE_ANNOTATION: base64.b64encode(sign(private, payload)).decode()},
        SIMPLE_SIGNING_MEDIA_TYPE,
        payload,
    )
    result = verify_with_keys(sig, [load_public_key(public_key_pem(private), "k")], IMAGE)
    assert not result.verified and "invalid cosign signature payload" in result.reason


def test_base64_signature_may_be_wrapped_over_lines() -> None:
    sig, private = signed()
    wrapped = "\n".join(sig.signature_b64[i : i + 20] for i in range(0, len(sig.signature_b64), 20))
    rewrapped = CosignSignature(sig.media_type, sig.payload, wrapped)
    assert verify_with_keys(
        rewrapped, [load_public_key(public_key_pem(private), "k")], IMAGE
    ).verified


def payload_for(reference: str) -> object:
    return parse_payload(make_payload(reference, IMAGE))


@pytest.mark.parametrize(
    ("signed_ref", "image", "mode", "fits"),
    [
        ("registry.example/app", "registry.example/other", "digest", True),
        ("registry.example/app", "registry.example/app:v1", "repository", True),
        ("registry.example/app:v2", "registry.example/app:v1", "repository", True),
        ("registry.example/app", "other.example/app", "repository", False),
        ("index.docker.io/library/ubuntu", "ubuntu", "repository", True),
        ("docker.io/library/ubuntu:latest", "ubuntu", "exact", True),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "exact", True),
        ("ubuntu:22.04", "ubuntu:24.04", "exact", False),
        ("ubuntu", "ubuntu:latest", "exact", False),
        (f"ubuntu@{IMAGE}", f"ubuntu@{IMAGE}", "exact", True),
        (f"ubuntu@{IMAGE}", "ubuntu:latest", "exact", False),
        ("Not A Reference", "ubuntu", "repository", False),
    ],
)
def test_check_reference(signed_ref: str, image: str, mode: str, fits: bool) -> None:
    payload = payload_for(signed_ref)
    reason = check_reference(payload, parse_reference(image), mode)  # type: ignore[arg-type]
    assert (reason is None) is fits, reason


def test_check_annotations_requires_equal_strings() -> None:
    payload = parse_payload(make_payload("r.example/a", IMAGE, {"git": "abc", "n": 1}))
    assert check_annotations(payload, {}) is None
    assert check_annotations(payload, {"git": "abc"}) is None
    assert (
        check_annotations(payload, {"git": "abd"}) == "signature annotation git is 'abc', not 'abd'"
    )
    assert check_annotations(payload, {"n": "1"}) == "signature annotation n is 1, not '1'"
    assert check_annotations(payload, {"team": "x"}) == "signature lacks required annotation team=x"
    bare = parse_payload(make_payload("r.example/a", IMAGE))
    assert check_annotations(bare, {"git": "abc"}) is not None
