"""``safe-docker airgap save IMAGE… -o FILE``: verified images into one archive.

Each image is verified as ``run`` would verify it; its manifests, config and signature
material come from the cache or the registry, and its layers from ``docker save`` of the
verified image ID. The docker tar is read with the strict tar reader (links and harmless
PAX records tolerated: docker wrote it) and only by content: a layer is whichever regular
member hashes to the signed config's diff ID (or the signed manifest's blob digest), so
neither docker's manifest.json nor its layout (20.10's ``<id>/layer.tar``, 25+'s OCI
``blobs/sha256/…``) is trusted or needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING

from safedocker._internal import environment
from safedocker._internal.ustar import Kind, Limits, TarFormatError, TarReader, TarWriter
from safedocker.airgap.archive import (
    ARCHIVE_MAX,
    IMAGES_MAX,
    INDEX_NAME,
    LAYER_MAX,
    AirgapImage,
    LayerSlot,
    Packed,
    config_member,
    index_bytes,
    judge,
    layer_member,
    manifest_member,
    signature_members,
)
from safedocker.cache.store import recall, remember
from safedocker.errors import Refused, RegistryUnavailable, SafeDockerError
from safedocker.oci.manifest import parse_manifest
from safedocker.oci.media import CONFIG_MAX
from safedocker.policy.model import Action
from safedocker.reference import Digest, ImageRef, parse_reference
from safedocker.verify.material import MATERIAL_KIND_COSIGN
from safedocker.verify.rules import signature_sources
from safedocker.verify.verifier import Verifier

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker._docker.engine import DockerEngine
    from safedocker.cache.store import Cache, ManifestRecord, MaterialRecord
    from safedocker.policy.config import Config
    from safedocker.verify.verdict import Verdict

DOCKER_TAR_MEMBERS_MAX = 100_000
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SaveSummary:
    output: Path
    images: tuple[AirgapImage, ...]
    size: int

    def describe(self) -> str:
        lines = [f"saved {len(self.images)} image(s) to {self.output} ({self.size} bytes)"]
        lines += [f"  {i.reference}\t{i.digest}\tsigned by {', '.join(i.signers) or '-'}"
                  for i in self.images]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Blob:
    """A regular member of docker's tar: where its data is and how long it is."""

    offset: int
    size: int


# --- the registry bytes of a verified image ----------------------------------------------------


def _collect(verifier: Verifier, ref: ImageRef, verdict: Verdict) -> Packed:
    """The registry bytes of a verified image: from the cache, else from the registry.

    Signature material is fetched afresh when online, so its age starts now.
    """
    from safedocker.verify.material import fetch_material

    assert verdict.digest is not None and verdict.platform_digest is not None  # noqa: S101
    cache = verifier.cache
    offline = verifier.offline or verdict.offline
    client = None if offline else verifier.client(ref.registry)
    manifests: dict[Digest, tuple[str, bytes]] = {}
    for digest in dict.fromkeys((verdict.digest, verdict.platform_digest)):
        record = recall(cache, partial(_get_manifest, digest=digest))
        if record is not None:
            manifests[digest] = (record.media_type, record.data)
        elif client is not None:
            fetched = client.get_manifest(ref.repository, digest)
            manifests[digest] = (fetched.media_type, fetched.raw)
        else:
            raise RegistryUnavailable(f"cannot save {ref} offline",
                                      why=f"manifest {digest} is not cached")
    platform_type, platform_raw = manifests[verdict.platform_digest]
    platform = parse_manifest(platform_raw, platform_type, expected=verdict.platform_digest)
    if platform.config is None:
        raise Refused(f"cannot save {ref}", why="its manifest names no config")
    config_digest = platform.config.digest
    config_record = recall(cache, lambda c: c.get_config(config_digest))
    if config_record is not None:
        config = config_record.data
    elif client is not None:
        config = client.get_blob(ref.repository, platform.config, CONFIG_MAX)
        remember(cache, lambda c: c.put_config(config_digest, config))
    else:
        raise RegistryUnavailable(f"cannot save {ref} offline",
                                  why=f"image config {config_digest} is not cached")
    # Material from every repository the rules read signatures from (the image's own, a
    # signatures_repository), filed under that repository: so the loading machine's cache.
    materials: dict[str, dict[Digest, bytes]] = {}
    for name, source in signature_sources(verdict.decision, ref).items():
        found = materials.setdefault(name, {})
        reader = None if offline else verifier.client(source.registry)
        for digest in dict.fromkeys((verdict.digest, verdict.platform_digest)):
            if reader is not None:
                data = fetch_material(reader, source.repository, digest).to_bytes()
                remember(cache, partial(_put_material, name=name, digest=digest, data=data))
                found[digest] = data
            else:
                material = recall(cache, partial(_get_material, name=name, digest=digest))
                if material is not None:
                    found[digest] = material.data
    image = AirgapImage(
        reference=str(ref), name=ref.name, tag=ref.tag,
        digest=verdict.digest, platform_digest=verdict.platform_digest,
        config_digest=config_digest,
    )
    return Packed(image, manifests, config, materials)


