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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safedocker.errors import (
    ConfigError,
    Refused,
    RegistryError,
    RegistryUnavailable,
    SafeDockerError,
    VerificationError,
)
from safedocker.policy import Action, Decision, Rule, Tlog, Unmatched

if TYPE_CHECKING:
    from safedocker.config import Config
    from safedocker.reference import Digest, ImageRef
    from safedocker.registry import RegistryClient
    from safedocker.signatures.cosign import CosignSignature
    from safedocker.signatures.keys import PublicKey

log = logging.getLogger(__name__)

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
    """The raw bytes fetched for one digest, kept so the check can be re-done offline."""

    digest: Digest
    sig_manifest: bytes | None  # the `sha256-<hex>.sig` manifest; None: no such tag
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    fetched_at: float = field(default_factory=time.time)

    def to_bytes(self) -> bytes:
        return json.dumps({
            "digest": str(self.digest),
            "sig_manifest": _b64(self.sig_manifest),
            "blobs": {k: _b64(v) for k, v in sorted(self.blobs.items())},
            "fetched_at": self.fetched_at,
        }, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SignatureMaterial:
        """Parse cached material; everything in it is re-verified, never trusted."""
        from safedocker.reference import Digest

        try:
            obj = json.loads(data)
            blobs = {str(k): base64.b64decode(v, validate=True) for k, v in obj["blobs"].items()}
            manifest = obj["sig_manifest"]
            return cls(
                digest=Digest.parse(obj["digest"]),
                sig_manifest=None if manifest is None else base64.b64decode(manifest, validate=True),
                blobs=blobs,
                fetched_at=float(obj["fetched_at"]),
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
    from safedocker.registry import SIGNATURE_LAYER_MAX, ManifestNotFound
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


# --- checking one rule ---------------------------------------------------------------


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    signers: tuple[Signer, ...]
    reasons: tuple[str, ...]

    @property
    def satisfied(self) -> bool:
        return len(self.signers) >= self.rule.threshold


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


def evaluate_rule(rule: Rule, ref: ImageRef, candidates: Sequence[tuple[Digest, SignatureMaterial]],
                  config: Config) -> RuleOutcome:
    """Which distinct trusted signers vouch for the image under ``rule``, and why others don't."""
    from safedocker.keystore import load_trusted_keys
    from safedocker.signatures.cosign import check_annotations, check_reference, verify_with_keys

    keys = load_trusted_keys(config, rule.keys)
    keys_by_name = {key.name: key for key in keys}
    rekor_keys = load_trusted_keys(config, config.rekor_keys) if rule.tlog is not Tlog.OFF else []
    signers: dict[str, Signer] = {}
    reasons: list[str] = []
    for digest, material in candidates:
        signatures, skipped = material.signatures()
        reasons.extend(skipped)
        for sig in signatures:
            result = verify_with_keys(sig, keys, digest)
            if not result.verified or result.key_name is None or result.payload is None:
                reasons.append(result.reason)
                continue
            why = check_reference(result.payload, ref, rule.reference.value) or check_annotations(
                result.payload, rule.annotations
            )
            key = keys_by_name[result.key_name]
            why = why or _check_tlog(sig, rule, rekor_keys, key.pem)
            if why:
                reasons.append(why)
                continue
            signers[key.fingerprint] = Signer("key", key.name, key.fingerprint)
    if not any(material.sig_manifest is not None for _, material in candidates):
        reasons.insert(0, "no signature found")
    outcome = RuleOutcome(rule, tuple(signers.values()), tuple(reasons))
    if signers and not outcome.satisfied:
        reasons.append(f"{len(signers)} trusted signer(s), policy requires {rule.threshold}")
        outcome = RuleOutcome(rule, outcome.signers, tuple(reasons))
    return outcome


# --- the whole verification ------------------------------------------------------------


@dataclass
class Verifier:
    """Verifies images under one configuration; one registry client per registry host."""

    config: Config
    platform: str | None = None
    offline: bool = False
    _clients: dict[str, RegistryClient] = field(default_factory=dict)

    def client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            from safedocker.registry import RegistryClient

            self._clients[registry] = RegistryClient(
                registry, insecure_registries=self.config.insecure_registries
            )
        return self._clients[registry]

    @property
    def requests_made(self) -> int:
        return sum(client.requests_made for client in self._clients.values())

    def verify(self, ref: ImageRef) -> Verdict:
        decision = self.config.policy.decide(ref)
        action = decision.action
        if action is None:
            return self._unmatched(ref, decision)
        if action is Action.REJECT:
            rule = next(r for r in decision.rules if r.action is Action.REJECT)
            return Verdict(ref, decision, accepted=False,
                           reasons=(f"denied by policy ({rule.describe()})",))
        if action is Action.ACCEPT:
            return Verdict(ref, decision, accepted=True, digest=ref.digest)
        return self._verify_signatures(ref, decision)

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

    def _verify_signatures(self, ref: ImageRef, decision: Decision) -> Verdict:
        if self.offline:
            raise RegistryUnavailable(
                f"cannot verify {ref} offline",
                why="SAFE_DOCKER_OFFLINE=1 and no cached verification is usable",
                hint="verify it once while online, or import a cache with `safe-docker cache import`",
            )
        client = self.client(ref.registry)
        resolved = client.resolve(ref.repository, ref.digest or ref.tag_or_default, self.platform)
        candidates = [(resolved.digest, fetch_material(client, ref.repository, resolved.digest))]
        platform_digest = resolved.manifest.digest
        if platform_digest != resolved.digest:
            # A signature on the platform's own manifest counts as well as one on the index.
            candidates.append(
                (platform_digest, fetch_material(client, ref.repository, platform_digest))
            )
        return self.judge(ref, decision, resolved.digest, platform_digest, candidates,
                          config_digest=resolved.manifest.config.digest
                          if resolved.manifest.config else None)

    def judge(self, ref: ImageRef, decision: Decision, digest: Digest,
              platform_digest: Digest | None,
              candidates: Sequence[tuple[Digest, SignatureMaterial]], *,
              config_digest: Digest | None = None, offline: bool = False,
              material_time: float | None = None) -> Verdict:
        """Apply every verify rule of ``decision`` to already-fetched material."""
        outcomes = [evaluate_rule(rule, ref, candidates, self.config)
                    for rule in decision.verify_rules]
        accepted = all(outcome.satisfied for outcome in outcomes)
        signers = tuple(dict.fromkeys(s for o in outcomes for s in o.signers))
        reasons = () if accepted else tuple(
            reason for outcome in outcomes if not outcome.satisfied for reason in outcome.reasons
        )
        return Verdict(
            ref, decision, accepted=accepted, digest=digest, platform_digest=platform_digest,
            config_digest=config_digest, signers=signers, reasons=reasons, offline=offline,
            material_time=material_time,
        )

    def image_config(self, verdict: Verdict) -> Mapping[str, Any] | None:
        """The image config JSON of a verified image (for GPU decisions), hash-checked."""
        if verdict.config_digest is None or self.offline:
            return None
        from safedocker.registry import CONFIG_MAX

        raw = self.client(verdict.ref.registry).get_blob(
            verdict.ref.repository, verdict.config_digest, CONFIG_MAX
        )
        try:
            config = json.loads(raw)
        except ValueError as e:
            raise RegistryError(f"image config of {verdict.ref} is not JSON") from e
        return config if isinstance(config, dict) else None
