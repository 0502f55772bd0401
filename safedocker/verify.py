"""Orchestration: reference → policy → digest → signatures → :class:`Verdict`.

This is the one place that decides whether an image may be handed to docker. Every
step fails closed: an error while resolving, fetching or checking refuses the image
(exit 77), an unreachable registry with no usable offline record is exit 69, and a
configuration problem is exit 78. Nothing here execs docker; ``handoff`` consumes the
verdict.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from safedocker.errors import (
    ConfigError,
    Refused,
    RegistryError,
    RegistryUnavailable,
    SafeDockerError,
    VerificationError,
)
from safedocker.policy.model import Action, Decision, Rule, Tlog, Unmatched

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from safedocker.cache.store import Cache
    from safedocker.oci.client import RegistryClient
    from safedocker.policy.config import Config
    from safedocker.policy.model import Attestation, Identity
    from safedocker.reference import Digest, ImageRef
    from safedocker.signatures.cosign import CosignSignature
    from safedocker.signatures.simplesigning import SimpleSigningPayload
    from safedocker.trust.keys import PublicKey
    from safedocker.trust.roots import TrustRoot

log = logging.getLogger(__name__)
T = TypeVar("T")

SIG_TAG_SUFFIX = ".sig"
MATERIAL_KIND_COSIGN = "cosign-sig"


@dataclass(frozen=True)
class Signer:
    """Who vouched for an image."""

    kind: str  # "key" | "keyless" | "pki"
    name: str  # key name, or certificate subject
    detail: str = ""  # fingerprint, or issuer

    def describe(self) -> str:
        return f"{self.name} ({self.kind}{', ' + self.detail if self.detail else ''})"

    @property
    def identity_key(self) -> str:
        """What makes two signers distinct for thresholds: one key is one signer, however
        many signatures (`.sig` layers, bundles) it made."""
        if self.kind == "key":
            return f"key:{self.detail}"
        return f"{self.kind}:{self.name}:{self.detail}"


@dataclass(frozen=True)
class Verdict:
    """The decision about one image; made here, consumed by hand-off, CLI and audit."""

    ref: ImageRef
    decision: Decision
    accepted: bool
    digest: Digest | None = None  # what docker is handed (index digest for multi-platform)
    platform_digest: Digest | None = None  # the platform's image manifest, when known
    config_digest: Digest | None = None
    signers: tuple[Signer, ...] = ()
    reasons: tuple[str, ...] = ()  # why not, in user words (or why only a warning)
    warned: bool = False  # accepted only because mode or `unmatched` says warn
    offline: bool = False
    decided_at: float = field(default_factory=time.time)
    material_time: float | None = None  # when the material used offline was fetched

    @property
    def rule(self) -> Rule | None:
        return self.decision.rules[-1] if self.decision.rules else None

    @property
    def pinned(self) -> str | None:
        return self.ref.pinned(self.digest) if self.digest else None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.ref),
            "digest": str(self.digest) if self.digest else None,
            "platform_digest": str(self.platform_digest) if self.platform_digest else None,
            "pinned": self.pinned,
            "accepted": self.accepted,
            "warned": self.warned,
            "offline": self.offline,
            "rules": [
                {"scope": r.scope, "action": r.action.value, "source": r.source}
                for r in self.decision.rules
            ],
            "signers": [{"kind": s.kind, "name": s.name, "detail": s.detail}
                        for s in self.signers],
            "reasons": list(self.reasons),
        }

    def refusal(self) -> Refused:
        """The error that refuses this image, with a hint that fits the reason."""
        why = "; ".join(dict.fromkeys(self.reasons)) or "not verified"
        action = self.decision.action
        if action is Action.REJECT:
            hint = "the policy denies this scope; see `safe-docker policy check IMAGE`"
        elif action is None:
            hint = ("add a rule for it: `safe-docker policy add SCOPE --key NAME` "
                    "(or `policy allow SCOPE`)")
        elif any("no signature" in r for r in self.reasons):
            hint = "ask the publisher to sign it, or sign a mirror with `safe-docker sign`"
        else:
            hint = "see `safe-docker policy check IMAGE` for the rule that applies"
        return Refused(f"refused {self.ref}", why=why, hint=hint)


# --- signature material -------------------------------------------------------------


@dataclass(frozen=True)
class SignatureMaterial:
    """The raw bytes fetched for one digest, kept so the check can be re-done offline.

    ``bundles_fetched`` says whether the OCI referrers were looked at: they are fetched
    only when the `.sig` signatures alone do not satisfy the policy (or an attestation is
    required), which keeps a cold key-signed verify at three registry requests.
    """

    digest: Digest
    sig_manifest: bytes | None  # the `sha256-<hex>.sig` manifest; None: no such tag
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    fetched_at: float = field(default_factory=time.time)
    bundles: tuple[bytes, ...] = ()  # sigstore bundles attached through OCI referrers
    bundle_errors: tuple[str, ...] = ()  # referrers that announced a bundle but were unusable
    bundles_fetched: bool = False

    @property
    def empty(self) -> bool:
        return self.sig_manifest is None and not self.bundles and not self.bundle_errors

    def with_bundles(self, bundles: Sequence[bytes], errors: Sequence[str]) -> SignatureMaterial:
        return SignatureMaterial(self.digest, self.sig_manifest, self.blobs, self.fetched_at,
                                 tuple(bundles), tuple(errors), bundles_fetched=True)

    def to_bytes(self) -> bytes:
        return json.dumps({
            "digest": str(self.digest),
            "sig_manifest": _b64(self.sig_manifest),
            "blobs": {k: _b64(v) for k, v in sorted(self.blobs.items())},
            "fetched_at": self.fetched_at,
            "bundles": [_b64(b) for b in self.bundles],
            "bundle_errors": list(self.bundle_errors),
            "bundles_fetched": self.bundles_fetched,
        }, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SignatureMaterial:
        """Parse cached material; everything in it is re-verified, never trusted."""
        from safedocker.reference import Digest

        try:
            obj = json.loads(data)
            blobs = {str(k): base64.b64decode(v, validate=True) for k, v in obj["blobs"].items()}
            manifest = obj["sig_manifest"]
            errors = obj.get("bundle_errors", [])
            if not all(isinstance(e, str) for e in errors):
                raise TypeError("bundle_errors")
            return cls(
                digest=Digest.parse(obj["digest"]),
                sig_manifest=(
                    None if manifest is None else base64.b64decode(manifest, validate=True)
                ),
                blobs=blobs,
                fetched_at=float(obj["fetched_at"]),
                bundles=tuple(base64.b64decode(b, validate=True)
                              for b in obj.get("bundles", [])),
                bundle_errors=tuple(errors),
                bundles_fetched=bool(obj.get("bundles_fetched", False)),
            )
        except (ValueError, KeyError, TypeError, AttributeError, SafeDockerError) as e:
            raise VerificationError("cached signature material is unreadable",
                                    hint="run online once, or `safe-docker cache prune`") from e

    def signatures(self) -> tuple[list[CosignSignature], list[str]]:
        """The cosign signatures in this material, and why any layer was skipped."""
        from safedocker.signatures.cosign import from_layer, signature_layers

        if self.sig_manifest is None:
            return [], []
        found, skipped = [], []
        for layer in signature_layers(self.sig_manifest):
            blob = self.blobs.get(str(layer.digest))
            if blob is None or not layer.digest.matches(blob):
                skipped.append(f"signature layer {layer.digest} missing or altered")
                continue
            try:
                found.append(from_layer(layer.annotations, layer.media_type, blob))
            except VerificationError as e:
                skipped.append(e.why or e.what)
        return found, skipped


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def fetch_material(client: RegistryClient, repository: str, digest: Digest) -> SignatureMaterial:
    """Fetch the cosign `.sig` manifest for ``digest`` and its signature layers."""
    from safedocker.oci.client import ManifestNotFound
    from safedocker.oci.media import SIGNATURE_LAYER_MAX
    from safedocker.signatures.cosign import signature_layers

    try:
        manifest = client.get_manifest(repository, digest.tag_prefix + SIG_TAG_SUFFIX)
    except ManifestNotFound:
        return SignatureMaterial(digest, None)
    blobs = {}
    for layer in signature_layers(manifest.raw):
        if layer.oversized:
            continue  # not a signature payload; never download it
        blobs[str(layer.digest)] = client.get_blob(repository, layer.digest, SIGNATURE_LAYER_MAX)
    return SignatureMaterial(digest, manifest.raw, blobs)


def fetch_bundle_material(client: RegistryClient, repository: str,
                          material: SignatureMaterial) -> SignatureMaterial:
    """Add the sigstore bundles attached to ``material.digest`` through OCI referrers."""
    from safedocker.signatures.bundle import fetch_bundles

    candidates = fetch_bundles(client, repository, material.digest)
    bundles = [c.raw for c in candidates if not c.error]
    errors = [f"bundle {c.referrer}: {c.error}" for c in candidates if c.error]
    return material.with_bundles(bundles, errors)


# --- checking one rule ---------------------------------------------------------------


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    signers: tuple[Signer, ...]
    reasons: tuple[str, ...]
    attestations_ok: bool = True

    @property
    def satisfied(self) -> bool:
        return len(self.signers) >= self.rule.threshold and self.attestations_ok


def _check_tlog(sig: CosignSignature, rule: Rule, rekor_keys: Sequence[PublicKey],
                signer_pem: bytes) -> str | None:
    """Why the signature's transparency-log proof is unacceptable under ``rule``, or None."""
    if rule.tlog is Tlog.OFF:
        return None
    if sig.bundle_json is None:
        if rule.tlog is Tlog.REQUIRED:
            return "signature has no transparency-log entry (Rekor SET) but the policy requires one"
        return None
    if not rekor_keys:
        if rule.tlog is Tlog.REQUIRED:
            raise ConfigError("the policy requires a transparency log but no Rekor key is trusted",
                              hint="add one: `safe-docker keys add rekor FILE` and list it in "
                                   "rekor_keys")
        return None
    from safedocker.signatures.rekor import verify_set

    try:
        verify_set(sig, rekor_keys, signer_pem)
    except VerificationError as e:
        return f"transparency-log entry does not verify: {e.why or e.what}"
    return None


