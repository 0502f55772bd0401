"""The airgap archive: its members, its index.json, and the checks save and load share.

An archive is one uncompressed plain tar with these members, in this order::

    index.json                          format, version, one entry per image, media types
                                        (version 3: the signature sources too)
    registry/sha256-<hex>.manifest      manifest bytes as the registry served them
    registry/sha256-<hex>.config        the image config the platform manifest names
    signatures/sha256-<hex>.json        version 2: signature material (SignatureMaterial
                                        bytes) read from the image's own repository
    signatures/<n>/sha256-<hex>.json    version 3: signature material read from the
                                        repository ``signature_sources[n]`` names
    layers/sha256-<hex>                 one layer blob, named by its own digest

Signature material belongs to the repository it was read from: a rule with a
``signatures_repository`` reads it there, and the cache files it under that name. Version
2 (what an older safe-docker reads) is written when every image's material comes from its
own repository and no digest is shared by two repositories; otherwise version 3, which
names each source. Both are read.

Every member is named by the digest of its bytes, and every digest is reached from a
signed manifest: a layer is the config's ``rootfs.diff_ids[i]`` (the uncompressed tar,
what ``docker save`` writes on the classic image store) or the manifest's
``layers[i].digest`` (the compressed blob, what it writes on the containerd store).
Nothing else may be in an archive. No member is ever handed to docker as it came: load
writes its own tar for ``docker load`` from the checked bytes.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker._internal import strictjson
from safedocker.errors import Refused, SafeDockerError, VerificationError
from safedocker.oci.manifest import Manifest, parse_manifest
from safedocker.oci.media import CONFIG_MAX, MANIFEST_MAX
from safedocker.policy.model import Action
from safedocker.reference import Digest, parse_reference
from safedocker.verify.material import SignatureMaterial
from safedocker.verify.verifier import Located, Verifier

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.policy.config import Config
    from safedocker.verify.verdict import Verdict

ARCHIVE_FORMAT = "safe-docker-airgap"
ARCHIVE_VERSION = 2  # material from each image's own repository only
SOURCES_VERSION = 3  # material filed under the repository it was read from
INDEX_NAME = "index.json"

KiB, MiB, GiB = 1024, 1024**2, 1024**3
IMAGES_MAX = 256
LAYERS_MAX = 8192  # layer members of one archive (docker allows 127 layers per image)
INDEX_MAX = 1 * MiB
SIGNATURE_MAX = 8 * MiB  # the cache keeps no larger row
METADATA_MAX = 64 * MiB  # index, manifests, configs and signatures, held in memory together
LAYER_MAX = 256 * GiB
ARCHIVE_MAX = 1024 * GiB
SOURCES_MAX = 64  # repositories signature material was read from, in one archive
MEMBERS_MAX = 1 + IMAGES_MAX * 5 + LAYERS_MAX + IMAGES_MAX * 2 * SOURCES_MAX

LOAD_HINT = "make the archive again with `safe-docker airgap save` on the machine that verified it"

_DIGEST_PART = r"(?:sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})"
_LAYER_RE = re.compile(rf"^layers/(?P<digest>{_DIGEST_PART})$")


def manifest_member(digest: Digest) -> str:
    return f"registry/{digest.tag_prefix}.manifest"


def config_member(digest: Digest) -> str:
    return f"registry/{digest.tag_prefix}.config"


def signature_member(digest: Digest, source: int | None = None) -> str:
    """Where material for ``digest`` is: from the image's own repository (version 2), or
    from ``signature_sources[source]`` (version 3)."""
    if source is None:
        return f"signatures/{digest.tag_prefix}.json"
    return f"signatures/{source}/{digest.tag_prefix}.json"


def layer_member(digest: Digest) -> str:
    return f"layers/{digest.tag_prefix}"


def layer_of_member(name: str) -> Digest | None:
    """The digest a ``layers/…`` member name claims, or None for any other name."""
    match = _LAYER_RE.match(name)
    if match is None:
        return None
    algorithm, _, hexpart = match["digest"].partition("-")
    return Digest(algorithm, hexpart)


def bad_archive(archive: object, why: str, hint: str = LOAD_HINT) -> Refused:
    return Refused(f"refused archive {archive}", why=f"{why}; nothing was loaded", hint=hint)


# --- JSON as Go reads it ------------------------------------------------------------------


def check_go_keys(obj: Mapping[str, object], what: str) -> None:
    """Refuse an object with two keys that Go's encoding/json takes for one field.

    Go matches JSON keys to struct fields case-insensitively (with Unicode folding: the
    Kelvin sign is a K) and keeps the last; Python keeps both. Whatever docker reads as a
    struct must mean one thing to both.
    """
    seen: dict[str, str] = {}
    for key in obj:
        folded = key.casefold()
        if folded in seen:
            raise Refused(f"{what} has keys that differ only in case",
                          why=f"{seen[folded][:40]!r} and {key[:40]!r} (docker's Go reader "
                              "would read the last one)")
        seen[folded] = key


def config_diff_ids(config: bytes, what: str) -> tuple[Digest, ...]:
    """``rootfs.diff_ids`` of an image config, read as docker reads it (or refused)."""
    try:
        doc: Any = strictjson.loads(config)
    except (ValueError, RecursionError) as e:
        raise Refused(f"{what} is not JSON") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("rootfs"), dict):
        raise Refused(f"{what} has no rootfs")
    check_go_keys(doc, what)
    rootfs = doc["rootfs"]
    check_go_keys(rootfs, f"{what}'s rootfs")
    diff_ids = rootfs.get("diff_ids")
    if rootfs.get("type") != "layers" or not isinstance(diff_ids, list) or not diff_ids:
        raise Refused(f"{what} names no layers")
    if not all(isinstance(d, str) for d in diff_ids):
        raise Refused(f"{what} has a malformed diff ID", why="not a string")
    try:
        return tuple(Digest.parse(d) for d in diff_ids)
    except SafeDockerError as e:
        raise Refused(f"{what} has a malformed diff ID", why=e.what) from e


# --- values -------------------------------------------------------------------------------


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

    def with_signers(self, signers: tuple[str, ...]) -> AirgapImage:
        return AirgapImage(self.reference, self.name, self.tag, self.digest,
                           self.platform_digest, self.config_digest, signers)

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
class Packed:
    """The registry bytes of one image, as written to or read from an archive."""

    image: AirgapImage
    manifests: Mapping[Digest, tuple[str, bytes]]  # digest → (media type, bytes)
    config: bytes
    # the repository it was read from (the image's own, or a rule's signatures_repository)
    # → digest → SignatureMaterial.to_bytes()
    materials: Mapping[str, Mapping[Digest, bytes]]


@dataclass(frozen=True)
class LayerSlot:
    """Layer ``position`` of an image: the blobs that may fill it, both signed."""

    position: int
    diff_id: Digest  # the uncompressed tar (the config's rootfs.diff_ids)
    blob: Digest  # the blob as the registry serves it (the manifest's layers)

    @property
    def choices(self) -> tuple[Digest, Digest]:
        return (self.diff_id, self.blob)


# --- checking one image's registry bytes (save and load alike) ------------------------------


def _platform_manifest(packed: Packed) -> Manifest:
    """Hash-check the manifests: the platform manifest must be the one the pinned manifest
    names (itself, or a child of the index)."""
    image = packed.image
    where = image.reference

    def manifest(digest: Digest) -> Manifest:
        if digest not in packed.manifests:
            raise Refused(f"no manifest {digest} for {where}", why="the archive lacks it")
        media_type, raw = packed.manifests[digest]
        return parse_manifest(raw, media_type, expected=digest, where=where)

    top = manifest(image.digest)
    if not top.is_index:
        if image.platform_digest != image.digest:
            raise Refused(f"manifest mismatch for {where}",
                          why=f"{image.digest} is not an index, yet a platform digest differs")
        return top
    if image.platform_digest not in {child.digest for child in top.children}:
        raise Refused(f"manifest mismatch for {where}",
                      why=f"the index {image.digest} does not list {image.platform_digest}")
    platform = manifest(image.platform_digest)
    if platform.is_index:
        raise Refused(f"manifest mismatch for {where}", why="nested index")
    return platform


def locate(packed: Packed) -> tuple[Located, tuple[LayerSlot, ...]]:
    """Hash-check manifests and config; the config must be the one the platform manifest
    names. Returns what was located and the image's layer slots, in order."""
    image = packed.image
    where = image.reference
    platform = _platform_manifest(packed)
    if platform.config is None or platform.config.digest != image.config_digest:
        raise Refused(f"config mismatch for {where}",
                      why=f"the signed manifest does not name config {image.config_digest}")
    if not image.config_digest.matches(packed.config):
        raise Refused(f"config mismatch for {where}",
                      why=f"the config bytes do not hash to {image.config_digest}")
    if len(packed.config) != platform.config.size:
        raise Refused(f"config mismatch for {where}", why="the config has the wrong size")
    diff_ids = config_diff_ids(packed.config, f"the image config of {where}")
    if len(diff_ids) != len(platform.layers):
        raise Refused(f"layer mismatch for {where}",
                      why=f"the manifest names {len(platform.layers)} layers, the config "
                          f"{len(diff_ids)}")
    slots = tuple(LayerSlot(i, diff_id, layer.digest)
                  for i, (diff_id, layer) in enumerate(zip(diff_ids, platform.layers,
                                                           strict=True)))
    return Located(image.digest, platform.digest, image.config_digest), slots


