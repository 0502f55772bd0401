"""Airgap transfer: `save` verified images into one archive, `load` it on another machine.

An archive is one uncompressed tar with exactly these members (regular files only)::

    index.json                          format, version, one entry per image, media types
    registry/sha256-<hex>.manifest      manifest bytes as the registry served them
    registry/sha256-<hex>.config        the image config named by the platform manifest
    signatures/sha256-<hex>.json        cosign signature material (SignatureMaterial bytes)
    docker/image.tar                    `docker save` of the images, by image ID

Nothing in an archive is trusted. ``load`` hash-checks every manifest against its digest
and the config against the digest the signed manifest names, verifies the signatures
under the *local* policy, and checks the docker tar against the config (the image ID is
the config digest; every layer tar must hash to the config's ``rootfs.diff_ids``) before
``docker load`` runs. One bad entry and nothing is loaded. After loading, the tag, the
manifests, the config and the signature material go into the verification cache so that
``SAFE_DOCKER_OFFLINE=1 docker run repo:tag`` is decided offline from them.

Docker (20.10, classic image store) keeps no ``RepoDigests`` for loaded images and refuses
to tag ``repo@sha256:…``; the verified chain signed manifest → config digest → image ID is
what identifies the loaded image.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import sys
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from safedocker._internal import environment, strictjson
from safedocker.cache.store import recall, remember
from safedocker.errors import (
    CacheError,
    Refused,
    RegistryUnavailable,
    SafeDockerError,
    VerificationError,
    reason_of,
)
from safedocker.oci.manifest import Manifest, parse_manifest
from safedocker.oci.media import CONFIG_MAX, MANIFEST_MAX
from safedocker.policy.model import Action, Mode
from safedocker.reference import Digest, ImageRef, parse_reference
from safedocker.verify.material import MATERIAL_KIND_COSIGN, SignatureMaterial
from safedocker.verify.verifier import Located, Verifier

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from safedocker._docker.engine import DockerEngine
    from safedocker.cache.store import Cache, ManifestRecord, MaterialRecord
    from safedocker.policy.config import Config
    from safedocker.verify.verdict import Verdict


ARCHIVE_FORMAT = "safe-docker-airgap"
ARCHIVE_VERSION = 1
INDEX_NAME = "index.json"
DOCKER_TAR_NAME = "docker/image.tar"

IMAGES_MAX = 256
INDEX_MAX = 1024 * 1024
SIGNATURE_MAX = 8 * 1024 * 1024  # the cache keeps no larger row
DOCKER_TAR_MAX = 512 * 1024**3
DOCKER_MANIFEST_MAX = 16 * 1024 * 1024  # the docker tar's manifest.json
INNER_MEMBERS_MAX = 100_000
_CHUNK = 1024 * 1024

_DIGEST_PART = r"(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})"
_MANIFEST_RE = re.compile(rf"^registry/{_DIGEST_PART}\.manifest$")
_CONFIG_RE = re.compile(rf"^registry/{_DIGEST_PART}\.config$")
_SIGNATURE_RE = re.compile(rf"^signatures/{_DIGEST_PART}\.json$")
# What `docker save` writes: the legacy layout (20.10) and the OCI layout (25+).
_INNER_NAME_RE = re.compile(
    r"^(manifest\.json|repositories|index\.json|oci-layout|blobs|blobs/sha256"
    r"|blobs/sha256/[0-9a-f]{64}|[0-9a-f]{64}\.json"
    r"|[0-9a-f]{64}(/(VERSION|json|layer\.tar))?)$"
)
_LOAD_HINT = "make the archive again with `safe-docker save` on the machine that verified it"


def _digest_of_part(part: str) -> Digest:
    algorithm, _, hexpart = part.partition("-")
    return Digest(algorithm, hexpart)


def _part(digest: Digest) -> str:
    return digest.tag_prefix


def _bad_archive(archive: Path, why: str, hint: str = _LOAD_HINT) -> Refused:
    return Refused(f"refused archive {archive}", why=f"{why}; nothing was loaded", hint=hint)


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AirgapImage:
    """One image of an archive: what it is called and the digests that identify it."""

    reference: str  # "127.0.0.1:5000/demo/app:v1" (or "name@sha256:…" when saved by digest)
    name: str
    tag: str | None
    digest: Digest  # what the reference was pinned to (index digest for multi-platform)
    platform_digest: Digest
    config_digest: Digest  # docker's image ID
    signers: tuple[str, ...] = ()

    @property
    def image_id(self) -> str:
        return str(self.config_digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "name": self.name,
            "tag": self.tag,
            "digest": str(self.digest),
            "platform_digest": str(self.platform_digest),
            "config_digest": str(self.config_digest),
        }


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


@dataclass(frozen=True)
class _Packed:
    """The registry bytes of one image, as written to or read from an archive."""

    image: AirgapImage
    manifests: Mapping[Digest, tuple[str, bytes]]  # digest → (media type, bytes)
    config: bytes
    materials: Mapping[Digest, bytes]  # SignatureMaterial.to_bytes()


# --- checking one image's registry bytes (save and load alike) ----------------------------------


def _locate(packed: _Packed) -> Located:
    """Hash-check the manifests and the config; the platform manifest must be the one the
    pinned manifest names, and the config the one the platform manifest names."""
    image = packed.image
    where = image.reference

    def manifest(digest: Digest) -> Manifest:
        if digest not in packed.manifests:
            raise Refused(f"no manifest {digest} for {where}", why="the archive lacks it")
        media_type, raw = packed.manifests[digest]
        return parse_manifest(raw, media_type, expected=digest, where=where)

    top = manifest(image.digest)
    if top.is_index:
        if image.platform_digest not in {child.digest for child in top.children}:
            raise Refused(f"manifest mismatch for {where}",
                          why=f"the index {image.digest} does not list {image.platform_digest}")
        platform = manifest(image.platform_digest)
        if platform.is_index:
            raise Refused(f"manifest mismatch for {where}", why="nested index")
    elif image.platform_digest != image.digest:
        raise Refused(f"manifest mismatch for {where}",
                      why=f"{image.digest} is not an index, yet a platform digest differs")
    else:
        platform = top
    if platform.config is None or platform.config.digest != image.config_digest:
        raise Refused(f"config mismatch for {where}",
                      why=f"the signed manifest does not name config {image.config_digest}")
    if not image.config_digest.matches(packed.config):
        raise Refused(f"config mismatch for {where}",
                      why=f"the config bytes do not hash to {image.config_digest}")
    if len(packed.config) != platform.config.size:
        raise Refused(f"config mismatch for {where}", why="the config has the wrong size")
    return Located(top.digest, platform.digest, image.config_digest)


def _materials(packed: _Packed, located: Located) -> list[tuple[Digest, SignatureMaterial]]:
    candidates = []
    for digest in dict.fromkeys((located.digest, located.manifest_digest)):
        data = packed.materials.get(digest)
        if data is None:
            continue
        material = SignatureMaterial.from_bytes(data)
        if material.digest != digest:
            raise VerificationError(f"signature material mismatch for {packed.image.reference}",
                                    why=f"material for {material.digest} filed under {digest}")
        candidates.append((digest, material))
    return candidates


def _judge(packed: _Packed, config: Config) -> Verdict:
    """The local policy's verdict on the packed bytes; never contacts a registry.

    Integrity failures (a digest that does not match) raise :class:`Refused`.
    """
    located = _locate(packed)
    ref = parse_reference(packed.image.reference)
    verifier = Verifier(config)
    decision = config.policy.decide(ref)
    if decision.action is not Action.VERIFY:
        # reject / accept / unmatched: decided by the policy alone, no network involved.
        return verifier.verify(ref)
    return verifier.judge(ref, decision, located, _materials(packed, located))


# --- the docker save tar ----------------------------------------------------------------------


def _inner_members(tar: tarfile.TarFile, what: str) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    while True:
        member = tar.next()
        if member is None:
            return members
        if len(members) >= INNER_MEMBERS_MAX:
            raise Refused(f"{what} has too many members", why=f"more than {INNER_MEMBERS_MAX}")
        name = member.name
        if posixpath.normpath(name) != name or not _INNER_NAME_RE.match(name):
            raise Refused(f"{what} has an unexpected member", why=repr(name)[:200])
        if name in members:
            raise Refused(f"{what} has a duplicate member", why=name)
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            if member.linkname.startswith("/") or target.startswith("../") or target == "..":
                raise Refused(f"{what} has a link out of the archive", why=name)
        elif not (member.isreg() or member.isdir()) or member.issparse():
            raise Refused(f"{what} has a member that is not a file or directory", why=name)
        for parent in _parents(name):
            if parent in members and not members[parent].isdir():
                raise Refused(f"{what} has a member below a non-directory", why=name)
        members[name] = member


def _parents(name: str) -> Iterator[str]:
    parts = name.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def _resolve(members: Mapping[str, tarfile.TarInfo], name: str, what: str) -> tarfile.TarInfo:
    """The regular file ``name`` names, following at most a few relative symlinks."""
    for _ in range(8):
        member = members.get(name)
        if member is None:
            raise Refused(f"{what} lacks a member its manifest.json names", why=name[:200])
        if member.isreg():
            return member
        if not member.issym():
            raise Refused(f"{what}: {name} is not a file")
        name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
    raise Refused(f"{what}: too many links", why=name[:200])


def _hash_layer(stream: IO[bytes]) -> str:
    """sha256 of the uncompressed layer tar (docker save writes them uncompressed; gzip is
    accepted as newer engines may keep compressed blobs)."""
    head = stream.read(4)
    source: IO[bytes] | gzip.GzipFile = stream
    if head[:2] == b"\x1f\x8b":
        source = gzip.GzipFile(fileobj=_Prefixed(head, stream))
        head = b""
    elif head == b"\x28\xb5\x2f\xfd":
        raise Refused("layer is zstd-compressed", why="not supported")
    h = hashlib.sha256(head)
    while chunk := source.read(_CHUNK):
        h.update(chunk)
    return f"sha256:{h.hexdigest()}"


class _Prefixed(io.RawIOBase):
    """``prefix`` followed by the rest of ``stream``, readable once."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, cap: int, what: str) -> bytes:
    if member.size > cap:
        raise Refused(f"{what} is too large", why=f"{member.size} bytes, at most {cap}")
    handle = tar.extractfile(member)
    if handle is None:
        raise Refused(f"{what} is not a file")
    with handle:
        data = handle.read(cap + 1)
    if len(data) != member.size:
        raise Refused(f"{what} is truncated")
    return data