def _get_manifest(cache: Cache, *, digest: Digest) -> ManifestRecord | None:
    return cache.get_manifest(digest)


def _get_material(cache: Cache, *, name: str, digest: Digest) -> MaterialRecord | None:
    return cache.get_material(name, digest, MATERIAL_KIND_COSIGN)


def _put_material(cache: Cache, *, name: str, digest: Digest, data: bytes) -> None:
    cache.put_material(name, digest, MATERIAL_KIND_COSIGN, data)


def _save_reference(text: str) -> ImageRef:
    ref = parse_reference(text)
    if ref.digest is None and ref.tag is None:
        ref = ref.with_tag("latest")
    return ref


# --- docker's tar, read by content ------------------------------------------------------------


def scan_docker_tar(stream: IO[bytes]) -> dict[Digest, _Blob]:
    """Every regular member of a ``docker save`` tar by its sha256 (links are skipped:
    their target is a regular member too)."""
    reader = TarReader(stream, Limits(DOCKER_TAR_MEMBERS_MAX, LAYER_MAX, ARCHIVE_MAX),
                       lenient=True)
    blobs: dict[Digest, _Blob] = {}
    while (member := reader.next()) is not None:
        if member.kind is not Kind.FILE:
            continue
        h = hashlib.sha256()
        for chunk in reader.chunks(_CHUNK):
            h.update(chunk)
        blobs.setdefault(Digest("sha256", h.hexdigest()), _Blob(member.offset, member.size))
    return blobs


def choose_layers(packed: Sequence[Packed], slots: Sequence[Sequence[LayerSlot]],
                  blobs: Mapping[Digest, _Blob]) -> dict[Digest, _Blob]:
    """The blob of docker's tar for each layer of each image: the uncompressed tar when
    docker wrote it, else the compressed blob the manifest names."""
    chosen: dict[Digest, _Blob] = {}
    for item, image_slots in zip(packed, slots, strict=True):
        for slot in image_slots:
            digest = next((d for d in slot.choices if d in blobs), None)
            if digest is None:
                raise Refused(f"cannot save {item.image.reference}",
                              why=f"docker save wrote no layer {slot.position + 1} "
                                  f"({slot.diff_id}) of image {item.image.image_id}",
                              hint="check `docker image inspect` of the image; pull it again")
            chosen[digest] = blobs[digest]
    return chosen


def _copy_blob(source: IO[bytes], blob: _Blob, digest: Digest, writer: TarWriter) -> None:
    """Copy one blob of docker's tar into the archive, hashing it again on the way."""
    source.seek(blob.offset)
    h = hashlib.new(digest.algorithm)
    writer.begin(layer_member(digest), blob.size)
    left = blob.size
    while left:
        chunk = source.read(min(_CHUNK, left))
        if not chunk:
            raise Refused("cannot save the images", why="docker's tar shrank while it was read")
        h.update(chunk)
        writer.write(chunk)
        left -= len(chunk)
    writer.end()
    if h.hexdigest() != digest.hex:
        raise Refused("cannot save the images", why="docker's tar changed while it was read")