@dataclass
class TrustContext:
    """What a rule is checked against: keys, Rekor keys, trusted roots, PKI certificates.

    Loaded lazily: a key-only policy never reads a trusted root or imports sigstore.
    """

    config: Config
    trust_roots: Callable[[str], TrustRoot]
    _pki: dict[tuple[str, ...], list[Any]] = field(default_factory=dict)

    def keys(self, names: Sequence[str]) -> list[PublicKey]:
        from safedocker.trust.keystore import load_trusted_keys

        return load_trusted_keys(self.config, names)

    def rekor_keys(self, rule: Rule) -> list[PublicKey]:
        return self.keys(self.config.rekor_keys) if rule.tlog is not Tlog.OFF else []

    def certificates(self, files: Sequence[str]) -> list[Any]:
        key = tuple(files)
        if key not in self._pki:
            from safedocker.signatures.keyless import load_certificate_file

            certs: list[Any] = []
            for name in files:
                try:
                    pem = Path(name).read_bytes()
                except OSError as e:
                    raise ConfigError(f"cannot read PKI certificates {name}",
                                      why=e.strerror or str(e)) from e
                certs += load_certificate_file(pem, name)
            self._pki[key] = certs
        return self._pki[key]


def _identity_signer(kind: str, subject: str | None, issuer: str | None) -> Signer:
    return Signer(kind, subject or "?", f"issuer {issuer}" if issuer else "")


