"""The Sigstore trust root: Fulcio CAs, Rekor logs, CT logs and timestamp authorities.

``tlogs`` lists Rekor v1 logs (ECDSA; logId = sha256 of the DER key) and Rekor v2 shards
(often Ed25519; logId = the C2SP checkpoint key ID), each with the window in which its key
is trusted; ``timestampAuthorities`` lists RFC 3161 TSAs (signing certificate first, root
last) with theirs. Bundle verification takes all of them from here, for key rules too.

A trust root is a sigstore ``trusted_root.json`` document. The default is the
public-good root that sigstore-python ships inside its package (read from the
installed package, never fetched); users may import their own (private Sigstore
deployments) under a name, and ``update_trust_root`` refreshes the default through
sigstore-python's TUF client, which verifies the TUF metadata chain before any byte
is accepted. Verification only ever reads these files: it never fetches anything.
"""

from __future__ import annotations

import binascii
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker._internal.encoding import b64decode, b64encode
from safedocker._internal.strictjson import loads_strict
from safedocker.errors import ConfigError, VerificationError, reason_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cryptography import x509

    from safedocker.policy.paths import Paths
    from safedocker.trust.keys import PublicKey

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
EMBEDDED_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"
MAX_TRUST_ROOT_SIZE = 1024 * 1024
MAX_CHAIN_LENGTH = 8
# THE rule for trusted-root names (config's trust_root, files, cache exports).
ROOT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_NAME = "default"
EMBEDDED_SOURCE = "embedded (sigstore-python public-good trusted_root.json)"

_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class Validity:
    """A ``validFor`` window; ``end`` None means still valid."""

    start: datetime
    end: datetime | None = None

    def contains(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when <= self.end)

    def describe(self) -> str:
        end = self.end.isoformat() if self.end else "open"
        return f"{self.start.isoformat()} .. {end}"


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio-like CA: its chain, intermediate first and the self-signed root last."""

    uri: str
    subject: str
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    validity: Validity

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.chain[:-1]


@dataclass(frozen=True)
class LogInstance:
    """A transparency log (Rekor) or certificate-transparency log and its key."""

    base_url: str
    log_id: str  # hex of the logId.keyId bytes
    key: PublicKey
    validity: Validity


@dataclass(frozen=True)
class TrustRoot:
    """A parsed and validated ``trusted_root.json``; ``raw`` is the document as read."""

    name: str
    source: str  # "embedded ..." or the file it was read from
    raw: bytes = field(repr=False)
    certificate_authorities: tuple[CertificateAuthority, ...]
    tlogs: tuple[LogInstance, ...]
    ctlogs: tuple[LogInstance, ...]
    timestamp_authorities: tuple[CertificateAuthority, ...] = ()

    @property
    def rekor_keys(self) -> tuple[PublicKey, ...]:
        """Rekor keys for :func:`safedocker.signatures.rekor.verify_set` (chosen by logID)."""
        return tuple(log.key for log in self.tlogs)

    @property
    def ct_keys(self) -> tuple[PublicKey, ...]:
        return tuple(log.key for log in self.ctlogs)

    @property
    def has_ctlogs(self) -> bool:
        """With CT logs, keyless certificates must carry a verified SCT (``require_sct``)."""
        return bool(self.ctlogs)

    def tlog(self, log_id: str) -> LogInstance | None:
        return next((t for t in self.tlogs if t.log_id == log_id.lower()), None)

    def ctlog(self, log_id: str) -> LogInstance | None:
        return next((t for t in self.ctlogs if t.log_id == log_id.lower()), None)

    @property
    def newest_start(self) -> datetime | None:
        """The newest ``validFor.start`` of any entry: how recent this root's content is."""
        starts = [ca.validity.start for ca in self.certificate_authorities]
        starts += [log.validity.start for log in (*self.tlogs, *self.ctlogs)]
        starts += [ca.validity.start for ca in self.timestamp_authorities]
        return max(starts, default=None)


