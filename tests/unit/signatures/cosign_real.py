"""Access to ../shared/fixtures/cosign-real: signatures written by the real cosign.

The fixtures were copied from containers/image, where some files are git symlinks; the
copy turned them into small text files holding the link target (``../dir-img-.../x``).
``read`` follows such links. A missing fixture fails the test loudly, never skips it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from safedocker.reference import Digest
from safedocker.signatures.cosign import CosignSignature, from_layer
from safedocker.trust.keys import PublicKey, load_public_key

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures" / "cosign-real"
DATA = Path(__file__).resolve().parent / "data"

_SIGSTORE_PREFIX = b"\x00sigstore-json\n"
_MAX_LINK = 200


def read(relative: str) -> bytes:
    path = FIXTURES / relative
    for _ in range(5):
        assert path.is_file(), f"missing conformance fixture {path}"
        data = path.read_bytes()
        if len(data) < _MAX_LINK and data.startswith(b"../") and b"\n" not in data.strip():
            path = (path.parent / data.decode().strip()).resolve()
            continue
        return data
    raise AssertionError(f"link loop at {relative}")


def key(name: str) -> PublicKey:
    return load_public_key(read(name), name.removesuffix(".pub"))


def rekor_key() -> PublicKey:
    """The public-good Rekor key.

    The fixture's rekor.pub is a link into containers/image's internal/testdata, which
    the copy lacks; tests/unit/signatures/data/rekor-public-good.pub is that same key
    (sigstore public-good trusted_root.json, logID c0d23d6a...801d).
    """
    return load_public_key((DATA / "rekor-public-good.pub").read_bytes(), "rekor")


def signature(relative: str) -> CosignSignature:
    """One on-disk signature as the cosign ``.sig`` manifest layer it was copied from."""
    data = read(relative)
    assert data.startswith(_SIGSTORE_PREFIX), f"{relative} is not a sigstore-json signature"
    document = json.loads(data[len(_SIGSTORE_PREFIX) :])
    return from_layer(
        document["annotations"], document["mimeType"], base64.b64decode(document["payload"])
    )


def manifest_digest(directory: str) -> Digest:
    return Digest.of(read(f"{directory}/manifest.json"))


def signatures(directory: str) -> list[CosignSignature]:
    names = sorted(p.name for p in (FIXTURES / directory).glob("signature-*"))
    assert names, f"no signatures in fixture {directory}"
    return [signature(f"{directory}/{name}") for name in names]