def _check_certificate(sig: CosignSignature, digest: Digest, rule: Rule,
                       trust: TrustContext) -> tuple[Signer | None, list[str]]:
    """A `.sig` layer with a certificate: keyless (Fulcio) or a private PKI."""
    from safedocker.signatures.keyless import verify_keyless, verify_pki

    reasons = []
    for identity in rule.identities:
        if rule.pki_roots:
            result = verify_pki(sig, digest, [identity], trust.certificates(rule.pki_roots),
                                trust.certificates(rule.pki_intermediates),
                                trust.rekor_keys(rule), rule.tlog)
            kind = "pki"
        else:
            result = verify_keyless(sig, digest, [identity], trust.trust_roots(rule.trust_root),
                                    tlog=rule.tlog, claims=identity.claims or None)
            kind = "keyless"
        if result.verified:
            return _identity_signer(kind, result.subject, result.issuer), []
        reasons.append(result.reason)
    return None, reasons


def evaluate_rule(rule: Rule, ref: ImageRef, candidates: Sequence[tuple[Digest, SignatureMaterial]],
                  config: Config, trust_roots: Callable[[str], TrustRoot] | None = None,
                  ) -> RuleOutcome:
    """Which distinct trusted signers vouch for the image under ``rule``, and why others don't."""
    from safedocker.signatures.cosign import check_annotations, check_reference, verify_with_keys

    trust = TrustContext(config, trust_roots or _default_trust_roots)
    keys = trust.keys(rule.keys)
    keys_by_name = {key.name: key for key in keys}
    rekor_keys = trust.rekor_keys(rule)
    signers: dict[str, Signer] = {}
    reasons: list[str] = []

    def payload_problem(payload: SimpleSigningPayload) -> str | None:
        return check_reference(payload, ref, rule.reference.value) or check_annotations(
            payload, rule.annotations)

    for digest, material in candidates:
        signatures, skipped = material.signatures()
        reasons.extend(skipped)
        reasons.extend(material.bundle_errors)
        for sig in signatures:
            if sig.certificate_pem is not None and rule.identities:
                signer, why_not = _check_certificate(sig, digest, rule, trust)
                if signer is not None:
                    from safedocker.signatures.simplesigning import parse_payload

                    problem = payload_problem(parse_payload(sig.payload))
                    if problem is None:
                        signers[signer.identity_key] = signer
                        continue
                    why_not = [problem]
                reasons.extend(why_not)
                continue
            result = verify_with_keys(sig, keys, digest)
            if not result.verified or result.key_name is None or result.payload is None:
                reasons.append(result.reason)
                continue
            key = keys_by_name[result.key_name]
            why = payload_problem(result.payload) or _check_tlog(sig, rule, rekor_keys, key.pem)
            if why:
                reasons.append(why)
                continue
            key_signer = Signer("key", key.name, key.fingerprint)
            signers[key_signer.identity_key] = key_signer
        for raw in material.bundles:
            signer_or_reason = _check_bundle(raw, digest, rule, trust, keys,
                                             identities=rule.identities)
            if isinstance(signer_or_reason, Signer):
                signers[signer_or_reason.identity_key] = signer_or_reason
            else:
                reasons.append(signer_or_reason)

    attestations_ok = True
    for attestation in rule.attestations:
        found, why_not = _find_attestation(attestation, candidates, rule, trust)
        if not found:
            attestations_ok = False
            reasons.append(f"no verified {attestation.predicate_type} attestation"
                           + (f" ({'; '.join(why_not)})" if why_not else ""))

    if all(material.empty for _, material in candidates):
        reasons.insert(0, "no signature found")
    outcome = RuleOutcome(rule, tuple(signers.values()), tuple(reasons), attestations_ok)
    if signers and len(signers) < rule.threshold:
        reasons.append(f"{len(signers)} trusted signer(s), policy requires {rule.threshold}")
        outcome = RuleOutcome(rule, outcome.signers, tuple(reasons), attestations_ok)
    return outcome