# --- parsing ----------------------------------------------------------------------------


def _bad(source: str, why: str) -> ConfigError:
    return ConfigError(
        f"trust root {source} is invalid",
        why=why,
        hint="import a sigstore trusted_root.json (safe-docker trust-root import FILE)",
    )


def parse_time(text: object) -> datetime:
    """RFC 3339 as protobuf JSON writes it (``Z``, up to nanoseconds), to aware UTC."""
    if not isinstance(text, str):
        raise ValueError("timestamp is not a string")
    m = _TIME_RE.match(text)
    if m is None:
        raise ValueError(f"timestamp {text!r} is not RFC 3339")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micro = int((m.group(7) or "0").ljust(6, "0")[:6])
    offset = m.group(8)
    tz = timezone.utc
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    when = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    return when.astimezone(timezone.utc)


def _validity(obj: object, where: str) -> Validity:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: validFor is missing")
    start = parse_time(obj.get("start"))
    end = parse_time(obj["end"]) if obj.get("end") is not None else None
    if end is not None and end < start:
        raise ValueError(f"{where}: validFor ends before it starts")
    return Validity(start, end)


def _b64(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} is not a base64 string")
    try:
        return b64decode(value)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{where} is not valid base64") from e


def _log(obj: object, where: str) -> LogInstance:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} is not an object")
    base_url = obj.get("baseUrl")
    if not isinstance(base_url, str):
        raise ValueError(f"{where}: baseUrl is missing")
    key_obj = obj.get("publicKey")
    log_id_obj = obj.get("logId")
    if not isinstance(key_obj, dict) or not isinstance(log_id_obj, dict):
        raise ValueError(f"{where}: publicKey or logId is missing")
    from cryptography.hazmat.primitives import serialization

    from safedocker.trust.keys import load_public_key

    der = _b64(key_obj.get("rawBytes"), f"{where} publicKey.rawBytes")
    try:
        pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: publicKey is not a DER public key") from e
    name = base_url.removeprefix("https://").removeprefix("http://").rstrip("/")
    try:
        key = load_public_key(pem, name)
    except ConfigError as e:
        raise ValueError(f"{where}: {e.what} ({e.why})") from e
    log_id = _b64(log_id_obj.get("keyId"), f"{where} logId.keyId")
    return LogInstance(base_url, log_id.hex(), key, _validity(key_obj.get("validFor"), where))


def _der_cert(item: object, where: str) -> x509.Certificate:
    from cryptography import x509

    raw = _b64(item.get("rawBytes") if isinstance(item, dict) else None, where)
    try:
        return x509.load_der_x509_certificate(raw)
    except ValueError as e:
        raise ValueError(f"{where} is not DER X.509") from e


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _ca(obj: object, where: str) -> CertificateAuthority:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} is not an object")
    chain_obj = obj.get("certChain")
    certs = chain_obj.get("certificates") if isinstance(chain_obj, dict) else None
    if not isinstance(certs, list) or not certs or len(certs) > MAX_CHAIN_LENGTH:
        raise ValueError(f"{where}: certChain.certificates is missing or too long")
    chain = [_der_cert(item, f"{where} certificate {i}") for i, item in enumerate(certs)]
    if not all(_issued_by(c, p) for c, p in zip(chain, chain[1:], strict=False)):
        raise ValueError(f"{where}: certChain is not a chain (each issued by the next)")
    subject_obj = obj.get("subject")
    subject = ""
    if isinstance(subject_obj, dict):
        subject = " ".join(str(v) for v in subject_obj.values())
    uri = obj.get("uri")
    return CertificateAuthority(
        uri=uri if isinstance(uri, str) else "",
        subject=subject or chain[-1].subject.rfc4514_string(),
        chain=tuple(chain),
        validity=_validity(obj.get("validFor"), where),
    )


def _list(document: dict[str, Any], key: str) -> list[object]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} is not a list")
    return value


