"""One rule against fetched signature material: which distinct trusted signers vouch.

No registry access and no cache: the material is already fetched. Trust anchors (keys,
PKI certificates, trusted roots) are read lazily through :class:`TrustContext`, so a
key-only policy never reads a trusted root or imports sigstore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker.errors import ConfigError, VerificationError
from safedocker.policy.model import Rule, Tlog
from safedocker.verify.verdict import Signer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from safedocker.policy.config import Anchors, Config
    from safedocker.policy.model import Attestation, Identity
    from safedocker.reference import Digest, ImageRef
    from safedocker.signatures.cosign import CosignSignature
    from safedocker.signatures.simplesigning import SimpleSigningPayload
    from safedocker.trust.keys import PublicKey
    from safedocker.trust.roots import TrustRoot
    from safedocker.verify.material import SignatureMaterial


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
    ``anchors`` are the rule's own (``Config.anchors``): under a lock, a system rule sees
    only system keys, system Rekor keys and system or built-in trusted roots.
    """

    config: Config
    trust_roots: Callable[[str], TrustRoot]
    anchors: Anchors | None = None  # None: every anchor of the config (no lock)
    _pki: dict[tuple[str, ...], list[Any]] = field(default_factory=dict)

    def keys(self, names: Sequence[str]) -> list[PublicKey]:
        from safedocker.trust.keystore import load_trusted_keys

        return load_trusted_keys(self.anchors or self.config, names)

    def rekor_keys(self, rule: Rule) -> list[PublicKey]:
        names = (self.anchors or self.config).rekor_keys
        return self.keys(names) if rule.tlog is not Tlog.OFF else []

    def root(self, name: str) -> TrustRoot:
        """The trusted root a rule names; for a locked system rule, never a user's."""
        if self.anchors is not None and self.anchors.system_roots_dir is not None:
            from safedocker.trust.roots import system_trust_root

            return system_trust_root(self.anchors.system_roots_dir, name)
        return self.trust_roots(name)

    def root_hint(self, rule: Rule, reasons: Sequence[str]) -> str | None:
        """When a certificate did not chain (or its log is unknown) under the rule's root:
        which root was used, and how to choose another."""
        if not rule.identities or rule.pki_roots or not any(
            marker in reason for reason in reasons for marker in _ROOT_MARKERS
        ):
            return None
        root = self.root(rule.trust_root)
        return (f"certificates were checked against trusted root {root.name!r} "
                f"({root.source}); to use another for {rule.scope}: `safe-docker policy add "
                f"{rule.scope} … --trust-root NAME` (see `safe-docker trust-root list`)")

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


# Reasons that mean "not this root": the chain, the transparency or the CT log.
_ROOT_MARKERS = ("certificate chain does not verify", "transparency-log", "Rekor", "SCT")


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
            result = verify_keyless(sig, digest, [identity], trust.root(rule.trust_root),
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

    trust = TrustContext(config, trust_roots or default_trust_roots, config.anchors(rule))
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
    elif len(signers) < rule.threshold and (hint := trust.root_hint(rule, reasons)):
        reasons.append(hint)
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
        trust_root=(trust.root(rule.trust_root)
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


def default_trust_roots(name: str) -> TrustRoot:
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import trust_root

    return trust_root(paths(), name)

