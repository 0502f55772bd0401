"""OCI descriptors, manifests and indexes, parsed strictly from bytes we hashed ourselves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from safedocker._internal import strictjson
from safedocker.errors import RegistryError, SafeDockerError, reason_of
from safedocker.oci.media import (
    GENERIC_CONTENT_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    SCHEMA1_MEDIA_TYPES,
    bare_content_type,
    malformed,
)
from safedocker.oci.platform import Platform
from safedocker.reference import Digest

# The member names docker's Go types (distribution's manifest, manifest list and OCI
# index, the OCI descriptor and platform) decode. Go matches names case-insensitively,
# so any other spelling of one of these (``Manifests``) would be read by docker and not
# by us: refused, like two members that are the same name to Go (strictjson's go_keys).
_MANIFEST_FIELDS = frozenset({"schemaVersion", "mediaType", "artifactType", "config", "layers",
                              "manifests", "annotations", "subject"})
_DESCRIPTOR_FIELDS = frozenset({"mediaType", "artifactType", "digest", "size", "urls",
                                "annotations", "platform", "data"})
_PLATFORM_FIELDS = frozenset({"architecture", "os", "os.version", "os.features", "variant",
                              "features"})


def _canonical(obj: Mapping[str, object], fields: frozenset[str], where: str, what: str
               ) -> None:
    """Refuse a member that Go would read as one of ``fields`` under another spelling."""
    folded = {strictjson.go_fold(name): name for name in fields}
    for key in obj:
        name = folded.get(strictjson.go_fold(key))
        if name is not None and name != key:
            raise malformed(where, f"{what} member {key!r} is spelled differently from "
                            f"{name!r}, which docker reads it as")


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    artifact_type: str | None = None
    platform: Platform | None = None

    @classmethod
    def from_json(cls, obj: object, where: str) -> Descriptor:
        if not isinstance(obj, Mapping):
            raise malformed(where, "descriptor is not an object")
        _canonical(obj, _DESCRIPTOR_FIELDS, where, "descriptor")
        plat = obj.get("platform")
        if isinstance(plat, Mapping):
            _canonical(plat, _PLATFORM_FIELDS, where, "platform")
        media_type, digest_text, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise malformed(where, "descriptor lacks mediaType")
        if not isinstance(digest_text, str):
            raise malformed(where, "descriptor lacks digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise malformed(where, "descriptor size is not a non-negative integer")
        try:
            digest = Digest.parse(digest_text)
        except SafeDockerError as e:
            raise malformed(where, "descriptor digest is invalid") from e
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise malformed(where, "annotations are not a string map")
        artifact_type = obj.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise malformed(where, "artifactType is not a string")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=MappingProxyType(dict(annotations)),
            artifact_type=artifact_type or None,
            platform=Platform.from_json(plat, where) if plat is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            obj["artifactType"] = self.artifact_type
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        if self.platform:
            plat = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                plat["variant"] = self.platform.variant
            obj["platform"] = plat
        return obj


@dataclass(frozen=True)
class Manifest:
    """A manifest or index whose bytes we hashed ourselves (``digest`` is our hash)."""

    digest: Digest
    media_type: str
    raw: bytes = field(repr=False)
    json: Mapping[str, Any] = field(repr=False, hash=False, compare=False)
    config: Descriptor | None = field(default=None, repr=False)
    layers: tuple[Descriptor, ...] = field(default=(), repr=False)
    children: tuple[Descriptor, ...] = field(default=(), repr=False)
    subject: Descriptor | None = field(default=None, repr=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def artifact_type(self) -> str | None:
        value = self.json.get("artifactType")
        return value if isinstance(value, str) and value else None

    @property
    def annotations(self) -> Mapping[str, str]:
        value = self.json.get("annotations")
        return value if isinstance(value, Mapping) else {}

    @classmethod
    def parse(
        cls, raw: bytes, content_type: str = "", *, digest: Digest | None = None
    ) -> Manifest:
        """Parse manifest bytes strictly; ``digest`` (if given) must be the bytes' hash."""
        return parse_manifest(raw, content_type, expected=digest)


