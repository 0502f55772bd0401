"""The cosign simple-signing payload: what a cosign signature actually vouches for.

Field names match case-insensitively because cosign reads the payload with Go's
encoding/json, which does; a name that appears twice under case folding is refused, so
no two readers can disagree about which value counts. Unknown fields in ``critical`` are
refused (as containers/image does); ``optional`` is free-form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from safedocker._internal.strictjson import loads_strict
from safedocker.errors import UsageError, VerificationError
from safedocker.reference import Digest

if TYPE_CHECKING:
    from collections.abc import Mapping

SIGNATURE_TYPE = "cosign container image signature"
MAX_PAYLOAD_SIZE = 64 * 1024


@dataclass(frozen=True)
class SimpleSigningPayload:
    docker_reference: str
    manifest_digest: Digest
    optional: Mapping[str, object] = field(compare=False)  # read-only; {} when null
    raw: bytes = field(repr=False)


def _reject(why: str) -> VerificationError:
    return VerificationError("invalid cosign signature payload", why=why)


def _fields(obj: object, where: str, required: tuple[str, ...]) -> dict[str, object]:
    """Map each required name to its value, matching names case-insensitively."""
    if not isinstance(obj, dict):
        raise _reject(f"{where} is not a JSON object")
    folded: dict[str, object] = {}
    for key, value in obj.items():
        k = key.casefold()
        if k in folded:
            raise _reject(f"{where} has {key!r} twice (names are case-insensitive)")
        folded[k] = value
    wanted = {name.casefold() for name in required}
    unknown = sorted(k for k in folded if k not in wanted)
    if unknown:
        raise _reject(f"{where} has unknown field(s) {', '.join(unknown)}")
    missing = [name for name in required if name.casefold() not in folded]
    if missing:
        raise _reject(f"{where} lacks {', '.join(missing)}")
    return {name: folded[name.casefold()] for name in required}


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _reject(f"{where} is not a string")
    return value


def parse_payload(data: bytes) -> SimpleSigningPayload:
    """Parse a simple-signing payload strictly, or raise :class:`VerificationError`.

    Call this only on bytes whose signature has been verified: the parser is strict,
    but untrusted input should reach as little code as possible.
    """
    if len(data) > MAX_PAYLOAD_SIZE:
        raise _reject(f"larger than {MAX_PAYLOAD_SIZE} bytes")
    document = loads_strict(data, "cosign signature payload")
    top = _fields(document, "payload", ("critical", "optional"))
    critical = _fields(top["critical"], "critical", ("identity", "image", "type"))
    if _string(critical["type"], "critical.type") != SIGNATURE_TYPE:
        raise _reject(f"critical.type is {critical['type']!r}, not {SIGNATURE_TYPE!r}")
    identity = _fields(critical["identity"], "critical.identity", ("docker-reference",))
    image = _fields(critical["image"], "critical.image", ("docker-manifest-digest",))
    reference = _string(identity["docker-reference"], "docker-reference")
    digest_text = _string(image["docker-manifest-digest"], "docker-manifest-digest")
    try:
        digest = Digest.parse(digest_text)
    except UsageError as e:
        raise _reject(f"docker-manifest-digest {digest_text!r} is not a digest") from e
    optional = top["optional"]
    if optional is None:
        optional = {}
    if not isinstance(optional, dict):
        raise _reject("optional is neither an object nor null")
    return SimpleSigningPayload(
        docker_reference=reference,
        manifest_digest=digest,
        optional=MappingProxyType(dict(optional)),
        raw=bytes(data),
    )


def make_payload(
    docker_reference: str, digest: Digest, annotations: Mapping[str, object] | None = None
) -> bytes:
    """The payload bytes cosign writes (Go json.Marshal: compact, HTML-escaped, sorted maps)."""
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": str(digest)},
            "type": SIGNATURE_TYPE,
        },
        "optional": dict(sorted(annotations.items())) if annotations else None,
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    # Go escapes these inside strings; they occur nowhere else in the output.
    for char, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8")