def _materials(packed: Packed, located: Located
               ) -> dict[str, list[tuple[Digest, SignatureMaterial]]]:
    """The material of each source repository, by repository name."""
    by_source: dict[str, list[tuple[Digest, SignatureMaterial]]] = {}
    for source, materials in packed.materials.items():
        candidates = by_source.setdefault(source, [])
        for digest in dict.fromkeys((located.digest, located.manifest_digest)):
            data = materials.get(digest)
            if data is None:
                continue
            material = SignatureMaterial.from_bytes(data)
            if material.digest != digest:
                raise VerificationError(
                    f"signature material mismatch for {packed.image.reference}",
                    why=f"material for {material.digest} filed under {digest}")
            candidates.append((digest, material))
    return by_source


def judge(packed: Packed, config: Config) -> tuple[Verdict, tuple[LayerSlot, ...]]:
    """The local policy's verdict on the packed bytes, and the layers they sign; never
    contacts a registry. Integrity failures (a digest that does not match) raise
    :class:`Refused`."""
    located, slots = locate(packed)
    ref = parse_reference(packed.image.reference)
    verifier = Verifier(config)
    decision = config.policy.decide(ref)
    if decision.action is not Action.VERIFY:
        # reject / accept / unmatched: decided by the policy alone, no network involved.
        return verifier.verify(ref), slots
    by_source = _materials(packed, located)
    return verifier.judge(ref, decision, located, by_source.get(ref.name, []),
                          by_source=by_source), slots


