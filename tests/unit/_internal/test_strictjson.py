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


@pytest.mark.parametrize(("data", "why"), [
    (b'{"manifests": [], "Manifests": []}', "keys 'manifests' and 'Manifests'"),
    (b'{"MEDIATYPE": 1, "mediaType": 2}', "keys 'MEDIATYPE' and 'mediaType'"),
    ('{"manifests": 1, "manifeſts": 2}'.encode(), "are the same key to Go"),  # long s
    ('{"kind": 1, "\u212aind": 2}'.encode(), "are the same key to Go"),  # Kelvin sign
    (b'{"a": {"x": 1, "X": 2}}', "keys 'x' and 'X'"),
])
def test_members_that_are_one_name_to_go_are_refused_when_asked(data: bytes, why: str) -> None:
    assert isinstance(loads(data), dict)  # plain JSON: distinct members
    with pytest.raises(ValueError, match=why):
        loads(data, go_keys=True)


def test_go_folding_keeps_names_go_tells_apart() -> None:
    assert loads(b'{"a": 1, "b": 2, "\xc3\x9f": 3, "ss": 4}', go_keys=True) == {
        "a": 1, "b": 2, "\u00df": 3, "ss": 4}