def write_archive(output: IO[bytes], packed: Sequence[Packed], source: IO[bytes],
                  layers: Mapping[Digest, _Blob]) -> int:
    """index.json, then the registry bytes, then the signatures, then the layers."""
    files: dict[str, bytes] = {}
    for item in packed:
        for digest, (_, raw) in item.manifests.items():
            files[manifest_member(digest)] = raw
        files[config_member(item.image.config_digest)] = item.config
    signatures = signature_members(packed)
    writer = TarWriter(output)
    writer.file(INDEX_NAME, index_bytes(packed))
    for name, data in [*sorted(files.items()), *sorted(signatures.items())]:
        writer.file(name, data)
    for digest, blob in layers.items():
        _copy_blob(source, blob, digest, writer)
    writer.close()
    return writer.size


# --- save ---------------------------------------------------------------------------------------


def save_images(images: Sequence[str], output: Path, *, config: Config, cache: Cache | None,
                docker: DockerEngine, platform: str | None = None,
                offline: bool | None = None) -> SaveSummary:
    """Verify each image, then write it, its registry bytes and signatures to ``output``.

    Every image must be accepted by a ``verify`` rule (signed and trusted); images that
    the policy merely accepts carry nothing that a receiving machine could check.
    """
    if not images:
        raise SafeDockerError("nothing to save", hint="name at least one image")
    if len(images) > IMAGES_MAX:
        raise SafeDockerError("too many images", why=f"at most {IMAGES_MAX} per archive")
    verifier = Verifier(config, platform=platform,
                        offline=environment.offline() if offline is None else offline, cache=cache)
    packed: list[Packed] = []
    slots: list[tuple[LayerSlot, ...]] = []
    verdicts: list[Verdict] = []
    for text in images:
        ref = _save_reference(text)
        verdict = verifier.verify(ref)
        if not verdict.accepted:
            raise verdict.refusal()
        verdicts.append(verdict)
        if (verdict.decision.action is not Action.VERIFY or verdict.warned
                or verdict.digest is None or verdict.platform_digest is None):
            raise Refused(f"cannot save {ref}",
                          why="its policy does not verify signatures, so the archive could "
                              "not be checked where it is loaded",
                          hint="add a verify rule for it: `safe-docker policy add SCOPE --key "
                               "NAME`")
        item = _collect(verifier, ref, verdict)
        # What goes into the archive is exactly what is checked here and where it is loaded.
        check, image_slots = judge(item, config)
        if not check.accepted:
            raise check.refusal()
        signers = tuple(s.name for s in check.signers)
        packed.append(Packed(item.image.with_signers(signers), item.manifests, item.config,
                             item.materials))
        slots.append(image_slots)

    for item in packed:
        image = item.image
        if docker.image_id(image.image_id) != image.image_id:
            if verifier.offline or any(p.offline for p in verdicts):
                raise RegistryUnavailable(f"cannot save {image.reference} offline",
                                          why=f"docker has no image {image.image_id}",
                                          hint="pull it while online first")
            docker.pull(f"{image.name}@{image.digest}")
            if docker.image_id(image.image_id) != image.image_id:
                raise Refused(f"cannot save {image.reference}",
                              why=f"after pulling {image.digest}, docker has no image "
                                  f"{image.image_id} (the verified config)")

    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".safe-docker-save-", dir=output.parent) as tmp:
        docker_tar = Path(tmp) / "docker.tar"
        docker.save(docker_tar, list(dict.fromkeys(item.image.image_id for item in packed)))
        staged = Path(tmp) / "archive.tar"
        try:
            with open(docker_tar, "rb") as source, open(staged, "wb") as out:
                layers = choose_layers(packed, slots, scan_docker_tar(source))
                write_archive(out, packed, source, layers)
                out.flush()
                os.fsync(out.fileno())
        except TarFormatError as e:
            raise Refused("cannot read what docker save wrote", why=str(e)) from e
        os.chmod(staged, 0o644)
        os.replace(staged, output)
    with contextlib.suppress(OSError):
        fd = os.open(output.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return SaveSummary(output, tuple(item.image for item in packed), output.stat().st_size)