# --- index.json ---------------------------------------------------------------------------


def signature_sources(packed: Sequence[Packed]) -> tuple[str, ...] | None:
    """The repositories a version 3 archive names, or None when version 2 says it all:
    every image's material from its own repository, no digest under two names."""
    owners: dict[Digest, set[str]] = {}
    for item in packed:
        for digest in (item.image.digest, item.image.platform_digest):
            owners.setdefault(digest, set()).add(item.image.name)
    if all(set(item.materials) <= {item.image.name} for item in packed) and all(
        len(names) == 1 for names in owners.values()
    ):
        return None
    sources = tuple(sorted({source for item in packed for source in item.materials}))
    if len(sources) > SOURCES_MAX:
        raise Refused("cannot save the images",
                      why=f"their signatures come from more than {SOURCES_MAX} repositories",
                      hint="save them in several archives")
    return sources


def signature_members(packed: Sequence[Packed]) -> dict[str, bytes]:
    """Every signature member of the archive, by name (see :func:`signature_sources`)."""
    sources = signature_sources(packed)
    numbers = {source: n for n, source in enumerate(sources or ())}
    members: dict[str, bytes] = {}
    for item in packed:
        for source, materials in item.materials.items():
            for digest, data in materials.items():
                members[signature_member(digest, numbers.get(source))] = data
    return members


def index_bytes(packed: Sequence[Packed]) -> bytes:
    media_types = {str(digest): media_type for item in packed
                   for digest, (media_type, _) in item.manifests.items()}
    sources = signature_sources(packed)
    index: dict[str, object] = {
        "format": ARCHIVE_FORMAT,
        "version": ARCHIVE_VERSION if sources is None else SOURCES_VERSION,
        "created": time.time(),
        "images": [item.image.to_json() for item in packed],
        "media_types": media_types,
    }
    if sources is not None:
        index["signature_sources"] = list(sources)
    return json.dumps(index, sort_keys=True, indent=1).encode()


@dataclass(frozen=True)
class Index:
    images: tuple[AirgapImage, ...]
    media_types: Mapping[str, str]
    sources: tuple[str, ...] | None = None  # version 3: where each material was read

    def wanted(self) -> dict[str, int]:
        """Every metadata member the images name, with the most bytes it may have."""
        names: dict[str, int] = {}
        for image in self.images:
            for digest in (image.digest, image.platform_digest):
                names[manifest_member(digest)] = MANIFEST_MAX
                for number in self.source_numbers():
                    names[signature_member(digest, number)] = SIGNATURE_MAX
            names[config_member(image.config_digest)] = CONFIG_MAX
        return names

    def source_numbers(self) -> tuple[int | None, ...]:
        """The signature member numbers: None (version 2: the image's own repository)."""
        return (None,) if self.sources is None else tuple(range(len(self.sources)))

    def materials(self, image: AirgapImage, found: Mapping[str, bytes]
                  ) -> dict[str, dict[Digest, bytes]]:
        """The signature members ``found`` holds for ``image``, by source repository."""
        out: dict[str, dict[Digest, bytes]] = {}
        for number in self.source_numbers():
            source = image.name if number is None or self.sources is None \
                else self.sources[number]
            for digest in (image.digest, image.platform_digest):
                data = found.get(signature_member(digest, number))
                if data is not None:
                    out.setdefault(source, {})[digest] = data
        return out


