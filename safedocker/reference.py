"""Image references, parsed and normalized as distribution/reference does for docker.

``ubuntu`` becomes ``docker.io/library/ubuntu``; the first path component is a registry
host only when it contains ``.`` or ``:``, is ``localhost``, or has an uppercase letter
(and then it is a host whose name docker keeps as given). ``index.docker.io`` is
``docker.io``. A reference may carry a tag, a digest, or both (``name:tag@sha256:…``).

Go's regexps differ from Python's where it matters: ``$`` ends the text (Python's also
matches before a final newline, so ``ubuntu`` plus a newline would pass) and its word
class is ASCII. Every pattern here is therefore matched whole (``fullmatch``) and compiled
with ``re.ASCII``.
The 255-character limit applies to the path without the domain, as in
distribution/reference v0.6 (which docker/cli vendors).
"""

from __future__ import annotations

import re

from safedocker._internal.lean import LazyPattern
from safedocker._internal.names import DEFAULT_REGISTRY, DEFAULT_TAG, OFFICIAL_PREFIX, split_domain
from safedocker.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

NAME_TOTAL_MAX = 255  # characters of the path (repository without the domain)

# The grammar of distribution/reference (regexp.go), assembled from the same pieces.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN}/)?{_REMOTE_NAME}"

# Always used with fullmatch: the whole text, no trailing newline, ASCII classes only.
_REFERENCE_RE = LazyPattern(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_TAG_RE = LazyPattern(_TAG, re.ASCII)
_DOMAIN_RE = LazyPattern(_DOMAIN, re.ASCII)
_LOWER_HEX = frozenset("0123456789abcdef")


def _lower_hex(text: str, length: int) -> bool:
    """``[a-f0-9]{length}`` in full (no regexp: every run asks it, compiling one costs more)."""
    return len(text) == length and _LOWER_HEX.issuperset(text)


class _Frozen:
    """What ``@dataclass(frozen=True)`` gives a value (equality and hash over the fields,
    the repr, no assignment), written out: the warm path imports this module, and the
    dataclasses module alone (inspect, ast, dis, tokenize…) costs it half an interpreter
    start."""

    __match_args__: tuple[str, ...] = ()
    _name = ""  # the class's, for the repr

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Frozen)  # noqa: S101 - the class check above
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__match_args__)
        return f"{self._name}({inner})"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}")


class Digest(_Frozen):
    """A content digest such as ``sha256:<64 hex>``; only sha256 and sha512 are accepted."""

    __match_args__ = ("algorithm", "hex")
    _name = "Digest"
    algorithm: str
    hex: str

    def __init__(self, algorithm: str, hex: str) -> None:  # noqa: A002 - the field's name
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hex", hex)

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, hexpart = text.partition(":")
        if not sep:
            raise UsageError(f"invalid digest {text!r}", why="expected algorithm:hex")
        if algorithm == "sha256" and _lower_hex(hexpart, 64):
            return cls(algorithm, hexpart)
        if algorithm == "sha512" and _lower_hex(hexpart, 128):
            return cls(algorithm, hexpart)
        raise UsageError(
            f"invalid digest {text!r}",
            why="only sha256 (64 lowercase hex) and sha512 (128) are supported",
        )

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data``: what we compute ourselves, never what a server claims."""
        if algorithm not in ("sha256", "sha512"):
            raise UsageError(f"unsupported digest algorithm {algorithm!r}")
        import hashlib  # not at import: the warm path parses references, never hashes

        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def matches(self, data: bytes) -> bool:
        return Digest.of(data, self.algorithm) == self

    @property
    def tag_prefix(self) -> str:
        """The tag form cosign uses for attachments: ``sha256-<hex>``."""
        return f"{self.algorithm}-{self.hex}"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class ImageRef(_Frozen):
    """A normalized image reference."""

    __match_args__ = ("registry", "repository", "tag", "digest")
    _name = "ImageRef"
    registry: str  # "docker.io", "127.0.0.1:5000"
    repository: str  # "library/ubuntu"
    tag: str | None
    digest: Digest | None

    def __init__(self, registry: str, repository: str, tag: str | None = None,
                 digest: Digest | None = None) -> None:
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "repository", repository)
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "digest", digest)

    @property
    def name(self) -> str:
        """Fully qualified repository: ``docker.io/library/ubuntu``."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The short form docker shows: ``ubuntu``, ``pytorch/pytorch``, ``host:5000/x``."""
        if self.registry == DEFAULT_REGISTRY:
            if self.repository.startswith(OFFICIAL_PREFIX):
                rest = self.repository[len(OFFICIAL_PREFIX) :]
                if "/" not in rest:
                    return rest
            return self.repository
        return self.name

    @property
    def tag_or_default(self) -> str:
        """The tag docker would use: the given one, else ``latest`` when no digest is given."""
        return self.tag or DEFAULT_TAG

    def pinned(self, digest: Digest) -> str:
        """``repo@sha256:…``: what docker is handed so it runs exactly what was verified."""
        return f"{self.name}@{digest}"

    def with_tag(self, tag: str | None) -> ImageRef:
        """This reference with another tag (None: none); an invalid tag is a UsageError."""
        if tag is not None and not is_valid_tag(tag):
            raise UsageError(f"invalid tag {tag!r}",
                             why="a tag is 1-128 of A-Z a-z 0-9 _ . - and starts with no . or -")
        return ImageRef(self.registry, self.repository, tag, self.digest)

    @property
    def tagged(self) -> str:
        """``name:tag`` with the tag docker would use (``latest`` by default)."""
        return f"{self.name}:{self.tag_or_default}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse and normalize like docker's ``reference.ParseNormalizedNamed``."""
        return parse_reference(text)


