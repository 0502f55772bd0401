"""``safe-docker airgap load -i FILE``: check an archive under the local policy, then give
docker a tar of safe-docker's own making.

The archive is read once, front to back, with the strict tar reader: index.json first,
then the registry bytes and signatures (each named by the index, each capped, all held in
memory under one cap), then the layers. Before the first layer byte is read every image
is judged under the local policy, so a layer member is accepted only when its name is a
digest the signed chain names (manifest → config → ``rootfs.diff_ids``, or the manifest's
blob digests); it is hashed while it is copied and refused when it does not hash to its
name. Anything the index does not name is refused.

What docker loads is written here: plain ustar headers, member names chosen here, the
verified config bytes and the checked layers, and a manifest.json written from the
verified digests. The user's archive never reaches docker. Docker's image ID is the config
digest; after loading it must be the verified one, and only then is the image tagged and
recorded in the cache, so that ``SAFE_DOCKER_OFFLINE=1 docker run repo:tag`` is decided
offline from it.

Docker (20.10, classic image store) keeps no ``RepoDigests`` for loaded images and refuses
to tag ``repo@sha256:…``; the verified chain signed manifest → config digest → image ID is
what identifies the loaded image.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from safedocker._internal.ustar import Kind, Limits, Member, TarFormatError, TarReader, TarWriter
from safedocker.airgap.archive import (
    ARCHIVE_MAX,
    INDEX_MAX,
    INDEX_NAME,
    LAYER_MAX,
    LAYERS_MAX,
    MEMBERS_MAX,
    METADATA_MAX,
    AirgapImage,
    Index,
    LayerSlot,
    Packed,
    bad_archive,
    config_member,
    judge,
    layer_of_member,
    manifest_member,
    read_index,
)
from safedocker.errors import CacheError, Refused, SafeDockerError, UsageError
from safedocker.policy.model import Mode
from safedocker.verify.material import MATERIAL_KIND_COSIGN, clamp_material_time

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker._docker.engine import DockerEngine
    from safedocker.cache.store import Cache
    from safedocker.policy.config import Config
    from safedocker.reference import Digest
    from safedocker.verify.verdict import Verdict

_CHUNK = 1024 * 1024
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class LoadSummary:
    archive: Path
    images: tuple[AirgapImage, ...]
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [f"loaded {len(self.images)} image(s) from {self.archive}"]
        lines += [f"  {i.reference}\t{i.digest}\timage {i.config_digest}\t"
                  f"signed by {', '.join(i.signers) or '-'}" for i in self.images]
        lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class _Checked:
    """What the archive was found to hold, once every image was judged."""

    packed: list[Packed]
    images: list[AirgapImage]
    slots: list[tuple[LayerSlot, ...]]
    filled: dict[tuple[int, int], Digest] = field(default_factory=dict)  # (image, slot) → blob

    def fills(self) -> dict[Digest, list[tuple[int, int]]]:
        """Each blob the verified images accept, and the (image, slot) pairs it fills."""
        found: dict[Digest, list[tuple[int, int]]] = {}
        for i, image_slots in enumerate(self.slots):
            for slot in image_slots:
                for digest in dict.fromkeys(slot.choices):
                    found.setdefault(digest, []).append((i, slot.position))
        return found


def _docker_name(digest: Digest) -> str:
    """Where a blob goes in the tar docker loads (OCI-layout-like names)."""
    return f"blobs/{digest.algorithm}/{digest.hex}"


# --- reading the archive ----------------------------------------------------------------------


def _read_metadata(archive: Path, reader: TarReader, index: Index
                   ) -> tuple[dict[str, bytes], Member | None]:
    """The members index.json names, up to the first layer member (returned with them)."""
    wanted = index.wanted()
    found: dict[str, bytes] = {}
    held = 0
    while (member := reader.next()) is not None:
        if member.kind is Kind.FILE and layer_of_member(member.name) is not None:
            return found, member
        cap = wanted.get(member.name)
        if member.kind is not Kind.FILE or cap is None:
            raise bad_archive(archive, f"member {member.name[:200]!r} is not listed in "
                                       "index.json")
        if member.name in found:
            raise bad_archive(archive, f"duplicate member {member.name!r}")
        if member.size > cap:
            raise bad_archive(archive, f"{member.name} is too large ({member.size} bytes, "
                                       f"at most {cap})")
        held += member.size
        if held > METADATA_MAX:
            raise bad_archive(archive, f"its manifests, configs and signatures exceed "
                                       f"{METADATA_MAX} bytes")
        found[member.name] = reader.read_member(cap)
    return found, None


def _packed(archive: Path, index: Index, found: dict[str, bytes]) -> list[Packed]:
    now = time.time()
    packed = []
    for image in index.images:
        manifests: dict[Digest, tuple[str, bytes]] = {}
        for digest in (image.digest, image.platform_digest):
            raw = found.get(manifest_member(digest))
            media_type = index.media_types.get(str(digest))
            if raw is None or media_type is None:
                raise bad_archive(archive, f"manifest {digest} of {image.reference} is missing")
            manifests[digest] = (media_type, raw)
        config = found.get(config_member(image.config_digest))
        if config is None:
            raise bad_archive(archive, f"config {image.config_digest} of {image.reference} "
                                       "is missing")
        # Dates from another machine are clamped to now: a forged future `fetched_at` would
        # keep the material usable offline forever once recorded.
        materials = {source: {d: clamp_material_time(data, now) for d, data in by_digest.items()}
                     for source, by_digest in index.materials(image, found).items()}
        packed.append(Packed(image, manifests, config, materials))
    return packed


def _check_all(archive: Path, packed: Sequence[Packed], config: Config,
               warnings: list[str]) -> _Checked:
    checked = _Checked([], [], [])
    for item in packed:
        try:
            verdict, slots = judge(item, config)
        except Refused as e:
            raise bad_archive(archive, f"{e.what}{': ' + e.why if e.why else ''}") from e
        _accept(archive, item, verdict, config, warnings)
        checked.packed.append(item)
        checked.images.append(item.image.with_signers(tuple(s.name for s in verdict.signers)))
        checked.slots.append(slots)
    return checked


def _accept(archive: Path, item: Packed, verdict: Verdict, config: Config,
            warnings: list[str]) -> None:
    if verdict.accepted and not verdict.warned:
        return
    if config.mode is Mode.ENFORCE and not verdict.accepted:
        refusal = verdict.refusal()
        raise Refused(f"refused archive {archive}",
                      why=f"{refusal.what}: {refusal.why}; nothing was loaded",
                      hint=refusal.hint)
    note = f"{item.image.reference}: {'; '.join(verdict.reasons) or 'not verified'}"
    warnings.append(note)
    sys.stderr.write(f"safe-docker: WARNING: {note} \u2014 loading because mode = "
                     f"{config.mode.value}\n")


def _copy_layer(archive: Path, reader: TarReader, member: Member, checked: _Checked,
                fills: dict[Digest, list[tuple[int, int]]], writer: TarWriter,
                seen: set[Digest]) -> None:
    """One layer member: a digest the verified images need, hashed while it is copied."""
    digest = layer_of_member(member.name)
    if digest is None or member.kind is not Kind.FILE:
        raise bad_archive(archive, f"member {member.name[:200]!r} comes after the layers or "
                                   "is not listed in index.json")
    if digest in seen:
        raise bad_archive(archive, f"duplicate member {member.name!r}")
    seen.add(digest)
    if len(seen) > LAYERS_MAX:
        raise bad_archive(archive, f"more than {LAYERS_MAX} layers")
    slots = fills.get(digest, [])
    if not slots:
        raise bad_archive(archive, f"layer {digest} is not a layer of any verified image "
                                   "(an unlisted member)")
    for key in slots:
        if key in checked.filled:
            raise bad_archive(archive, f"layer {key[1] + 1} of {checked.images[key[0]].reference}"
                                       " is in the archive twice")
        checked.filled[key] = digest
    h = hashlib.new(digest.algorithm)
    writer.begin(_docker_name(digest), member.size)
    for chunk in reader.chunks(_CHUNK):
        h.update(chunk)
        writer.write(chunk)
    writer.end()
    if h.hexdigest() != digest.hex:
        raise bad_archive(archive, f"layer {digest} was altered: its bytes hash to "
                                   f"{digest.algorithm}:{h.hexdigest()}")


def _finish(archive: Path, checked: _Checked, writer: TarWriter) -> None:
    """The verified configs and a manifest.json written from the verified digests."""
    entries: dict[Digest, dict[str, object]] = {}
    for i, (item, slots) in enumerate(zip(checked.packed, checked.slots, strict=True)):
        layers = []
        for slot in slots:
            digest = checked.filled.get((i, slot.position))
            if digest is None:
                raise bad_archive(archive, f"layer {slot.position + 1} ({slot.diff_id}) of "
                                           f"{item.image.reference} is missing")
            layers.append(_docker_name(digest))
        config_digest = item.image.config_digest
        if config_digest not in entries:
            writer.file(_docker_name(config_digest), item.config)
            entries[config_digest] = {"Config": _docker_name(config_digest), "RepoTags": [],
                                      "Layers": layers}
    writer.file("manifest.json", json.dumps(list(entries.values())).encode())
    writer.close()


def _read_and_stage(archive: Path, stream: IO[bytes], staged: IO[bytes], config: Config,
                    warnings: list[str]) -> _Checked:
    """Check the whole archive and write docker's tar to ``staged``; raise on anything."""
    reader = TarReader(stream, Limits(MEMBERS_MAX, LAYER_MAX, ARCHIVE_MAX))
    first = reader.next()
    if first is None or first.name != INDEX_NAME or first.kind is not Kind.FILE:
        raise bad_archive(archive, f"its first member is not {INDEX_NAME}")
    if first.size > INDEX_MAX:
        raise bad_archive(archive, f"{INDEX_NAME} is larger than {INDEX_MAX} bytes")
    index = read_index(reader.read_member(INDEX_MAX), archive)
    found, member = _read_metadata(archive, reader, index)
    checked = _check_all(archive, _packed(archive, index, found), config, warnings)
    writer = TarWriter(staged)
    for directory in ("blobs", "blobs/sha256", "blobs/sha512"):
        writer.directory(directory)
    seen: set[Digest] = set()
    fills = checked.fills()
    while member is not None:
        _copy_layer(archive, reader, member, checked, fills, writer, seen)
        member = reader.next()
    _finish(archive, checked, writer)
    return checked