def check_docker_tar(path: Path, images: Sequence[AirgapImage]) -> None:
    """Check a `docker save` tar against the verified images, or raise :class:`Refused`.

    manifest.json must list exactly the images' configs (the image IDs), each config file
    must hash to its digest, and the layer tars must hash, in order, to the config's
    ``rootfs.diff_ids`` — what docker will derive the image ID and layer chain from.
    """
    what = "the docker image tar"
    by_config: dict[Digest, set[str]] = {}
    for image in images:
        tags = by_config.setdefault(image.config_digest, set())
        if image.tag is not None:
            tags.add(f"{image.name}:{image.tag}")
    try:
        with tarfile.open(path, "r:") as tar:
            members = _inner_members(tar, what)
            if "manifest.json" not in members:
                raise Refused(f"{what} has no manifest.json")
            raw = _read_member(tar, _resolve(members, "manifest.json", what),
                               DOCKER_MANIFEST_MAX, f"{what}'s manifest.json")
            try:
                entries = strictjson.loads(raw)
            except ValueError as e:
                raise Refused(f"{what}'s manifest.json is not JSON") from e
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise Refused(f"{what}'s manifest.json is not a list of objects")
            seen: set[Digest] = set()
            for entry in entries:
                seen.add(_check_docker_entry(tar, members, entry, by_config, seen, what))
            missing = set(by_config) - seen
            if missing:
                raise Refused(f"{what} lacks an image",
                              why=", ".join(sorted(str(d) for d in missing)))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise Refused(f"{what} is unreadable", why=reason_of(e, "not a readable tar")) from e


