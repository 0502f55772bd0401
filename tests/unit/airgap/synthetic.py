"""Synthetic signed images and airgap archives for the unit tests, and a recording docker.

An image here is built from scratch (random layer content, a config naming its diff IDs,
a manifest naming the gzip blobs), signed with a throwaway key; the "docker" is a script
that records its argv and keeps a copy of every tar it is asked to load, so a test can say
both "nothing was loaded" (the script never ran) and "docker was handed exactly this".
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import stat
import tarfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from safedocker.oci.media import DOCKER_MANIFEST
from safedocker.policy.config import KeyEntry
from safedocker.reference import Digest
from safedocker.signatures.cosign import (
    SIGNATURE_ANNOTATION,
    SIGNATURE_ARTIFACT_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from safedocker.signatures.cosignkey import generate_key_pair, load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import load_public_key
from safedocker.verify.material import SignatureMaterial

if TYPE_CHECKING:
    from pathlib import Path

NAME = "127.0.0.1:5000/team/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Key:
    def __init__(self, tmp_path: Path, name: str) -> None:
        private_pem, public_pem = generate_key_pair(b"pw")
        self.private = load_private_key(private_pem, b"pw")
        self.name = name
        path = tmp_path / f"{name}.pub"
        path.write_bytes(public_pem)
        self.entry = KeyEntry(name, load_public_key(public_pem, name).fingerprint, path)

    def material(self, digest: Digest, *, fetched_at: float | None = None,
                 referrer: bool = False) -> bytes:
        """Material holding one signature of ``digest``: in a `.sig` manifest, or (with
        ``referrer``) in a cosign OCI 1.1 signature artifact only."""
        payload = make_payload(NAME, digest, None)
        signature = base64.b64encode(sign(self.private, payload)).decode()
        layer = {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "size": len(payload),
                 "digest": str(Digest.of(payload)),
                 "annotations": {SIGNATURE_ANNOTATION: signature}}
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                       "digest": str(Digest.of(b"{}"))},
            "layers": [layer]}).encode()
        blobs = {str(Digest.of(payload)): payload}
        when = time.time() if fetched_at is None else fetched_at
        if not referrer:
            return SignatureMaterial(digest, manifest, blobs, when).to_bytes()
        artifact = json.loads(manifest)
        artifact["artifactType"] = SIGNATURE_ARTIFACT_TYPE
        artifact["config"] = {"mediaType": SIGNATURE_ARTIFACT_TYPE, "size": 2,
                              "digest": str(Digest.of(b"{}"))}
        artifact["subject"] = {"mediaType": DOCKER_MANIFEST, "size": 1, "digest": str(digest)}
        return SignatureMaterial(digest, None, blobs, when, bundles_fetched=True,
                                 sig_referrers=(json.dumps(artifact).encode(),)).to_bytes()


def tar_of(files: dict[str, bytes], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def random_layer() -> bytes:
    return tar_of({"marker": os.urandom(16)})


@dataclass
class Image:
    tag: str = "v1"
    layers: list[bytes] = field(default_factory=lambda: [random_layer()])
    config_text: str | None = None  # a config of the test's own (its diff IDs still apply)

    @property
    def blobs(self) -> list[bytes]:
        """The layers as a registry serves them (gzip)."""
        return [gzip.compress(layer, mtime=0) for layer in self.layers]

    @property
    def diff_ids(self) -> list[Digest]:
        return [Digest.of(layer) for layer in self.layers]

    @property
    def config(self) -> bytes:
        if self.config_text is not None:
            return self.config_text.encode()
        return json.dumps({"architecture": "amd64", "os": "linux",
                           "rootfs": {"type": "layers",
                                      "diff_ids": [str(d) for d in self.diff_ids]}}).encode()

    @property
    def config_digest(self) -> Digest:
        return Digest.of(self.config)

    @property
    def manifest(self) -> bytes:
        return json.dumps({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(self.config), "digest": str(self.config_digest)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(blob), "digest": str(Digest.of(blob))}
                       for blob in self.blobs],
        }).encode()

    @property
    def digest(self) -> Digest:
        return Digest.of(self.manifest)

    def entry(self) -> dict[str, object]:
        return {"reference": f"{NAME}:{self.tag}", "name": NAME, "tag": self.tag,
                "digest": str(self.digest), "platform_digest": str(self.digest),
                "config_digest": str(self.config_digest)}


def index_json(images: list[Image], **extra: object) -> bytes:
    return json.dumps({
        "format": "safe-docker-airgap", "version": 2, "created": 0,
        "images": [i.entry() for i in images],
        "media_types": {str(i.digest): DOCKER_MANIFEST for i in images},
        **extra,
    }).encode()


def archive_files(images: list[Image], key: Key, *, compressed: bool = False
                  ) -> dict[str, bytes]:
    """The members of a version 2 archive, in the order `airgap save` writes them."""
    files: dict[str, bytes] = {"index.json": index_json(images)}
    for image in images:
        files[f"registry/{image.digest.tag_prefix}.manifest"] = image.manifest
        files[f"registry/{image.config_digest.tag_prefix}.config"] = image.config
    for image in images:
        files[f"signatures/{image.digest.tag_prefix}.json"] = key.material(image.digest)
    for image in images:
        for layer in (image.blobs if compressed else image.layers):
            files[f"layers/{Digest.of(layer).tag_prefix}"] = layer
    return files


def write_archive(path: Path, files: dict[str, bytes],
                  extra: tuple[tarfile.TarInfo, ...] = ()) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    return path


@dataclass
class FakeDocker:
    """A docker that records argv and keeps a copy of each tar handed to `docker load`."""

    path: Path
    log: Path
    kept: Path

    @classmethod
    def make(cls, tmp_path: Path) -> FakeDocker:
        log, kept, script = (tmp_path / "docker-calls.jsonl", tmp_path / "loaded",
                             tmp_path / "docker")
        kept.mkdir()
        script.write_text(
            "#!/usr/bin/env python3\n"
            "import json, shutil, sys\n"
            "args = sys.argv[1:]\n"
            f"open({str(log)!r}, 'a').write(json.dumps(args) + '\\n')\n"
            "if args[:1] == ['load']:\n"
            f"    shutil.copy(args[args.index('--input') + 1], {str(kept / 'load.tar')!r})\n"
            "if args[:2] == ['image', 'inspect']:\n"
            "    print(args[-1])\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return cls(script, log, kept)

    @property
    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    @property
    def loaded(self) -> Path:
        return self.kept / "load.tar"