# --- load ---------------------------------------------------------------------------------------


def _no_room(target: Path, e: OSError) -> SafeDockerError:
    return SafeDockerError(f"cannot write the image tar for docker to {target.parent}",
                           why=e.strerror or str(e),
                           hint="set TMPDIR to a directory with room for the images")


def load_archive(archive: Path, *, config: Config, cache: Cache | None,
                 docker: DockerEngine) -> LoadSummary:
    """Check an archive from ``airgap save`` under the local policy, then load it.

    Nothing reaches docker unless every image in the archive passes every check.
    """
    if cache is None:
        raise CacheError("cannot load without the verification cache",
                         why="the loaded images could not be verified offline afterwards",
                         hint="see `safe-docker doctor`")
    warnings: list[str] = []
    try:
        handle = open(archive, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UsageError(f"cannot read {archive}", why=e.strerror or str(e),
                         hint="name an archive written by `safe-docker airgap save`") from e
    with handle, tempfile.TemporaryDirectory(prefix="safe-docker-load-") as tmp:
        if handle.peek(4)[:2] == _GZIP or handle.peek(4)[:4] == _ZSTD:
            raise bad_archive(archive, "it is compressed",
                              hint="decompress it first (gunzip, zstd -d)")
        staged = Path(tmp) / "docker-load.tar"
        try:
            out = open(staged, "wb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise _no_room(staged, e) from e
        try:
            with out:
                checked = _read_and_stage(archive, handle, out, config, warnings)
        except TarFormatError as e:
            raise bad_archive(archive, f"it is not a plain tar safe-docker reads: {e}") from e
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise _no_room(staged, e) from e
            raise bad_archive(archive, f"it cannot be read ({e.strerror or e})") from e
        docker.load(staged)
        loaded = []
        for item, image in zip(checked.packed, checked.images, strict=True):
            actual = docker.image_id(image.image_id)
            if actual != image.image_id:
                raise Refused(f"docker did not load {image.reference} as verified",
                              why=f"expected image {image.image_id}, docker has {actual}",
                              hint="this docker engine may use the containerd image store")
            if image.tag is not None:
                docker.tag(image.image_id, f"{image.name}:{image.tag}")
            _record(cache, item)
            loaded.append(image)
    return LoadSummary(archive, tuple(loaded), tuple(warnings))


def _record(cache: Cache, item: Packed) -> None:
    """Make the loaded image verifiable offline: tag → digest, manifests, config, material."""
    image = item.image
    try:
        for digest, (media_type, raw) in item.manifests.items():
            cache.put_manifest(digest, media_type, raw)
        cache.put_config(image.config_digest, item.config)
        for source, materials in item.materials.items():  # under the repository it came from
            for digest, data in materials.items():
                cache.put_material(source, digest, MATERIAL_KIND_COSIGN, data)
        if image.tag is not None:
            cache.record_tag(image.name, image.tag, image.digest)
    except SafeDockerError as e:
        raise CacheError(f"loaded {image.reference} but could not record it in the cache",
                         why=e.why or e.what,
                         hint="run `safe-docker airgap load` again once the cache is usable") from e