def _check_docker_entry(tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo],
                        entry: Mapping[str, Any], by_config: Mapping[Digest, set[str]],
                        seen: set[Digest], what: str) -> Digest:
    config_path, layers = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_path, str) or not isinstance(layers, list) or not all(
        isinstance(layer, str) for layer in layers
    ):
        raise Refused(f"{what}'s manifest.json has a malformed entry")
    if entry.get("LayerSources"):
        raise Refused(f"{what} names foreign layer sources", why="not supported")
    config_bytes = _read_member(tar, _resolve(members, config_path, what), CONFIG_MAX,
                                f"{what}'s config {config_path}")
    digest = Digest.of(config_bytes)
    if digest not in by_config:
        raise Refused(f"{what} holds an image that was not verified", why=f"image {digest}")
    if digest in seen:
        raise Refused(f"{what} lists image {digest} twice")
    repo_tags = entry.get("RepoTags") or []
    if not isinstance(repo_tags, list) or not set(repo_tags) <= by_config[digest]:
        raise Refused(f"{what} would tag image {digest} with names that were not verified",
                      why=str(repo_tags)[:200])
    try:
        config_json: Any = strictjson.loads(config_bytes)
        rootfs = config_json["rootfs"]
        diff_ids = rootfs["diff_ids"]
    except (ValueError, KeyError, TypeError) as e:
        raise Refused(f"image config {digest} has no rootfs.diff_ids") from e
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise Refused(f"{what}: image {digest} has {len(layers)} layer tars but its config "
                      f"names {len(diff_ids) if isinstance(diff_ids, list) else 0}")
    for index, (layer, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
        member = _resolve(members, layer, what)
        handle = tar.extractfile(member)
        if handle is None:
            raise Refused(f"{what}: layer {layer} is not a file")
        with handle:
            actual = _hash_layer(handle)
        if actual != diff_id:
            raise Refused(f"{what}: layer {index + 1} of image {digest} was altered",
                          why=f"{layer} hashes to {actual}, the signed config says {diff_id}")
    return digest


# --- save ---------------------------------------------------------------------------------------


def _collect(verifier: Verifier, ref: ImageRef, verdict: Verdict) -> _Packed:
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
    materials: dict[Digest, bytes] = {}
    for digest in dict.fromkeys((verdict.digest, verdict.platform_digest)):
        if client is not None:
            data = fetch_material(client, ref.repository, digest).to_bytes()
            remember(cache, partial(_put_material, name=ref.name, digest=digest, data=data))
            materials[digest] = data
        else:
            material = recall(cache, partial(_get_material, name=ref.name, digest=digest))
            if material is not None:
                materials[digest] = material.data
    image = AirgapImage(
        reference=str(ref), name=ref.name, tag=ref.tag,
        digest=verdict.digest, platform_digest=verdict.platform_digest,
        config_digest=config_digest,
    )
    return _Packed(image, manifests, config, materials)


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
    packed: list[_Packed] = []
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
        check = _judge(item, config)
        if not check.accepted:
            raise check.refusal()
        signers = tuple(s.name for s in check.signers)
        packed.append(_Packed(_with_signers(item.image, signers), item.manifests, item.config,
                              item.materials))

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
        docker_tar = Path(tmp) / "image.tar"
        ids = list(dict.fromkeys(item.image.image_id for item in packed))
        docker.save(docker_tar, ids)
        all_images = [item.image for item in packed]
        check_docker_tar(docker_tar, all_images)
        staged = Path(tmp) / "archive.tar"
        _write_archive(staged, packed, docker_tar)
        with open(staged, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(staged, 0o644)
        os.replace(staged, output)
    with contextlib.suppress(OSError):
        fd = os.open(output.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return SaveSummary(output, tuple(item.image for item in packed), output.stat().st_size)


def _with_signers(image: AirgapImage, signers: tuple[str, ...]) -> AirgapImage:
    return AirgapImage(image.reference, image.name, image.tag, image.digest,
                       image.platform_digest, image.config_digest, signers)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _write_archive(path: Path, packed: Sequence[_Packed], docker_tar: Path) -> None:
    media_types: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for item in packed:
        for digest, (media_type, raw) in item.manifests.items():
            media_types[str(digest)] = media_type
            files[f"registry/{_part(digest)}.manifest"] = raw
        files[f"registry/{_part(item.image.config_digest)}.config"] = item.config
        for digest, data in item.materials.items():
            files[f"signatures/{_part(digest)}.json"] = data
    index = {
        "format": ARCHIVE_FORMAT,
        "version": ARCHIVE_VERSION,
        "created": time.time(),
        "images": [item.image.to_json() for item in packed],
        "media_types": media_types,
        "docker_tar": {"sha256": _sha256_file(docker_tar), "size": docker_tar.stat().st_size},
    }
    now = int(time.time())

    def info(name: str, size: int) -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.size, member.mode, member.mtime = size, 0o644, now
        return member

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(index, sort_keys=True, indent=1).encode()
        tar.addfile(info(INDEX_NAME, len(data)), io.BytesIO(data))
        for name, blob in sorted(files.items()):
            tar.addfile(info(name, len(blob)), io.BytesIO(blob))
        with open(docker_tar, "rb") as handle:
            tar.addfile(info(DOCKER_TAR_NAME, docker_tar.stat().st_size), handle)


# --- load ---------------------------------------------------------------------------------------


@dataclass
class _Archive:
    index: Mapping[str, Any]
    manifests: dict[Digest, bytes] = field(default_factory=dict)
    configs: dict[Digest, bytes] = field(default_factory=dict)
    signatures: dict[Digest, bytes] = field(default_factory=dict)
    docker_tar: tarfile.TarInfo | None = None


def _read_archive(archive: Path, tar: tarfile.TarFile) -> _Archive:
    index: object = None
    found = _Archive(index={})
    names: set[str] = set()
    limit = 2 + IMAGES_MAX * 6
    while True:
        member = tar.next()
        if member is None:
            break
        name = member.name
        if len(names) >= limit:
            raise _bad_archive(archive, f"more than {limit} members")
        if name in names:
            raise _bad_archive(archive, f"duplicate member {name!r}")
        names.add(name)
        if not member.isreg() or member.issparse():
            raise _bad_archive(archive, f"member {name!r} is not a regular file")
        if name == INDEX_NAME:
            data = _read_member(tar, member, INDEX_MAX, INDEX_NAME)
            try:
                index = strictjson.loads(data)
            except ValueError as e:
                raise _bad_archive(archive, "index.json is not JSON") from e
        elif name == DOCKER_TAR_NAME:
            if member.size > DOCKER_TAR_MAX:
                raise _bad_archive(archive, f"{name} is larger than {DOCKER_TAR_MAX} bytes")
            found.docker_tar = member
        elif m := _MANIFEST_RE.match(name):
            found.manifests[_digest_of_part(m[1])] = _read_member(tar, member, MANIFEST_MAX, name)
        elif m := _CONFIG_RE.match(name):
            found.configs[_digest_of_part(m[1])] = _read_member(tar, member, CONFIG_MAX, name)
        elif m := _SIGNATURE_RE.match(name):
            found.signatures[_digest_of_part(m[1])] = _read_member(tar, member, SIGNATURE_MAX,
                                                                   name)
        else:
            raise _bad_archive(archive, f"unexpected member {name[:200]!r}")
    if not isinstance(index, dict):
        raise _bad_archive(archive, "it has no index.json")
    if found.docker_tar is None:
        raise _bad_archive(archive, f"it has no {DOCKER_TAR_NAME}")
    found.index = index
    return found


def _entries(archive: Path, found: _Archive) -> list[_Packed]:
    index = found.index
    if index.get("format") != ARCHIVE_FORMAT or index.get("version") != ARCHIVE_VERSION:
        raise _bad_archive(archive, f"not a {ARCHIVE_FORMAT} archive of version "
                                    f"{ARCHIVE_VERSION}")
    images, media_types = index.get("images"), index.get("media_types")
    if not isinstance(images, list) or not images or len(images) > IMAGES_MAX:
        raise _bad_archive(archive, "index.json lists no images, or too many")
    if not isinstance(media_types, dict):
        raise _bad_archive(archive, "index.json has no media types")
    packed = []
    for entry in images:
        try:
            image = _image_entry(entry)
        except (SafeDockerError, KeyError, TypeError, ValueError) as e:
            raise _bad_archive(archive, "index.json has a malformed image entry") from e
        manifests: dict[Digest, tuple[str, bytes]] = {}
        for digest in (image.digest, image.platform_digest):
            raw = found.manifests.get(digest)
            media_type = media_types.get(str(digest))
            if raw is None or not isinstance(media_type, str):
                raise _bad_archive(archive, f"manifest {digest} of {image.reference} is missing")
            manifests[digest] = (media_type, raw)
        config = found.configs.get(image.config_digest)
        if config is None:
            raise _bad_archive(archive, f"config {image.config_digest} of {image.reference} "
                                        "is missing")
        materials = {d: found.signatures[d] for d in (image.digest, image.platform_digest)
                     if d in found.signatures}
        packed.append(_Packed(image, manifests, config, materials))
    return packed


def _image_entry(entry: Any) -> AirgapImage:
    if not isinstance(entry, dict):
        raise TypeError("entry is not an object")
    ref = parse_reference(str(entry["reference"]))
    tag = entry.get("tag")
    if tag is not None and (not isinstance(tag, str) or tag != ref.tag):
        raise ValueError("tag disagrees with the reference")
    if entry.get("name") != ref.name:
        raise ValueError("name disagrees with the reference")
    digest = Digest.parse(str(entry["digest"]))
    if ref.digest is not None and ref.digest != digest:
        raise ValueError("digest disagrees with the reference")
    return AirgapImage(
        reference=str(ref), name=ref.name, tag=ref.tag, digest=digest,
        platform_digest=Digest.parse(str(entry["platform_digest"])),
        config_digest=Digest.parse(str(entry["config_digest"])),
    )


def _extract_docker_tar(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path,
                        expected: object) -> None:
    handle = tar.extractfile(member)
    if handle is None:
        raise Refused(f"{DOCKER_TAR_NAME} is not a file")
    h = hashlib.sha256()
    size = 0
    try:
        out = open(target, "wb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise _no_room(target, e) from e
    with handle, out:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            try:
                out.write(chunk)
            except OSError as e:
                raise _no_room(target, e) from e
    if size != member.size:
        raise Refused(f"{DOCKER_TAR_NAME} is truncated")
    if not isinstance(expected, dict) or expected.get("sha256") != f"sha256:{h.hexdigest()}":
        raise Refused(f"{DOCKER_TAR_NAME} does not match index.json",
                      why="the docker image tar was altered or truncated in transit")


def _no_room(target: Path, e: OSError) -> SafeDockerError:
    return SafeDockerError(f"cannot unpack the docker image tar to {target.parent}",
                           why=e.strerror or str(e),
                           hint="set TMPDIR to a directory with room for the images")


def load_archive(archive: Path, *, config: Config, cache: Cache | None,
                 docker: DockerEngine) -> LoadSummary:
    """Check an archive from :func:`save_images` under the local policy, then load it.

    Nothing reaches docker unless every image in the archive passes every check.
    """
    if cache is None:
        raise CacheError("cannot load without the verification cache",
                         why="the loaded images could not be verified offline afterwards",
                         hint="see `safe-docker doctor`")
    warnings: list[str] = []
    loaded: list[AirgapImage] = []
    try:
        handle = open(archive, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise SafeDockerError(f"cannot read {archive}", why=e.strerror or str(e)) from e
    with handle, tempfile.TemporaryDirectory(prefix="safe-docker-load-") as tmp:
        try:
            with tarfile.open(fileobj=handle, mode="r:") as tar:
                found = _read_archive(archive, tar)
                packed = _entries(archive, found)
                verdicts = _check_all(archive, packed, config, warnings)
                assert found.docker_tar is not None  # noqa: S101
                inner = Path(tmp) / "image.tar"
                _extract_docker_tar(tar, found.docker_tar, inner,
                                    found.index.get("docker_tar"))
        except (tarfile.TarError, EOFError, OSError) as e:
            raise _bad_archive(archive, f"it is not a readable tar ({reason_of(e, 'damaged')})",
                               hint="is it compressed? decompress it first") from e
        except Refused as e:
            if e.what.startswith("refused archive"):
                raise
            raise _bad_archive(archive, f"{e.what}{': ' + e.why if e.why else ''}") from e
        images = [_with_signers(p.image, tuple(s.name for s in v.signers))
                  for p, v in zip(packed, verdicts, strict=True)]
        try:
            check_docker_tar(inner, images)
        except Refused as e:
            raise _bad_archive(archive, f"{e.what}{': ' + e.why if e.why else ''}") from e

        docker.load(inner)
        for item, image in zip(packed, images, strict=True):
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


def _check_all(archive: Path, packed: Sequence[_Packed], config: Config,
               warnings: list[str]) -> list[Verdict]:
    verdicts = []
    for item in packed:
        verdict = _judge(item, config)
        if not verdict.accepted or verdict.warned:
            if config.mode is Mode.ENFORCE and not verdict.accepted:
                refusal = verdict.refusal()
                raise Refused(f"refused archive {archive}",
                              why=f"{refusal.what}: {refusal.why}; nothing was loaded",
                              hint=refusal.hint)
            note = f"{item.image.reference}: {'; '.join(verdict.reasons) or 'not verified'}"
            warnings.append(note)
            sys.stderr.write(f"safe-docker: WARNING: {note} \u2014 loading because mode = "
                             f"{config.mode.value}\n")
        verdicts.append(verdict)
    return verdicts


def _record(cache: Cache, item: _Packed) -> None:
    """Make the loaded image verifiable offline: tag → digest, manifests, config, material."""
    image = item.image
    try:
        for digest, (media_type, raw) in item.manifests.items():
            cache.put_manifest(digest, media_type, raw)
        cache.put_config(image.config_digest, item.config)
        for digest, data in item.materials.items():
            cache.put_material(image.name, digest, MATERIAL_KIND_COSIGN, data)
        if image.tag is not None:
            cache.record_tag(image.name, image.tag, image.digest)
    except SafeDockerError as e:
        raise CacheError(f"loaded {image.reference} but could not record it in the cache",
                         why=e.why or e.what,
                         hint="run `safe-docker load` again once the cache is usable") from e