def _check_bundle(raw: bytes, digest: Digest, rule: Rule, trust: TrustContext,
                  keys: Sequence[PublicKey], *, identities: Sequence[Identity],
                  predicate_type: str | None = None) -> Signer | str:
    from safedocker.signatures.bundle import SIGN_PREDICATE, verify_bundle

    result = verify_bundle(
        raw, digest, keys=keys, identities=identities,
        # Keyless needs the root's CAs; a key bundle's Rekor entry needs its log keys.
        trust_root=(trust.trust_roots(rule.trust_root)
                    if identities or rule.tlog is not Tlog.OFF else None),
        tlog=rule.tlog, predicate_type=predicate_type or SIGN_PREDICATE,
    )
    if not result.verified:
        return f"bundle: {result.reason}"
    if result.kind == "key":
        key = next(k for k in keys if k.name == result.key_name)
        return Signer("key", key.name, key.fingerprint)
    return _identity_signer("keyless", result.subject, result.issuer)


def _find_attestation(attestation: Attestation,
                      candidates: Sequence[tuple[Digest, SignatureMaterial]], rule: Rule,
                      trust: TrustContext) -> tuple[bool, list[str]]:
    keys = trust.keys(attestation.keys)
    reasons = []
    for digest, material in candidates:
        for raw in material.bundles:
            outcome = _check_bundle(raw, digest, rule, trust, keys,
                                    identities=attestation.identities,
                                    predicate_type=attestation.predicate_type)
            if isinstance(outcome, Signer):
                return True, []
            reasons.append(outcome)
    return False, reasons