def parse_trust_root(raw: bytes, *, name: str = DEFAULT_NAME, source: str = "") -> TrustRoot:
    """Parse and validate a ``trusted_root.json``, or raise :class:`ConfigError`."""
    source = source or name
    if len(raw) > MAX_TRUST_ROOT_SIZE:
        raise _bad(source, f"larger than {MAX_TRUST_ROOT_SIZE} bytes")
    try:
        document = loads_strict(raw, "trusted root")
    except VerificationError as e:
        raise _bad(source, e.why) from e
    if not isinstance(document, dict):
        raise _bad(source, "not a JSON object")
    if document.get("mediaType") != TRUSTED_ROOT_MEDIA_TYPE:
        raise _bad(source, f"mediaType is {document.get('mediaType')!r}")
    try:
        cas = tuple(
            _ca(o, f"certificateAuthorities[{i}]")
            for i, o in enumerate(_list(document, "certificateAuthorities"))
        )
        tlogs = tuple(_log(o, f"tlogs[{i}]") for i, o in enumerate(_list(document, "tlogs")))
        ctlogs = tuple(_log(o, f"ctlogs[{i}]") for i, o in enumerate(_list(document, "ctlogs")))
        tsas = tuple(
            _ca(o, f"timestampAuthorities[{i}]")
            for i, o in enumerate(_list(document, "timestampAuthorities"))
        )
    except ValueError as e:
        raise _bad(source, str(e)) from e
    if not cas and not tlogs:
        raise _bad(source, "it names no certificate authority and no transparency log")
    return TrustRoot(name, source, bytes(raw), cas, tlogs, ctlogs, tsas)


