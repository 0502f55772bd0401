"""Orchestration: reference → policy → digest → signatures → :class:`Verdict`.

This is the one place that decides whether an image may be handed to docker. Every
step fails closed: an error while resolving, fetching or checking refuses the image
(exit 77), an unreachable registry with no usable offline record is exit 69, and a
configuration problem is exit 78. Nothing here execs docker; the hand-off consumes the
verdict.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from safedocker._internal import strictjson
from safedocker._internal.timefmt import stamp
from safedocker.cache.memos import Memo, forget_memo, note_memo, recall_memo
from safedocker.cache.store import recall, remember
from safedocker.errors import (
    RegistryError,
    RegistryTimedOut,
    RegistryUnavailable,
    VerificationError,
)
from safedocker.policy.model import Action, Decision, Unmatched
from safedocker.verify.material import (
    MATERIAL_KIND_COSIGN,
    SignatureMaterial,
    api_signature_referrers,
    bundle_material,
    fetch_material,
    list_signature_referrers,
)
from safedocker.verify.rules import (
    default_trust_roots,
    evaluate_rule,
    signature_source,
    signature_sources,
)
from safedocker.verify.verdict import Verdict

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Concatenate

    from safedocker._internal.deadline import Deadline
    from safedocker.cache.store import Cache, TagRecord
    from safedocker.oci.auth import AuthCache
    from safedocker.oci.client import RegistryClient
    from safedocker.oci.manifest import Descriptor, Manifest, Referrers
    from safedocker.oci.platform import PlatformChoice
    from safedocker.policy.config import Config
    from safedocker.policy.model import Rule
    from safedocker.reference import Digest, ImageRef
    from safedocker.trust.roots import TrustRoot

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


# --- the whole verification ------------------------------------------------------------


def _within_deadline(method: Callable[Concatenate[Verifier, P], R]
                     ) -> Callable[Concatenate[Verifier, P], R]:
    """One deadline (the config's registry_timeout) for everything ``method`` asks any
    registry, handed to each client it uses; outside it, a client's requests are capped
    one by one only. Re-entrant: an outer call's deadline stays."""
    @functools.wraps(method)
    def bounded(self: Verifier, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._deadline is not None:
            return method(self, *args, **kwargs)
        from safedocker._internal.deadline import Deadline

        self._deadline = Deadline.after(self.config.registry_timeout,
                                        setting="registry_timeout")
        try:
            return method(self, *args, **kwargs)
        finally:
            self._deadline = None
            with self._lock:
                clients = list(self._clients.values())
            for client in clients:
                client.deadline = None  # this thread's: another may be verifying

    return bounded


@dataclass(frozen=True)
class Located:
    """What a reference names: the digest to pin and the platform's image manifest."""

    digest: Digest
    manifest_digest: Digest
    config_digest: Digest | None
    config_media_type: str | None = None  # an image's config, or a plugin's


@dataclass
class Verifier:
    """Verifies images under one configuration; one registry client per registry host.

    Several images of one command may be verified at once from several threads
    (:meth:`Gate.admit_all`): they share the clients (one HTTP session and one token
    cache per registry) and the trust roots; each thread has its own deadline and its
    own ``judged``.

    With a cache, what was fetched is recorded so that a later run without the network
    can decide from it (offline, within offline_max_age); online, the registry's current
    signatures are fetched every time. Cached material is verified again under the
    current policy every time.
    """

    config: Config
    # The platform an index is resolved for when verify() is given none: an explicit one,
    # a PlatformChoice (explicit, else the daemon's), or None (this host).
    platform: str | PlatformChoice | None = None
    offline: bool = False
    cache: Cache | None = None
    trust_roots: Callable[[str], TrustRoot] | None = None  # by name; default: config dir
    auth_cache: AuthCache | None = None  # shared by its clients; made with the first one
    docker_config_dir: str | None = None  # docker's --config, for registry credentials
    _clients: dict[str, RegistryClient] = field(default_factory=dict)
    _roots: dict[str, TrustRoot] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _local: threading.local = field(default_factory=threading.local, repr=False,
                                    compare=False)

    @property
    def _deadline(self) -> Deadline | None:
        """The end of this thread's current verification's registry traffic: one per
        verify() (and per image_config()), handed to every client it uses (config's
        registry_timeout)."""
        found: Deadline | None = getattr(self._local, "deadline", None)
        return found

    @_deadline.setter
    def _deadline(self, deadline: Deadline | None) -> None:
        self._local.deadline = deadline

    @property
    def judged(self) -> list[tuple[ImageRef, Digest, SignatureMaterial]]:
        """The material this thread's last online verify() judged, by source repository
        and digest (what the verdict cache re-checks on a hit: gate/warm.py)."""
        found: list[tuple[ImageRef, Digest, SignatureMaterial]] | None = getattr(
            self._local, "judged", None)
        if found is None:
            found = self._local.judged = []
        return found

    @judged.setter
    def judged(self, judged: list[tuple[ImageRef, Digest, SignatureMaterial]]) -> None:
        self._local.judged = judged
    # The cache's memos as read (or written) by this verifier: (memo, subject) -> holds.
    _memos: dict[tuple[Memo, str], bool] = field(default_factory=dict)

    def _trust_root(self, name: str) -> TrustRoot:
        """Each trusted root is read and parsed once per verifier, however many rules and
        passes (the `.sig` material, then bundles) and threads ask for it."""
        with self._lock:
            if name not in self._roots:
                self._roots[name] = (self.trust_roots or default_trust_roots)(name)
            return self._roots[name]

    def client(self, registry: str) -> RegistryClient:
        """The one client of ``registry`` (its HTTP session; the token cache is shared by
        all of them), with this thread's deadline."""
        with self._lock:
            if registry not in self._clients:
                from safedocker.oci.auth import AuthCache
                from safedocker.oci.client import RegistryClient

                if self.auth_cache is None:
                    self.auth_cache = AuthCache()
                self._clients[registry] = RegistryClient(
                    registry, insecure_registries=self.config.insecure_registries,
                    docker_config_dir=self.docker_config_dir, auth_cache=self.auth_cache,
                )
            client = self._clients[registry]
        client.deadline = self._deadline
        return client

    @property
    def requests_made(self) -> int:
        with self._lock:
            return sum(client.requests_made for client in self._clients.values())

    def _choice(self, platform: PlatformChoice | None) -> PlatformChoice:
        from safedocker.oci.platform import PlatformChoice

        if platform is not None:
            return platform
        if isinstance(self.platform, PlatformChoice):
            return self.platform
        return PlatformChoice(self.platform)

    def last_verified(self, ref: ImageRef) -> TagRecord | None:
        """The digest ``ref``'s tag had when an image under it was last accepted here."""
        if ref.digest is not None and ref.tag is None:
            return None
        return recall(self.cache, lambda c: c.lookup_tag(ref.name, ref.tag_or_default))

    @_within_deadline
    def verify(self, ref: ImageRef, platform: PlatformChoice | None = None) -> Verdict:
        """The verdict for ``ref``; an index is resolved for ``platform`` (default: the
        verifier's). A tag whose image is accepted online is remembered as verified."""
        self.judged = []
        verdict = self._verify(ref, self._choice(platform))
        if (verdict.accepted and not verdict.warned and not verdict.offline
                and verdict.covered is not None and verdict.digest is not None
                and ref.digest is None):
            digest = verdict.digest
            remember(self.cache, lambda c: c.record_tag(ref.name, ref.tag_or_default, digest))
        return verdict

    def verify_cached(self, ref: ImageRef, platform: PlatformChoice | None,
                      error: RegistryUnavailable) -> Verdict:
        """The verdict for ``ref`` from cached material alone, as :meth:`verify` decides when
        the registry fails with ``error``: for an image whose registry a set's deadline
        cut short (gate/decide.py). Raises what verify would then (no usable record)."""
        self.judged = []
        decision = self.config.policy.decide(ref)
        if decision.action is not Action.VERIFY:
            return self._verify(ref, self._choice(platform))  # no registry needed
        return self._fallback(ref, decision, self._choice(platform), error)

    def _verify(self, ref: ImageRef, choice: PlatformChoice) -> Verdict:
        decision = self.config.policy.decide(ref)
        match decision.action:
            case None:
                return self._unmatched(ref, decision)
            case Action.REJECT:
                rule = next(r for r in decision.rules if r.action is Action.REJECT)
                return Verdict(ref, decision, accepted=False,
                               reasons=(f"denied by policy ({rule.describe()})",))
            case Action.ACCEPT:
                return Verdict(ref, decision, accepted=True, digest=ref.digest)
            case Action.VERIFY:
                if self.offline:
                    return replace(
                        self._verify_offline(ref, decision, choice,
                                             cause="SAFE_DOCKER_OFFLINE=1"),
                        offline_cause="SAFE_DOCKER_OFFLINE=1: registry not contacted")
                try:
                    return self._verify_online(ref, decision, choice)
                except RegistryUnavailable as e:
                    # Only a network failure falls back; a bad signature or a registry
                    # that answered with bad data is a refusal, never "offline".
                    return self._fallback(ref, decision, choice, e)

    def _unmatched(self, ref: ImageRef, decision: Decision) -> Verdict:
        match decision.unmatched:
            case Unmatched.REJECT:
                return Verdict(ref, decision, accepted=False,
                               reasons=(f"no policy scope covers {ref.name}",))
            case Unmatched.WARN:
                return Verdict(ref, decision, accepted=True, warned=True, digest=ref.digest,
                               reasons=(f"no policy scope covers {ref.name}",))
            case Unmatched.ACCEPT:
                return Verdict(ref, decision, accepted=True, digest=ref.digest)

    # -- online --

    def _locate_online(self, ref: ImageRef, choice: PlatformChoice) -> Located:
        """Resolve tag → digest from the registry (hashing the bytes ourselves)."""
        from safedocker.oci.client import ManifestNotFound
        from safedocker.oci.manifest import Manifest

        client = self.client(ref.registry)
        try:
            top = client.get_manifest(ref.repository, ref.digest or ref.tag_or_default)
        except ManifestNotFound as e:
            raise RegistryError(f"refused {ref}: the registry has no such image", why=e.why,
                                hint="check the repository and tag (docker pull would fail "
                                     "too)") from e
        except RegistryError as e:
            if e.hint:
                raise
            raise RegistryError(f"refused {ref}: {e.what}", why=e.why,
                                hint="the registry's answer cannot be trusted; nothing was "
                                     "pulled") from e
        remember(self.cache, lambda c: c.put_manifest(top.digest, top.media_type, top.raw))
        manifest = top
        if top.is_index:
            child = _child(ref, top, choice)
            cached = recall(self.cache, lambda c: c.get_manifest(child.digest))
            if cached is not None:
                manifest = Manifest.parse(cached.data, cached.media_type, digest=child.digest)
            else:
                manifest = client.get_manifest(ref.repository, child.digest)
                remember(self.cache, lambda c: c.put_manifest(manifest.digest,
                                                              manifest.media_type, manifest.raw))
            if manifest.is_index:
                raise _nested(ref, child.digest)
        config = manifest.config.digest if manifest.config else None
        return Located(top.digest, manifest.digest, config,
                       manifest.config.media_type if manifest.config else None)

    def _verify_online(self, ref: ImageRef, decision: Decision, choice: PlatformChoice
                       ) -> Verdict:
        """Online, the registry's current signatures are judged, never cached ones:
        deleting a signature is how a publisher withdraws it, and it must stop the image at
        once. The cache decides only offline, within offline_max_age (and its memos say
        where to look first: :class:`_Lookup`)."""
        located = self._locate_online(ref, choice)
        lookup = _Lookup(self, ref, decision, located)
        verdict = lookup.run()
        self.judged = lookup.judged()
        return verdict

    def memo(self, memo: Memo, subject: str) -> bool:
        """Whether ``memo`` holds for ``subject`` (read from the cache once per verifier)."""
        if (memo, subject) not in self._memos:
            self._memos[memo, subject] = recall_memo(self.cache, memo, subject)
        return self._memos[memo, subject]

    def set_memo(self, memo: Memo, subject: str, *, holds: bool) -> None:
        """Write ``memo`` to the cache when it changes: noted, or forgotten."""
        if self.memo(memo, subject) == holds:
            return
        (note_memo if holds else forget_memo)(self.cache, memo, subject)
        self._memos[memo, subject] = holds

    # -- offline --

    def _fallback(self, ref: ImageRef, decision: Decision, choice: PlatformChoice,
                  error: RegistryUnavailable) -> Verdict:
        """The cached material's verdict when the registry failed with ``error``."""
        log.info("registry unreachable (%s); deciding from the cache", error.why)
        verdict = self._verify_offline(ref, decision, choice, cause=error.what, error=error)
        return replace(verdict, offline_cause=f"registry unreachable: {error.what}"
                       + (f", {error.why}" if error.why else ""))

    def _verify_offline(self, ref: ImageRef, decision: Decision, choice: PlatformChoice, *,
                        cause: str, error: RegistryUnavailable | None = None) -> Verdict:
        def unusable(why: str) -> RegistryUnavailable:
            # The network's own why comes first; a timeout's hint names registry_timeout.
            return RegistryUnavailable(
                f"cannot verify {ref}: {cause}",
                why="; ".join(w for w in (error and error.why, f"no usable offline record: {why}")
                              if w),
                hint=error.hint if isinstance(error, RegistryTimedOut) else
                "verify it once while online, or bring the material with "
                "`safe-docker cache import` / `safe-docker airgap load`",
            )

        if self.cache is None:
            raise error or unusable("the cache is not available")
        digest = ref.digest
        if digest is None:
            record = recall(self.cache, lambda c: c.lookup_tag(ref.name, ref.tag_or_default))
            if record is None:
                raise unusable(f"{ref.name}:{ref.tag_or_default} was never verified here")
            digest = record.digest
        located = self._locate_cached(ref, digest, choice)
        if located is None:
            raise unusable(f"no cached manifest for {ref.name}@{digest}")
        by_source: dict[str, list[tuple[Digest, SignatureMaterial]]] = {}
        for name, source in signature_sources(decision, ref).items():
            by_source[name] = []
            for candidate in dict.fromkeys((located.digest, located.manifest_digest)):
                material = self._cached_material(source, candidate)
                if material is not None:
                    by_source[name].append((candidate, material))
        found = [material for materials in by_source.values() for _, material in materials]
        if not found:
            raise unusable(f"no cached signatures for {ref.name}@{digest}")
        now = time.time()
        newest = max(material.fetched_at for material in found)
        if newest > now:
            # The cache is the user's file: a date ahead of this clock cannot be an age
            # (it would never exceed offline_max_age, even "0s"), so it is no record.
            raise unusable(f"cached material is dated in the future ({stamp(newest)}); "
                           "the cache or this machine's clock was changed")
        oldest = min(material.fetched_at for material in found)
        age = now - oldest
        if age > self.config.offline_max_age:
            raise unusable(
                f"cached material is {age / 86400:.1f} days old, more than offline_max_age"
            )
        return self.judge(ref, decision, located, by_source.get(ref.name, []),
                          by_source=by_source, offline=True, material_time=oldest)

    def _locate_cached(self, ref: ImageRef, digest: Digest, choice: PlatformChoice
                       ) -> Located | None:
        from safedocker.oci.manifest import Manifest

        record = recall(self.cache, lambda c: c.get_manifest(digest))
        if record is None:
            return None
        top = Manifest.parse(record.data, record.media_type, digest=digest)
        manifest = top
        if top.is_index:
            child = _child(ref, top, choice)
            child_record = recall(self.cache, lambda c: c.get_manifest(child.digest))
            if child_record is None:
                return None
            manifest = Manifest.parse(child_record.data, child_record.media_type,
                                      digest=child.digest)
            if manifest.is_index:
                raise _nested(ref, child.digest)
        config = manifest.config.digest if manifest.config else None
        return Located(top.digest, manifest.digest, config,
                       manifest.config.media_type if manifest.config else None)

    def store_material(self, ref: ImageRef, material: SignatureMaterial) -> None:
        remember(self.cache, lambda c: c.put_material(ref.name, material.digest,
                                                      MATERIAL_KIND_COSIGN, material.to_bytes()))

    def _cached_material(self, ref: ImageRef, digest: Digest) -> SignatureMaterial | None:
        record = recall(self.cache,
                        lambda c: c.get_material(ref.name, digest, MATERIAL_KIND_COSIGN))
        if record is None:
            return None
        try:
            material = SignatureMaterial.from_bytes(record.data)
        except VerificationError:
            return None
        return material if material.digest == digest else None

    # -- deciding --

    def judge(self, ref: ImageRef, decision: Decision, located: Located,
              candidates: Sequence[tuple[Digest, SignatureMaterial]], *,
              by_source: Mapping[str, Sequence[tuple[Digest, SignatureMaterial]]] | None = None,
              offline: bool = False, material_time: float | None = None) -> Verdict:
        """Apply every verify rule of ``decision`` to already-fetched material, and say
        what the accepted signatures cover (the verdict's ``covered``, which docker gets):
        ``candidates`` from the image's repository, ``by_source`` from each rule's
        ``signatures_repository`` (by repository name).

        The index's own signatures are judged alone first: if they satisfy the policy,
        every child is vouched for and docker may pick one itself. Otherwise acceptance
        needs the platform child's signatures, which vouch for that child only.
        """
        if located.digest != located.manifest_digest:
            def index_only(found: Sequence[tuple[Digest, SignatureMaterial]]
                           ) -> list[tuple[Digest, SignatureMaterial]]:
                return [(d, m) for d, m in found if d == located.digest and not m.empty]

            index = index_only(candidates)
            index_sources = {name: index_only(found) for name, found in (by_source or {}).items()}
            if index or any(index_sources.values()):
                verdict = self._judge(ref, decision, located, index, by_source=index_sources,
                                      covered=located.digest, offline=offline,
                                      material_time=material_time)
                if verdict.accepted:
                    return verdict
        return self._judge(ref, decision, located, candidates, by_source=by_source,
                           covered=located.manifest_digest, offline=offline,
                           material_time=material_time)

    def _judge(self, ref: ImageRef, decision: Decision, located: Located,
               candidates: Sequence[tuple[Digest, SignatureMaterial]], *,
               by_source: Mapping[str, Sequence[tuple[Digest, SignatureMaterial]]] | None,
               covered: Digest, offline: bool, material_time: float | None) -> Verdict:
        def material_for(rule: Rule) -> Sequence[tuple[Digest, SignatureMaterial]]:
            name = signature_source(rule, ref).name
            if name == ref.name:
                return candidates
            return (by_source or {}).get(name, [])

        outcomes = [evaluate_rule(rule, ref, material_for(rule), self.config, self._trust_root)
                    for rule in decision.verify_rules]
        accepted = all(outcome.satisfied for outcome in outcomes)
        signers = tuple(dict.fromkeys(s for o in outcomes for s in o.signers))
        reasons = () if accepted else tuple(
            reason for outcome in outcomes if not outcome.satisfied for reason in outcome.reasons
        )
        return Verdict(
            ref, decision, accepted=accepted, digest=located.digest,
            platform_digest=located.manifest_digest, config_digest=located.config_digest,
            config_media_type=located.config_media_type,
            covered=covered if accepted else None,
            signers=signers, reasons=reasons, offline=offline, material_time=material_time,
        )

    @_within_deadline
    def resolve(self, verdict: Verdict, platform: PlatformChoice | None = None) -> Verdict:
        """``verdict`` of an image accepted without a digest, with the digests its name
        resolves to now (a build reads that image's ONBUILD triggers, then pins it)."""
        if self.offline:
            raise RegistryUnavailable(f"cannot resolve {verdict.ref} offline",
                                      why="SAFE_DOCKER_OFFLINE=1: registry not contacted")
        located = self._locate_online(verdict.ref, self._choice(platform))
        return replace(verdict, digest=located.digest, platform_digest=located.manifest_digest,
                       config_digest=located.config_digest)

    @_within_deadline
    def image_config(self, verdict: Verdict) -> Mapping[str, Any] | None:
        """The image config JSON of a verified image (for GPU decisions), hash-checked.

        From the cache when it is there (always so offline), else one registry request.
        """
        digest = verdict.config_digest
        if digest is None:
            return None
        cached = recall(self.cache, lambda c: c.get_config(digest))
        if cached is not None:
            raw = cached.data
        elif self.offline or verdict.offline:
            return None
        else:
            from safedocker.oci.media import CONFIG_MAX

            raw = self.client(verdict.ref.registry).get_blob(verdict.ref.repository, digest,
                                                             CONFIG_MAX)
            remember(self.cache, lambda c: c.put_config(digest, raw))
        try:
            config = strictjson.loads(raw, go_keys=True)
        except (ValueError, RecursionError) as e:
            raise RegistryError(f"image config of {verdict.ref} is not JSON") from e
        return config if isinstance(config, dict) else None



class _Kind(enum.Enum):
    """Where signature material is looked up for one digest."""

    SIG = "the .sig tag"  # cosign's sha256-<hex>.sig manifest and its layers
    REFERRERS = "OCI referrers"  # sigstore bundles and OCI 1.1 signatures (API or tag schema)

    def found(self, material: SignatureMaterial) -> bool:
        match self:
            case _Kind.SIG:
                return material.sig_manifest is not None
            case _Kind.REFERRERS:
                return material.from_referrers


@dataclass
class _Lookup:
    """The signature lookups of one online verification, and the verdict they lead to.

    Each kind of lookup (the `.sig` tag, the referrers) is made for every repository the
    rules read and every digest (an index and its platform's child); after a kind that
    found something the material so far is judged, and once the policy is satisfied
    nothing more is fetched. A verdict only gains signers from more material (claims.py
    matches signers one to one, every check is per claim), so stopping early accepts
    exactly what looking everywhere accepts; and a refusal has looked everywhere. That is
    why the order may follow what is likely and what the cache's memos say:

    * a rule with identities (keyless: cosign v3 attaches sigstore bundles as referrers)
      and a repository whose signatures came from there read the referrers before the
      `.sig` tag; a key-only rule reads the `.sig` tag first (cosign's default);
    * the referrers API is asked first only at a registry known to have it (seen in this
      run, or a memo); at one memo'd as having none, and for a keyless rule where nothing
      is known, the tag schema is read instead and the API is asked only when everything
      else left the policy unsatisfied, just before a refusal (its listing then adds to
      the tag schema's). A key-only rule with nothing known asks the API, then the tag
      schema, as the client does; where the API listed, the tag schema is read too
      before a refusal (an API need not list what the tag schema holds).
    """

    verifier: Verifier
    ref: ImageRef
    decision: Decision
    located: Located
    sources: dict[str, ImageRef] = field(init=False)
    found: dict[str, dict[Digest, SignatureMaterial]] = field(init=False)
    # Whether the rules may be satisfied by keyless signatures (referrers first).
    keyless: bool = field(init=False)
    # The referrers read from the tag schema without asking the API (asked after all
    # before a refusal), with the referrer digests the tag schema listed.
    unasked: dict[tuple[str, Digest], frozenset[Digest]] = field(default_factory=dict)
    # The referrers the API listed (the tag schema not read; read after all before a
    # refusal: a registry's API need not list what its tag schema holds).
    unread: dict[tuple[str, Digest], frozenset[Digest]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sources = signature_sources(self.decision, self.ref)
        digests = dict.fromkeys((self.located.digest, self.located.manifest_digest))
        self.found = {name: {d: SignatureMaterial(d, None) for d in digests}
                      for name in self.sources}
        self.keyless = any(rule.identities for rule in self.decision.verify_rules)

    def plan(self) -> tuple[_Kind, _Kind]:
        if self.keyless or any(self.verifier.memo(Memo.REFERRERS_FIRST, source.name)
                               for source in self.sources.values()):
            return (_Kind.REFERRERS, _Kind.SIG)
        return (_Kind.SIG, _Kind.REFERRERS)

    def run(self) -> Verdict:
        verdict: Verdict | None = None
        for kind in self.plan():
            if self._look(kind):
                verdict = self._judge()
                if verdict.accepted:
                    break
        else:
            asked, read = self._ask_api(), self._read_tag_schema()
            if asked or read:
                verdict = self._judge()
        if verdict is None:
            verdict = self._judge()
        self._note(verdict)
        return verdict

    def judged(self) -> list[tuple[ImageRef, Digest, SignatureMaterial]]:
        return [(self.sources[name], digest, material)
                for name, found in self.found.items() for digest, material in found.items()]

    def _judge(self) -> Verdict:
        by_source = {name: list(found.items()) for name, found in self.found.items()}
        return self.verifier.judge(self.ref, self.decision, self.located,
                                   by_source.get(self.ref.name, []), by_source=by_source)

    def _api(self, registry: str) -> bool:
        """Whether to ask ``registry``'s referrers API before its tag schema: what its
        client saw in this run, else what the memos say, else (nothing known) yes for a
        key-only rule, no for a keyless one."""
        seen = self.verifier.client(registry).referrers_api
        if seen is not None:
            return seen
        if self.verifier.memo(Memo.REFERRERS_API, registry):
            return True
        if self.verifier.memo(Memo.NO_REFERRERS_API, registry):
            return False
        return not self.keyless

    def _look(self, kind: _Kind) -> bool:
        """Look ``kind`` up everywhere; whether anything was there."""
        anything = False
        for name, source in self.sources.items():
            client = self.verifier.client(source.registry)
            for digest, material in self.found[name].items():
                match kind:
                    case _Kind.SIG:
                        found = material.with_sig(fetch_material(client, source.repository,
                                                                 digest))
                    case _Kind.REFERRERS:
                        api = self._api(source.registry)
                        listed = list_signature_referrers(client, source.repository, digest,
                                                          api=api)
                        if not api:  # what the client learns meanwhile (another
                            # thread), _ask_api reads when it comes to that
                            self.unasked[name, digest] = frozenset(
                                d.digest for d in listed.descriptors)
                        elif listed.source == "api":
                            self.unread[name, digest] = frozenset(
                                d.digest for d in listed.descriptors)
                        found = bundle_material(client, source.repository, material, listed)
                # Stored for offline use, never read back online.
                self.verifier.store_material(source, found)
                self.found[name][digest] = found
                anything = anything or kind.found(found)
        return anything

    def _ask_api(self) -> bool:
        """Before a refusal: ask the referrers API that was skipped; whether it listed
        anything the tag schema did not."""
        changed = False
        for (name, digest), seen in self.unasked.items():
            source = self.sources[name]
            client = self.verifier.client(source.registry)
            if client.referrers_api is False:
                continue  # it answered in this run: there is none
            listed = api_signature_referrers(client, source.repository, digest)
            if listed is not None:
                changed = self._add_listed(name, digest, seen, listed) or changed
        return changed

    def _read_tag_schema(self) -> bool:
        """Before a refusal: read the tag schema where the referrers API listed instead;
        whether it listed anything the API did not."""
        changed = False
        for (name, digest), seen in self.unread.items():
            source = self.sources[name]
            client = self.verifier.client(source.registry)
            listed = list_signature_referrers(client, source.repository, digest, api=False)
            changed = self._add_listed(name, digest, seen, listed) or changed
        return changed

    def _add_listed(self, name: str, digest: Digest, seen: frozenset[Digest],
                    listed: Referrers) -> bool:
        """Fetch what ``listed`` names beyond ``seen`` into the material held for
        ``name@digest``; whether there was anything."""
        source = self.sources[name]
        new = replace(listed, descriptors=tuple(d for d in listed.descriptors
                                                if d.digest not in seen))
        if not new.descriptors:
            return False
        client = self.verifier.client(source.registry)
        material = bundle_material(client, source.repository, self.found[name][digest],
                                   new, add=True)
        self.verifier.store_material(source, material)
        self.found[name][digest] = material
        return True

    def _note(self, verdict: Verdict) -> None:
        """What this lookup taught about the registries and repositories, as memos."""
        verifier = self.verifier
        for source in self.sources.values():
            seen = verifier.client(source.registry).referrers_api
            if seen is not None:
                verifier.set_memo(Memo.NO_REFERRERS_API, source.registry, holds=not seen)
                verifier.set_memo(Memo.REFERRERS_API, source.registry, holds=seen)
            if not verdict.accepted:
                continue
            materials = self.found[source.name].values()
            sig = any(_Kind.SIG.found(m) for m in materials)
            referrers = any(m.bundles or m.sig_referrers for m in materials)
            if referrers != sig:
                verifier.set_memo(Memo.REFERRERS_FIRST, source.name, holds=referrers)


def _child(ref: ImageRef, index: Manifest, choice: PlatformChoice) -> Descriptor:
    """The index entry the daemon picks for ``choice``; an index there is refused."""
    from safedocker.oci.media import INDEX_MEDIA_TYPES
    from safedocker.oci.platform import select_platform

    child = select_platform(index, choice)
    if child.media_type in INDEX_MEDIA_TYPES:
        raise _nested(ref, child.digest)
    return child


def _nested(ref: ImageRef, digest: Digest) -> RegistryError:
    return RegistryError(f"refused {ref}: its index names another index ({digest})",
                         why="nested indexes are read differently by docker versions",
                         hint="publish a flat index of image manifests")
