"""``safe-docker sign``: attach a cosign classic signature to an image in a registry.

Platform teams sign the images they mirror into an airgapped registry with a key made by
``keys generate`` (or by cosign). The result is what ``cosign sign --key`` writes: a
simple-signing payload as a layer of the ``sha256-<hex>.sig`` manifest, its signature in
the layer's annotation. Existing signatures in that manifest are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker._internal.encoding import b64encode
from safedocker.errors import UsageError, reason_of
from safedocker.oci.client import ManifestNotFound, RegistryClient
from safedocker.oci.media import OCI_MANIFEST
from safedocker.reference import Digest, ImageRef, parse_reference
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.cosignkey import load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.verify.material import SIG_TAG_SUFFIX

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from safedocker.policy.config import Config

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MAX_PRIVATE_KEY_BYTES = 64 * 1024


@dataclass(frozen=True)
class SignResult:
    ref: ImageRef
    digest: Digest
    signature_tag: str
    signatures_now: int


def _config_blob(layer_digests: list[str]) -> bytes:
    # cosign's .sig images carry an empty-ish image config naming the layers' diff ids.
    return json.dumps({
        "architecture": "", "os": "", "config": {},
        "created": "0001-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
    }, separators=(",", ":"), sort_keys=True).encode()


def sign_image(image: str, key_file: Path, password: bytes, config: Config,
               annotations: Mapping[str, str] | None = None) -> SignResult:
    ref = parse_reference(image)
    try:
        pem = key_file.read_bytes()[: MAX_PRIVATE_KEY_BYTES + 1]
    except OSError as e:
        raise UsageError(f"cannot read key {key_file}", why=reason_of(e)) from e
    private_key = load_private_key(pem, password)
    client = RegistryClient(ref.registry, insecure_registries=config.insecure_registries)
    try:
        digest = client.get_manifest(ref.repository, ref.digest or ref.tag_or_default).digest
    except ManifestNotFound as e:
        raise ManifestNotFound(
            f"cannot sign {ref}", why=f"the registry has no image {ref}",
            hint=f"push it first (docker push {ref}), or check the name and tag",
        ) from e
    payload = make_payload(ref.name, digest, dict(annotations or {}) or None)
    signature = b64encode(sign(private_key, payload))

    tag = digest.tag_prefix + SIG_TAG_SUFFIX
    try:
        layers = list(client.get_manifest(ref.repository, tag).layers)
        existing = [layer.to_json() for layer in layers]
    except ManifestNotFound:
        existing = []
    payload_digest = client.push_blob(ref.repository, payload)
    layer = {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": len(payload),
        "digest": str(payload_digest),
        "annotations": {SIGNATURE_ANNOTATION: signature},
    }
    layers_json = [item for item in existing if item != layer] + [layer]
    config_blob = _config_blob([str(item["digest"]) for item in layers_json])
    config_digest = client.push_blob(ref.repository, config_blob)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config_blob),
                   "digest": str(config_digest)},
        "layers": layers_json,
    }, separators=(",", ":")).encode()
    client.push_manifest(ref.repository, tag, manifest, OCI_MANIFEST)
    return SignResult(ref, digest, f"{ref.name}:{tag}", len(layers_json))
