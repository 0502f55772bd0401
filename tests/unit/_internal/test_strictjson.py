"""The one strict JSON reader: what it refuses, as ValueError and as VerificationError."""

from __future__ import annotations

import pytest

from safedocker._internal.strictjson import loads, loads_strict
from safedocker.errors import VerificationError
from safedocker.reference import Digest
from safedocker.verify.material import SignatureMaterial


@pytest.mark.parametrize(("data", "why"), [
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b'{"a": NaN}', "NaN is not JSON"),
    (b"[Infinity]", "Infinity is not JSON"),
    (b'"\xff"', "not UTF-8 text"),
    (b"{", "not JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
])
def test_untrusted_json_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each kind has its own message below
        loads(data)
    with pytest.raises(VerificationError) as info:
        loads_strict(data, "document")
    assert info.value.what == "invalid document" and info.value.why == why


def test_size_is_capped_before_parsing() -> None:
    assert loads(b"[1]", max_bytes=3) == [1]
    with pytest.raises(ValueError, match="larger than 3 bytes"):
        loads(b"[10]", max_bytes=3)


def test_signature_material_with_a_duplicate_member_is_unreadable() -> None:
    digest = Digest.of(b"image")
    good = SignatureMaterial(digest, None).to_bytes()
    assert SignatureMaterial.from_bytes(good).digest == digest
    forged = good.replace(b'{"blobs"', b'{"digest": "sha256:' + b"0" * 64 + b'", "blobs"', 1)
    with pytest.raises(VerificationError, match="unreadable"):
        SignatureMaterial.from_bytes(forged)
