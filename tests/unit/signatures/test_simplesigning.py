"""The simple-signing payload: strict where it matters, as lenient as cosign on names."""

from __future__ import annotations

import json

import pytest

from safedocker.errors import VerificationError
from safedocker.reference import Digest
from safedocker.signatures.simplesigning import MAX_PAYLOAD_SIZE, make_payload, parse_payload

DIGEST = Digest.parse("sha256:" + "ab" * 32)


def doc(**overrides: object) -> dict[str, object]:
    value: dict[str, object] = {
        "critical": {
            "identity": {"docker-reference": "example.com/app"},
            "image": {"docker-manifest-digest": str(DIGEST)},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    value.update(overrides)
    return value


def raw(value: object) -> bytes:
    return json.dumps(value).encode()


def test_round_trip_matches_what_cosign_writes() -> None:
    payload = make_payload("192.168.64.2:5000/cosign-signed-single-sample", DIGEST)
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"192.168.64.2:5000/cosign-signed-single-'
        b'sample"},"image":{"docker-manifest-digest":"sha256:' + b"ab" * 32 + b'"},"type":'
        b'"cosign container image signature"},"optional":null}'
    )
    parsed = parse_payload(payload)
    assert parsed.docker_reference == "192.168.64.2:5000/cosign-signed-single-sample"
    assert parsed.manifest_digest == DIGEST
    assert dict(parsed.optional) == {}
    assert parsed.raw == payload


def test_annotations_are_sorted_and_html_escaped_like_go() -> None:
    payload = make_payload("r", DIGEST, {"z": "1", "a": "<b>&"})
    assert payload.endswith(b'"optional":{"a":"\\u003cb\\u003e\\u0026","z":"1"}}')
    assert dict(parse_payload(payload).optional) == {"a": "<b>&", "z": "1"}


def test_real_cosign_payload_with_optional_values() -> None:
    text = (
        b'{"critical":{"identity":{"docker-reference":"192.168.64.2:5000/skopeo-signed:tag"},'
        b'"image":{"docker-manifest-digest":"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12'
        b'f6831de8ddc45e5986a00"},"type":"cosign container image signature"},"optional":'
        b'{"creator":"containers/image 5.21.2-dev","timestamp":1657296609}}'
    )
    parsed = parse_payload(text)
    assert parsed.optional["timestamp"] == 1657296609


def test_field_names_match_case_insensitively_as_go_json_does() -> None:
    value = {
        "Critical": {
            "IDENTITY": {"Docker-Reference": "example.com/app"},
            "Image": {"docker-MANIFEST-digest": str(DIGEST)},
            "Type": "cosign container image signature",
        },
        "OPTIONAL": None,
    }
    assert parse_payload(raw(value)).docker_reference == "example.com/app"


def test_the_type_value_is_case_sensitive() -> None:
    critical = dict(doc()["critical"])  # type: ignore[call-overload]
    critical["type"] = "Cosign Container Image Signature"
    with pytest.raises(VerificationError, match="critical.type"):
        parse_payload(raw(doc(critical=critical)))


@pytest.mark.parametrize(
    "text",
    [
        # Duplicate names, exactly or after case folding: two readers could pick different ones.
        b'{"critical":{},"critical":{},"optional":null}',
        b'{"critical":{"identity":{"docker-reference":"a","Docker-Reference":"b"},'
        b'"image":{"docker-manifest-digest":"sha256:' + b"ab" * 32 + b'"},'
        b'"type":"cosign container image signature"},"optional":null}',
    ],
)
def test_duplicate_names_are_refused(text: bytes) -> None:
    with pytest.raises(VerificationError, match="invalid cosign signature payload"):
        parse_payload(text)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.pop("optional"), "lacks optional"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d["critical"].update(extra=1), "unknown field"),
        (lambda d: d["critical"]["identity"].update(**{"docker-reference": 5}), "not a string"),
        (
            lambda d: d["critical"]["image"].update(**{"docker-manifest-digest": None}),
            "not a string",
        ),
        (
            lambda d: d["critical"]["image"].update(**{"docker-manifest-digest": "sha256:XY"}),
            "not a digest",
        ),
        (lambda d: d["critical"].update(type=["cosign container image signature"]), "not a string"),
        (lambda d: d.update(optional=[]), "neither an object nor null"),
        (lambda d: d.update(critical="x"), "not a JSON object"),
        (lambda d: d["critical"].pop("image"), "lacks image"),
    ],
)
def test_wrong_shapes_are_refused(mutate: object, why: str) -> None:
    value = json.loads(raw(doc()))
    mutate(value)  # type: ignore[operator]
    with pytest.raises(VerificationError, match=why):
        parse_payload(raw(value))


@pytest.mark.parametrize(
    "text",
    [b"", b"[]", b"null", b"{", b"\xff\xfe", b'{"critical":NaN,"optional":null}'],
)
def test_non_payloads_are_refused(text: bytes) -> None:
    with pytest.raises(VerificationError):
        parse_payload(text)


def test_oversized_payload_is_refused_before_parsing() -> None:
    big = make_payload("example.com/app", DIGEST, {"pad": "x" * MAX_PAYLOAD_SIZE})
    with pytest.raises(VerificationError, match="larger than"):
        parse_payload(big)


def test_deep_nesting_is_refused_not_crashing() -> None:
    deep = b'{"critical":{},"optional":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    assert len(deep) < MAX_PAYLOAD_SIZE
    with pytest.raises(VerificationError, match="not JSON"):
        parse_payload(deep)