def read_index(data: bytes, archive: object) -> Index:
    """index.json, strictly: a known format and version, well-formed image entries."""
    try:
        doc: Any = strictjson.loads(data)
    except (ValueError, RecursionError) as e:
        raise bad_archive(archive, "index.json is not JSON") from e
    if not isinstance(doc, dict):
        raise bad_archive(archive, "index.json is not an object")
    _go_keys(doc, "index.json", archive)
    if doc.get("format") != ARCHIVE_FORMAT:
        raise bad_archive(archive, f"not a {ARCHIVE_FORMAT} archive")
    version = doc.get("version")
    if version not in (ARCHIVE_VERSION, SOURCES_VERSION):
        raise bad_archive(archive, f"archive version {version!r}, this safe-docker reads "
                                   f"versions {ARCHIVE_VERSION} and {SOURCES_VERSION}")
    images, media_types = doc.get("images"), doc.get("media_types")
    if not isinstance(images, list) or not images or len(images) > IMAGES_MAX:
        raise bad_archive(archive, f"index.json lists no images, or more than {IMAGES_MAX}")
    if not isinstance(media_types, dict) or not all(
        isinstance(v, str) for v in media_types.values()
    ):
        raise bad_archive(archive, "index.json has no media types")
    _go_keys(media_types, "index.json's media types", archive)
    parsed = []
    for entry in images:
        if isinstance(entry, dict):
            _go_keys(entry, "an image entry of index.json", archive)
        try:
            parsed.append(_image_entry(entry))
        except (SafeDockerError, KeyError, TypeError, ValueError) as e:
            raise bad_archive(archive, "index.json has a malformed image entry") from e
    references = [image.reference for image in parsed]
    if len(set(references)) != len(references):
        raise bad_archive(archive, "index.json lists an image twice")
    sources = _sources(doc, version == SOURCES_VERSION, archive)
    return Index(tuple(parsed), media_types, sources)


def _sources(doc: Mapping[str, object], named: bool, archive: object
             ) -> tuple[str, ...] | None:
    """Version 3's ``signature_sources``: distinct repository names (version 2 has none)."""
    if not named:
        if "signature_sources" in doc:
            raise bad_archive(archive, "a version 2 index.json names signature sources")
        return None
    sources = doc.get("signature_sources")
    if not isinstance(sources, list) or not sources or len(sources) > SOURCES_MAX:
        raise bad_archive(archive, f"index.json names no signature sources, or more than "
                                   f"{SOURCES_MAX}")
    names = []
    for source in sources:
        try:
            ref = parse_reference(source) if isinstance(source, str) else None
        except SafeDockerError:
            ref = None
        if ref is None or ref.name != source:
            raise bad_archive(archive, "index.json has a malformed signature source")
        names.append(source)
    if len(set(names)) != len(names):
        raise bad_archive(archive, "index.json names a signature source twice")
    return tuple(names)


def _go_keys(obj: Mapping[str, object], what: str, archive: object) -> None:
    try:
        check_go_keys(obj, what)
    except Refused as e:
        raise bad_archive(archive, f"{e.what} ({e.why})") from e


_ENTRY_KEYS = frozenset({"reference", "name", "tag", "digest", "platform_digest",
                         "config_digest"})


def _image_entry(entry: Any) -> AirgapImage:
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        raise TypeError("entry is not an object with the image keys")
    ref = parse_reference(str(entry["reference"]))
    tag = entry["tag"]
    if tag is not None and (not isinstance(tag, str) or tag != ref.tag):
        raise ValueError("tag disagrees with the reference")
    if entry["name"] != ref.name:
        raise ValueError("name disagrees with the reference")
    digest = Digest.parse(str(entry["digest"]))
    if ref.digest is not None and ref.digest != digest:
        raise ValueError("digest disagrees with the reference")
    return AirgapImage(
        reference=str(ref), name=ref.name, tag=ref.tag, digest=digest,
        platform_digest=Digest.parse(str(entry["platform_digest"])),
        config_digest=Digest.parse(str(entry["config_digest"])),
    )