@dataclass(frozen=True)
class Referrers:
    """What refers to ``subject``, and which path answered: ``"api"`` or ``"tag"``."""

    subject: Digest
    descriptors: tuple[Descriptor, ...]
    source: str  # "api": OCI 1.1 referrers API; "tag": the sha256-<hex> tag schema
    index: Manifest | None = field(default=None, repr=False)  # the tag schema's index


@dataclass(frozen=True)
class Resolved:
    """A reference resolved: ``digest`` is what the reference names (pin this); ``manifest``
    is the image manifest for the platform; ``index`` the index it was picked from, if any."""

    digest: Digest
    manifest: Manifest
    index: Manifest | None = None


def parse_manifest(
    raw: bytes, content_type: str = "", *, expected: Digest | None = None, where: str = "image"
) -> Manifest:
    """Parse and check manifest bytes. ``expected``: the digest the bytes must hash to."""
    if expected is not None and not expected.matches(raw):
        raise RegistryError(
            "registry served manifest bytes that do not match the digest",
            why=f"expected {expected}, got {Digest.of(raw, expected.algorithm)}",
        )
    digest = expected or Digest.of(raw)
    declared = bare_content_type(content_type)
    if declared in SCHEMA1_MEDIA_TYPES:
        raise _schema1(where)
    try:
        doc = strictjson.loads(raw, go_keys=True)  # docker reads these bytes in Go
    except UnicodeDecodeError as e:
        raise malformed(where, "invalid JSON (not UTF-8 text)") from e
    except json.JSONDecodeError as e:
        raise malformed(where, f"invalid JSON ({e.msg})") from e
    except RecursionError as e:
        raise malformed(where, "invalid JSON (nested too deeply)") from e
    except ValueError as e:  # duplicate members, the same name to Go, NaN
        raise malformed(where, f"invalid JSON ({reason_of(e, 'not parseable')})") from e
    if not isinstance(doc, dict):
        raise malformed(where, "manifest is not a JSON object")
    _canonical(doc, _MANIFEST_FIELDS, where, "manifest")
    schema = doc.get("schemaVersion")
    if schema == 1:
        raise _schema1(where)
    if schema != 2 or isinstance(schema, bool):
        raise malformed(where, f"unsupported schemaVersion {schema!r}")
    in_json = doc.get("mediaType")
    if in_json is not None and not isinstance(in_json, str):
        raise malformed(where, "mediaType is not a string")
    if in_json and declared not in GENERIC_CONTENT_TYPES and in_json != declared:
        raise malformed(where, f"mediaType {in_json!r} disagrees with Content-Type {declared!r}")
    media_type = in_json or declared
    if media_type in SCHEMA1_MEDIA_TYPES:
        raise _schema1(where)
    if media_type in GENERIC_CONTENT_TYPES:
        raise malformed(where, "neither Content-Type nor mediaType names a manifest type")
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise malformed(where, f"unsupported media type {media_type!r}")
    subject_json = doc.get("subject")
    subject = Descriptor.from_json(subject_json, where) if subject_json is not None else None
    if media_type in INDEX_MEDIA_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise malformed(where, "index has no manifests list")
        children = tuple(Descriptor.from_json(e, where) for e in entries)
        return Manifest(digest, media_type, raw, MappingProxyType(doc), children=children,
                        subject=subject)
    config_json, layers_json = doc.get("config"), doc.get("layers")
    if not isinstance(layers_json, list):
        raise malformed(where, "manifest has no layers list")
    return Manifest(
        digest,
        media_type,
        raw,
        MappingProxyType(doc),
        config=Descriptor.from_json(config_json, where),
        layers=tuple(Descriptor.from_json(e, where) for e in layers_json),
        subject=subject,
    )


def _schema1(where: str) -> RegistryError:
    return RegistryError(
        f"registry served a Docker schema 1 manifest for {where}",
        why="schema 1 manifests are deprecated and cannot be verified",
        hint="re-push the image with a current docker (schema 2 / OCI)",
    )