def parse_reference(text: str) -> ImageRef:
    """Parse an image reference as the docker CLI does, or raise :class:`UsageError`."""
    if not text:
        raise UsageError("invalid image reference ''", why="the reference is empty")
    if _lower_hex(text, 64):
        raise UsageError(
            f"invalid repository name {text!r}",
            why="cannot specify 64-byte hexadecimal strings",
            hint="name the image as repository[:tag] or repository@sha256:…",
        )
    domain, remainder = split_domain(text)
    # Lowercase is required of the remote name only (a host may carry uppercase); like
    # docker, cut at the first ':' that follows the domain.
    name_part = remainder.split(":", 1)[0]
    if name_part != name_part.lower():
        raise UsageError(
            f"invalid reference format: repository name ({name_part}) must be lowercase",
            hint="image repository names are lowercase",
        )
    match = _REFERENCE_RE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        raise UsageError(
            f"invalid reference format: {text!r}",
            hint="expected [registry/]repository[:tag][@sha256:…]",
        )
    full_name, tag, digest_text = match.group(1), match.group(2), match.group(3)
    registry, _, repository = full_name.partition("/")
    if len(repository) > NAME_TOTAL_MAX:
        raise UsageError(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} "
            "characters"
        )
    digest = Digest.parse(digest_text) if digest_text else None
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)


def parse_any_reference(text: str) -> ImageRef | Digest:
    """What docker run/create accept as IMAGE (``reference.ParseAnyReference``).

    64 hex characters or ``sha256:<hex>`` name a local image by ID (a :class:`Digest`; the
    bare form means sha256); anything else is a reference, parsed by
    :func:`parse_reference`.
    """
    if _lower_hex(text, 64):
        return Digest("sha256", text)
    try:
        return Digest.parse(text)
    except UsageError:
        return parse_reference(text)


def is_valid_tag(tag: str) -> bool:
    return _TAG_RE.fullmatch(tag) is not None


def is_valid_registry_host(host: str) -> bool:
    return _DOMAIN_RE.fullmatch(host) is not None


_NAME_PREFIX_RE = LazyPattern(rf"{_DOMAIN}(?:/{_REMOTE_NAME})?", re.ASCII)


def is_name_prefix(text: str) -> bool:
    """A registry host, or a fully qualified repository path with no tag or digest: what
    a signed-identity remap may name on either side (containers/image's rule for
    ``remapIdentity`` prefixes)."""
    first = text.partition("/")[0]
    qualified = "." in first or ":" in first or first == "localhost"
    return qualified and _NAME_PREFIX_RE.fullmatch(text) is not None