def _default_trust_roots(name: str) -> TrustRoot:
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import trust_root

    return trust_root(paths(), name)


def needs_bundles(decision: Decision, verdict: Verdict) -> bool:
    """Whether referrers must be fetched: the `.sig` material did not satisfy the policy,
    or a rule requires an attestation (those only come as bundles)."""
    return not verdict.accepted or any(rule.attestations for rule in decision.verify_rules)


# --- the whole verification ------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    """What a reference names: the digest to pin and the platform's image manifest."""

    digest: Digest
    manifest_digest: Digest
    config_digest: Digest | None


@dataclass
class Verifier:
    """Verifies images under one configuration; one registry client per registry host.

    With a cache, what was fetched is recorded so that the next run can skip fetching
    signatures (warm path) and so that a later run without the network can decide from
    it (offline). Cached material is verified again under the current policy every time.
    """

    config: Config
    platform: str | None = None
    offline: bool = False
    cache: Cache | None = None
    trust_roots: Callable[[str], TrustRoot] | None = None  # by name; default: config dir
    _clients: dict[str, RegistryClient] = field(default_factory=dict)
    _roots: dict[str, TrustRoot] = field(default_factory=dict)

    def _trust_root(self, name: str) -> TrustRoot:
        """Each trusted root is read and parsed once per verifier, however many rules and
        passes (warm path, then bundles) ask for it."""
        if name not in self._roots:
            self._roots[name] = (self.trust_roots or _default_trust_roots)(name)
        return self._roots[name]

    def client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            from safedocker.oci.client import RegistryClient

            self._clients[registry] = RegistryClient(
                registry, insecure_registries=self.config.insecure_registries
            )
        return self._clients[registry]

    @property
    def requests_made(self) -> int:
        return sum(client.requests_made for client in self._clients.values())

    def verify(self, ref: ImageRef) -> Verdict:
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
                    return self._verify_offline(ref, decision, cause="SAFE_DOCKER_OFFLINE=1")
                try:
                    return self._verify_online(ref, decision)
                except RegistryUnavailable as e:
                    # Only a network failure falls back; a bad signature or a registry
                    # that answered with bad data is a refusal, never "offline".
                    log.info("registry unreachable (%s); deciding from the cache", e.why)
                    return self._verify_offline(ref, decision, cause=e.what, error=e)

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

    def _locate_online(self, ref: ImageRef) -> Located:
        """Resolve tag → digest from the registry (hashing the bytes ourselves)."""
        from safedocker.oci.client import ManifestNotFound
        from safedocker.oci.manifest import Manifest
        from safedocker.oci.platform import select_platform

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
        self._remember(lambda c: c.put_manifest(top.digest, top.media_type, top.raw))
        if ref.digest is None:
            self._remember(lambda c: c.record_tag(ref.name, ref.tag_or_default, top.digest))
        manifest = top
        if top.is_index:
            child = select_platform(top, self.platform)
            cached = self._recall(lambda c: c.get_manifest(child.digest))
            if cached is not None:
                manifest = Manifest.parse(cached.data, cached.media_type, digest=child.digest)
            else:
                manifest = client.get_manifest(ref.repository, child.digest)
                self._remember(lambda c: c.put_manifest(manifest.digest, manifest.media_type,
                                                        manifest.raw))
            if manifest.is_index:
                raise RegistryError(f"registry served a nested index for {ref}")
        config = manifest.config.digest if manifest.config else None
        return Located(top.digest, manifest.digest, config)

    def _gather_online(self, ref: ImageRef, located: Located, *, fresh: bool
                       ) -> tuple[list[tuple[Digest, SignatureMaterial]], bool]:
        """Signature material for the pinned digest and the platform's; whether any came
        from the cache (``fresh`` forbids that)."""
        candidates: list[tuple[Digest, SignatureMaterial]] = []
        from_cache = False
        for digest in dict.fromkeys((located.digest, located.manifest_digest)):
            material = None if fresh else self._cached_material(ref, digest)
            if material is not None:
                from_cache = True
            else:
                material = fetch_material(self.client(ref.registry), ref.repository, digest)
                self._store_material(ref, material)
            candidates.append((digest, material))
        return candidates, from_cache

    def _verify_online(self, ref: ImageRef, decision: Decision) -> Verdict:
        located = self._locate_online(ref)
        # Warm path: material cached for this very digest, re-checked under today's policy.
        # If it no longer satisfies the policy, fetch afresh: a signature may have been added.
        candidates, from_cache = self._gather_online(ref, located, fresh=False)
        verdict = self.judge(ref, decision, located, candidates)
        if not verdict.accepted and from_cache:
            candidates, _ = self._gather_online(ref, located, fresh=True)
            verdict = self.judge(ref, decision, located, candidates)
        if needs_bundles(decision, verdict) and not all(
            material.bundles_fetched for _, material in candidates
        ):
            # cosign v3 attaches sigstore bundles through OCI referrers: either kind of
            # signature may satisfy the policy, so look there before refusing.
            client = self.client(ref.registry)
            candidates = [
                (digest, material if material.bundles_fetched
                 else fetch_bundle_material(client, ref.repository, material))
                for digest, material in candidates
            ]
            for _, material in candidates:
                self._store_material(ref, material)
            verdict = self.judge(ref, decision, located, candidates)
        return verdict

    # -- offline --

    def _verify_offline(self, ref: ImageRef, decision: Decision, *, cause: str,
                        error: RegistryUnavailable | None = None) -> Verdict:
        def unusable(why: str) -> RegistryUnavailable:
            return RegistryUnavailable(
                f"cannot verify {ref}: {cause}",
                why=f"no usable offline record: {why}",
                hint="verify it once while online, or bring the material with "
                     "`safe-docker cache import` / `safe-docker load`",
            )

        if self.cache is None:
            raise error or unusable("the cache is not available")
        digest = ref.digest
        if digest is None:
            record = self._recall(lambda c: c.lookup_tag(ref.name, ref.tag_or_default))
            if record is None:
                raise unusable(f"{ref.name}:{ref.tag_or_default} was never verified here")
            digest = record.digest
        located = self._locate_cached(ref, digest)
        if located is None:
            raise unusable(f"no cached manifest for {ref.name}@{digest}")
        candidates = []
        for candidate in dict.fromkeys((located.digest, located.manifest_digest)):
            material = self._cached_material(ref, candidate)
            if material is not None:
                candidates.append((candidate, material))
        if not candidates:
            raise unusable(f"no cached signatures for {ref.name}@{digest}")
        oldest = min(material.fetched_at for _, material in candidates)
        age = time.time() - oldest
        if age > self.config.offline_max_age:
            raise unusable(
                f"cached material is {age / 86400:.1f} days old, more than offline_max_age"
            )
        return self.judge(ref, decision, located, candidates, offline=True, material_time=oldest)

    def _locate_cached(self, ref: ImageRef, digest: Digest) -> Located | None:
        from safedocker.oci.manifest import Manifest
        from safedocker.oci.platform import select_platform

        record = self._recall(lambda c: c.get_manifest(digest))
        if record is None:
            return None
        top = Manifest.parse(record.data, record.media_type, digest=digest)
        manifest = top
        if top.is_index:
            child = select_platform(top, self.platform)
            child_record = self._recall(lambda c: c.get_manifest(child.digest))
            if child_record is None:
                return None
            manifest = Manifest.parse(child_record.data, child_record.media_type,
                                      digest=child.digest)
        config = manifest.config.digest if manifest.config else None
        return Located(top.digest, manifest.digest, config)

    def _store_material(self, ref: ImageRef, material: SignatureMaterial) -> None:
        self._remember(lambda c: c.put_material(ref.name, material.digest, MATERIAL_KIND_COSIGN,
                                                material.to_bytes()))

    def _cached_material(self, ref: ImageRef, digest: Digest) -> SignatureMaterial | None:
        record = self._recall(lambda c: c.get_material(ref.name, digest, MATERIAL_KIND_COSIGN))
        if record is None:
            return None
        try:
            material = SignatureMaterial.from_bytes(record.data)
        except VerificationError:
            return None
        return material if material.digest == digest else None

    # -- cache plumbing: a broken cache never decides anything --

    def _remember(self, write: Callable[[Cache], object]) -> None:
        if self.cache is None:
            return
        try:
            write(self.cache)
        except SafeDockerError as e:
            log.warning("could not update the cache: %s", e.what)

    def _recall(self, read: Callable[[Cache], T]) -> T | None:
        if self.cache is None:
            return None
        try:
            return read(self.cache)
        except SafeDockerError as e:
            log.warning("could not read the cache: %s", e.what)
            return None

    # -- deciding --

    def judge(self, ref: ImageRef, decision: Decision, located: Located,
              candidates: Sequence[tuple[Digest, SignatureMaterial]], *,
              offline: bool = False, material_time: float | None = None) -> Verdict:
        """Apply every verify rule of ``decision`` to already-fetched material."""
        outcomes = [evaluate_rule(rule, ref, candidates, self.config, self._trust_root)
                    for rule in decision.verify_rules]
        accepted = all(outcome.satisfied for outcome in outcomes)
        signers = tuple(dict.fromkeys(s for o in outcomes for s in o.signers))
        reasons = () if accepted else tuple(
            reason for outcome in outcomes if not outcome.satisfied for reason in outcome.reasons
        )
        return Verdict(
            ref, decision, accepted=accepted, digest=located.digest,
            platform_digest=located.manifest_digest, config_digest=located.config_digest,
            signers=signers, reasons=reasons, offline=offline, material_time=material_time,
        )

    def image_config(self, verdict: Verdict) -> Mapping[str, Any] | None:
        """The image config JSON of a verified image (for GPU decisions), hash-checked.

        From the cache when it is there (always so offline), else one registry request.
        """
        digest = verdict.config_digest
        if digest is None:
            return None
        cached = self._recall(lambda c: c.get_config(digest))
        if cached is not None:
            raw = cached.data
        elif self.offline or verdict.offline:
            return None
        else:
            from safedocker.oci.media import CONFIG_MAX

            raw = self.client(verdict.ref.registry).get_blob(verdict.ref.repository, digest,
                                                             CONFIG_MAX)
            self._remember(lambda c: c.put_config(digest, raw))
        try:
            config = json.loads(raw)
        except ValueError as e:
            raise RegistryError(f"image config of {verdict.ref} is not JSON") from e
        return config if isinstance(config, dict) else None