def load_trust_root(path: Path | str, *, name: str | None = None) -> TrustRoot:
    """Read and validate a ``trusted_root.json`` file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read trust root {path}", why=reason_of(e)) from e
    return parse_trust_root(raw, name=name or path.stem, source=str(path))


def embedded_trust_root_bytes() -> bytes:
    """The public-good ``trusted_root.json`` inside the installed sigstore-python package."""
    from safedocker.trust.tuf import embedded_trusted_root

    try:
        return embedded_trusted_root(EMBEDDED_TUF_URL)
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        raise ConfigError(
            "the embedded Sigstore trust root is missing",
            why=reason_of(e, "not in the installed sigstore package"),
            hint="reinstall safe-docker, or import one with safe-docker trust-root import",
        ) from e


def embedded_trust_root() -> TrustRoot:
    return parse_trust_root(embedded_trust_root_bytes(), name=DEFAULT_NAME, source=EMBEDDED_SOURCE)


def is_root_name(name: object) -> bool:
    """Whether ``name`` may name a trusted root: letters, digits, '.', '_', '-' (at most 64)."""
    return isinstance(name, str) and ROOT_NAME_RE.match(name) is not None


def _check_name(name: str) -> None:
    if not is_root_name(name):
        raise ConfigError(
            f"invalid trust root name {name!r}",
            hint="use letters, digits, '.', '_' or '-' (at most 64)",
        )


def trust_root_path(where: Paths, name: str = DEFAULT_NAME, *, system: bool = False) -> Path:
    _check_name(name)
    directory = where.system_trust_roots_dir if system else where.trust_roots_dir
    return directory / f"{name}.json"


def trust_root(where: Paths, name: str = DEFAULT_NAME) -> TrustRoot:
    """The trust root named ``name``: the system's file, else the user's, else (for default)
    the embedded one. A user cannot replace a root the system (admins, GPU nodes) set."""
    for system in (True, False):
        path = trust_root_path(where, name, system=system)
        if path.is_file():
            return load_trust_root(path, name=name)
    path = trust_root_path(where, name)
    if name == DEFAULT_NAME:
        return embedded_trust_root()
    raise ConfigError(
        f"no trust root named {name!r}",
        why=f"{path} does not exist",
        hint=f"safe-docker trust-root import FILE --name {name}",
    )


def system_trust_root(directory: Path, name: str = DEFAULT_NAME) -> TrustRoot:
    """For the system rules of a locked policy: the system's root named ``name`` (in
    ``directory``), else for default the built-in one; never a user's."""
    _check_name(name)
    path = directory / f"{name}.json"
    try:
        stat = path.stat()
    except FileNotFoundError:
        if name == DEFAULT_NAME:
            return _embedded_cached()
        raise ConfigError(
            f"no system trusted root named {name!r}",
            why=f"{path} does not exist; the system policy is locked, so a user root of "
                "that name is never used for a system rule",
            hint=f"an admin imports it: `safe-docker trust-root import FILE --name {name} "
                 "--system`",
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read trust root {path}", why=reason_of(e)) from e
    return _load_cached(str(path), name, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, name: str, mtime_ns: int, size: int) -> TrustRoot:
    """One parse per file version and process, however many rules ask (the warm path)."""
    del mtime_ns, size  # part of the cache key only
    return load_trust_root(path, name=name)


@functools.lru_cache(maxsize=1)
def _embedded_cached() -> TrustRoot:
    return embedded_trust_root()


# --- which deployment a root belongs to ----------------------------------------------------


def _anchor_windows(root: TrustRoot) -> dict[str, list[Validity]]:
    """Each anchor's ID (see :func:`anchor_ids`) and the validity windows it is given."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    def fingerprint(cert: x509.Certificate) -> str:
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    windows: dict[str, list[Validity]] = {}
    for kind, authorities in (("ca", root.certificate_authorities),
                              ("tsa", root.timestamp_authorities)):
        for ca in authorities:
            windows.setdefault(f"{kind}:{fingerprint(ca.root)}", []).append(ca.validity)
    for kind, logs in (("tlog", root.tlogs), ("ctlog", root.ctlogs)):
        for log in logs:
            windows.setdefault(f"{kind}:{log.log_id}", []).append(log.validity)
    return windows


def anchor_ids(root: TrustRoot) -> frozenset[str]:
    """What identifies a Sigstore deployment: the root certificates of its CAs and
    timestamp authorities, and the keys (log IDs) of its transparency and CT logs."""
    return frozenset(_anchor_windows(root))


def _within(window: Validity, allowed: Validity) -> bool:
    return window.start >= allowed.start and (
        allowed.end is None or (window.end is not None and window.end <= allowed.end))


def widened(installed: TrustRoot, candidate: TrustRoot) -> list[str]:
    """How ``candidate`` trusts more than ``installed``: anchors it adds, and anchors whose
    validity it widens (an earlier start, a later or no end: a retired CA or log
    re-opened). Empty when it trusts nothing more (the same root, or one that only ends
    windows)."""
    before, after = _anchor_windows(installed), _anchor_windows(candidate)
    added = sorted(set(after) - set(before))
    out = [f"it adds {len(added)} trust anchor{'s' if len(added) != 1 else ''} "
           f"({', '.join(a.partition(':')[0] for a in added)})"] if added else []
    wider = sorted(anchor for anchor, windows in after.items() if anchor in before
                   and not all(any(_within(w, old) for old in before[anchor]) for w in windows))
    if wider:
        out.append(f"it widens the validity of {len(wider)} trust "
                   f"anchor{'s' if len(wider) != 1 else ''} "
                   f"({', '.join(a.partition(':')[0] for a in wider)})")
    return out


def same_deployment(installed: TrustRoot, candidate: TrustRoot) -> bool:
    """Whether ``candidate`` is ``installed`` again or a newer version of the same
    deployment: it keeps every anchor of the installed root. (A deployment that rotates a
    key or CA adds the new one and ends the old one's validity, as the public-good root
    does; a root that drops one is another deployment, or an older version.)"""
    return anchor_ids(installed) <= anchor_ids(candidate)


def _installed(where: Paths, name: str, *, system: bool) -> TrustRoot | None:
    """The root an import under ``name`` would displace: the file, or for default the
    built-in public-good root."""
    path = trust_root_path(where, name, system=system)
    if path.is_file():
        return load_trust_root(path, name=name)
    return embedded_trust_root() if name == DEFAULT_NAME else None


def check_with_sigstore(raw: bytes, source: str) -> None:
    """Also parse with sigstore-python, a second and independent reading (its TUF
    refresh and other sigstore clients read the same file): fail now, not later."""
    try:
        from sigstore.models import TrustedRoot as SigstoreTrustedRoot
    except ImportError:  # pragma: no cover - sigstore is a dependency
        return
    try:
        from sigstore_models.trustroot.v1 import TrustedRoot as InnerTrustedRoot

        SigstoreTrustedRoot(InnerTrustedRoot.from_json(raw))
    except Exception as e:  # sigstore raises pydantic and its own errors
        raise _bad(source, f"sigstore-python refuses it: {reason_of(e, 'not a trusted root')}"
                   ) from e


@dataclass(frozen=True)
class ImportedRoot:
    """What ``trust-root import`` did: ``outcome`` is imported (a new name), updated (the
    same deployment, same or newer), or replaced (another deployment, with ``replace``)."""

    root: TrustRoot
    outcome: str
    previous: str | None = None  # the source of the root it updated or replaced


def import_trust_root(where: Paths, file: Path | str, name: str = DEFAULT_NAME, *,
                      system: bool = False, replace: bool = False) -> ImportedRoot:
    """Validate ``file`` fully, then save it atomically as ``trust-roots/<name>.json`` (in
    the system config dir with ``system``).

    It never displaces another deployment's root silently: when a root of that name is
    installed (for default: also the built-in public-good one) and ``file`` is not the
    same deployment (:func:`same_deployment`), it is refused unless ``replace``.
    """
    from safedocker._internal.files import atomic_write

    target = trust_root_path(where, name, system=system)
    parsed = load_trust_root(file, name=name)
    check_with_sigstore(parsed.raw, parsed.source)
    installed = _installed(where, name, system=system)
    outcome = "imported"
    if installed is not None:
        # An update keeps every anchor and trusts nothing more: a file that adds a CA or a
        # log, or re-opens a retired one, would extend every rule using this root (the
        # public-good root's own rotations come signed through `trust-root update`).
        more = widened(installed, parsed)
        outcome = "updated" if same_deployment(installed, parsed) and not more else "replaced"
        if outcome == "replaced" and not replace:
            why = (f"{file} is another Sigstore deployment than {installed.source} (it "
                   "lacks some of its CAs or logs); rules relying on it would stop verifying"
                   if not same_deployment(installed, parsed) else
                   f"{file} trusts more than {installed.source}: {'; '.join(more)}; every "
                   "rule relying on it would accept signatures from them")
            raise ConfigError(
                f"refusing to replace the trusted root {name!r}",
                why=why,
                hint=f"import it under its own name (--name NAME) and choose it per scope "
                     f"with `safe-docker policy add SCOPE … --trust-root NAME`, or pass "
                     f"--replace to replace {name!r}"
                     + (" (the public-good root: `safe-docker trust-root update`)"
                        if name == DEFAULT_NAME else ""),
            )
    atomic_write(target, parsed.raw)
    root = TrustRoot(name, str(target), parsed.raw, parsed.certificate_authorities,
                     parsed.tlogs, parsed.ctlogs, parsed.timestamp_authorities)
    return ImportedRoot(root, outcome, installed.source if installed else None)


def remove_trust_root(where: Paths, name: str, *, system: bool = False) -> Path:
    """Delete an imported root; returns the file removed. (Rules naming it then refuse,
    except for default, which falls back to the built-in public-good root.)"""
    path = trust_root_path(where, name, system=system)
    try:
        path.unlink()
    except FileNotFoundError:
        from safedocker.errors import UsageError

        raise UsageError(f"no {'system' if system else 'user'} trusted root named {name!r}",
                         why=f"{path} does not exist",
                         hint="see `safe-docker trust-root list`") from None
    except OSError as e:
        raise ConfigError(f"cannot remove {path}", why=e.strerror or str(e)) from e
    return path


def update_trust_root(where: Paths, tuf_url: str = EMBEDDED_TUF_URL) -> TrustRoot:
    """Refresh ``trust-roots/default.json`` through TUF (online; :mod:`.tuf`)."""
    from safedocker._internal.files import atomic_write
    from safedocker.trust.tuf import fetch_trusted_root

    raw = fetch_trusted_root(tuf_url)
    target = trust_root_path(where, DEFAULT_NAME)
    parsed = parse_trust_root(raw, name=DEFAULT_NAME, source=f"TUF {tuf_url}")
    check_with_sigstore(raw, parsed.source)
    installed = _installed(where, DEFAULT_NAME, system=False)
    if installed is not None and not same_deployment(installed, parsed):
        raise ConfigError(
            "refusing to replace the trusted root 'default'",
            why=f"it is another deployment ({installed.source}) than {tuf_url}",
            hint="import the public-good root under another name, or remove yours first "
                 "with `safe-docker trust-root remove default`",
        )
    atomic_write(target, raw)
    return TrustRoot(DEFAULT_NAME, str(target), raw, parsed.certificate_authorities,
                     parsed.tlogs, parsed.ctlogs, parsed.timestamp_authorities)


def _cert_summary(cert: x509.Certificate) -> dict[str, str]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _log_summary(log: LogInstance) -> dict[str, str | None]:
    return {
        "url": log.base_url,
        "log_id": log.log_id,
        "key": log.key.algorithm,
        "valid_from": log.validity.start.isoformat(),
        "valid_until": log.validity.end.isoformat() if log.validity.end else None,
    }


@dataclass(frozen=True)
class RootEntry:
    """One installed trusted root (``trust-root list``)."""

    name: str
    origin: str  # "system" | "user" | "built-in"
    path: Path | None  # None for the built-in root
    in_use: bool  # False: another root of this name wins (system over user over built-in)


def _names_in(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.stem for p in directory.glob("*.json") if ROOT_NAME_RE.match(p.stem)}


def list_roots(where: Paths) -> list[RootEntry]:
    """Every trusted root installed, by name; for each name the first one is used."""
    system, user = _names_in(where.system_trust_roots_dir), _names_in(where.trust_roots_dir)
    out = []
    for name in sorted(system | user | {DEFAULT_NAME}):
        if name in system:
            out.append(RootEntry(name, "system", trust_root_path(where, name, system=True),
                                 True))
        if name in user:
            out.append(RootEntry(name, "user", trust_root_path(where, name), name not in system))
        if name == DEFAULT_NAME:
            out.append(RootEntry(name, "built-in", None, name not in system | user))
    return out


def show(where: Paths, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """What each trust root trusts and how old it is, as JSON-ready data.

    Without ``names``: every name installed (the default, imported or built-in, included);
    for each name the root that is used (the system's, else the user's, else built-in).
    """
    if names is None:
        names = list(dict.fromkeys(entry.name for entry in list_roots(where)))
    out = []
    for name in names:
        root = trust_root(where, name)
        mtime = None
        origin = "built-in"
        for system in (True, False):
            path = trust_root_path(where, name, system=system)
            if root.source == str(path):
                origin = "system" if system else "user"
                mtime = datetime.fromtimestamp(path.stat().st_mtime,
                                               tz=timezone.utc).isoformat()
        newest = root.newest_start
        out.append({
            "name": name,
            "origin": origin,
            "source": root.source,
            "file_mtime": mtime,
            "newest_valid_from": newest.isoformat() if newest else None,
            "certificate_authorities": [
                {
                    "uri": ca.uri,
                    "subject": ca.subject,
                    "valid_from": ca.validity.start.isoformat(),
                    "valid_until": ca.validity.end.isoformat() if ca.validity.end else None,
                    "chain": [_cert_summary(c) for c in ca.chain],
                }
                for ca in root.certificate_authorities
            ],
            "tlogs": [_log_summary(t) for t in root.tlogs],
            "ctlogs": [_log_summary(t) for t in root.ctlogs],
            "timestamp_authorities": [
                {
                    "uri": ca.uri,
                    "subject": ca.subject,
                    "valid_from": ca.validity.start.isoformat(),
                    "valid_until": ca.validity.end.isoformat() if ca.validity.end else None,
                    "chain": [_cert_summary(c) for c in ca.chain],
                }
                for ca in root.timestamp_authorities
            ],
        })
    return out


# --- building one (tests, private PKI from PEM files) -----------------------------------


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64der_key(key: PublicKey) -> str:
    return b64encode(key.der)


def _key_details(key: PublicKey) -> str:
    return {
        "ecdsa-p256": "PKIX_ECDSA_P256_SHA_256",
        "ecdsa-p384": "PKIX_ECDSA_P384_SHA_384",
        "ecdsa-p521": "PKIX_ECDSA_P521_SHA_512",
        "ed25519": "PKIX_ED25519",
    }.get(key.algorithm, "PKIX_RSA_PKCS1V15_2048_SHA256")


def build_trusted_root_json(
    *,
    ca_chains: Iterable[Iterable[x509.Certificate]] = (),
    rekor_keys: Iterable[PublicKey] = (),
    ct_keys: Iterable[PublicKey] = (),
    valid_from: datetime | None = None,
) -> bytes:
    """A ``trusted_root.json`` naming these CAs (intermediate first, root last) and keys.

    logIDs are sha256 of each key's DER SubjectPublicKeyInfo, as Rekor v1 and CT use.
    """
    import hashlib
    import json

    from cryptography.hazmat.primitives import serialization

    start = _rfc3339(valid_from or datetime(2020, 1, 1, tzinfo=timezone.utc))

    def log(key: PublicKey, url: str) -> dict[str, Any]:
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": _b64der_key(key), "keyDetails": _key_details(key),
                          "validFor": {"start": start}},
            "logId": {"keyId": b64encode(hashlib.sha256(key.der).digest())},
        }

    cas = []
    for chain in ca_chains:
        certs = list(chain)
        cas.append({
            "subject": {"commonName": certs[-1].subject.rfc4514_string()},
            "uri": "",
            "certChain": {"certificates": [
                {"rawBytes": b64encode(c.public_bytes(serialization.Encoding.DER))}
                for c in certs
            ]},
            "validFor": {"start": start},
        })
    document = {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [log(k, f"https://{k.name}") for k in rekor_keys],
        "certificateAuthorities": cas,
        "ctlogs": [log(k, f"https://{k.name}") for k in ct_keys],
        "timestampAuthorities": [],
    }
    return json.dumps(document, indent=2).encode()


def trust_root_from_parts(
    *,
    ca_chains: Iterable[Iterable[x509.Certificate]] = (),
    rekor_keys: Iterable[PublicKey] = (),
    ct_keys: Iterable[PublicKey] = (),
    name: str = "custom",
) -> TrustRoot:
    """A trust root made of PEM material (e.g. ``fulcio_v1.crt.pem`` + ``rekor.pub``)."""
    raw = build_trusted_root_json(ca_chains=ca_chains, rekor_keys=rekor_keys, ct_keys=ct_keys)
    return parse_trust_root(raw, name=name, source=name)


__all__ = [
    "CertificateAuthority",
    "LogInstance",
    "TrustRoot",
    "Validity",
    "build_trusted_root_json",
    "embedded_trust_root",
    "import_trust_root",
    "list_roots",
    "remove_trust_root",
    "load_trust_root",
    "parse_trust_root",
    "show",
    "system_trust_root",
    "trust_root",
    "trust_root_from_parts",
    "update_trust_root",
]
