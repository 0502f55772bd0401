"""One rule against fetched signature material: which distinct trusted signers vouch.

No registry access and no cache: the material is already fetched. Each signature is
first verified cryptographically under the rule's trust anchors (its keys, its trusted
root or private PKI, the Rekor keys) and becomes a :class:`~safedocker.verify.claims.Claim`;
:func:`safedocker.verify.claims.judge` then applies the rule's requirements to every
claim alike. Trust anchors are read lazily through :class:`TrustContext`, so a key-only
policy never reads a trusted root or imports sigstore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker.errors import ConfigError, VerificationError
from safedocker.policy.model import Rule, Tlog
from safedocker.verify.claims import Claim, ClaimFormat, judge
from safedocker.verify.verdict import Signer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from safedocker.policy.config import Anchors, Config
    from safedocker.policy.model import Attestation, Decision, Identity
    from safedocker.reference import Digest, ImageRef
    from safedocker.signatures.bundle import BundleResult
    from safedocker.signatures.cosign import CosignSignature
    from safedocker.trust.keys import PublicKey
    from safedocker.trust.roots import TrustRoot
    from safedocker.verify.material import SignatureMaterial


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    signers: tuple[Signer, ...]
    reasons: tuple[str, ...]
    attestations_ok: bool = True
    digests: tuple[Digest, ...] = ()  # what the counted signers' signatures cover

    @property
    def satisfied(self) -> bool:
        return len(self.signers) >= self.rule.threshold and self.attestations_ok


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


# --- the formats: each verified signature becomes a Claim -----------------------------


def _proof_tlog(rule: Rule) -> Tlog:
    """How the formats' checks treat a proof: a present one must verify (unless the rule
    turns the log off); whether one is required is :func:`judge`'s question."""
    return Tlog.OFF if rule.tlog is Tlog.OFF else Tlog.OPTIONAL


def _certificate_claim(sig: CosignSignature, digest: Digest, fmt: ClaimFormat, rule: Rule,
                       trust: TrustContext) -> Claim | str:
    """A layer with a certificate: keyless (Fulcio) or a private PKI."""
    from safedocker.signatures.keyless import verify_keyless, verify_pki

    if rule.pki_roots:
        result = verify_pki(sig, digest, rule.identities, trust.certificates(rule.pki_roots),
                            trust.certificates(rule.pki_intermediates),
                            trust.rekor_keys(rule), _proof_tlog(rule))
        kind = "pki"
    else:
        # Fulcio: the SET is always required (the only trusted signing time).
        result = verify_keyless(sig, digest, rule.identities, trust.root(rule.trust_root))
        kind = "keyless"
    if not result.verified or result.payload is None:
        return result.reason
    return Claim(fmt, digest, result.payload.docker_reference, result.payload.optional,
                 _identity_signer(kind, result.subject, result.issuer),
                 certificate=result.certificate, pki=kind == "pki",
                 log_entry=result.integrated_time is not None,
                 signed_time=result.integrated_time)


def _key_claim(sig: CosignSignature, digest: Digest, fmt: ClaimFormat, rule: Rule,
               keys: Sequence[PublicKey], rekor_keys: Sequence[PublicKey]) -> Claim | str:
    """A layer signed with a plain key; its Rekor SET, when present, must verify."""
    from safedocker.signatures.cosign import verify_with_keys

    result = verify_with_keys(sig, keys, digest)
    if not result.verified or result.key_name is None or result.payload is None:
        return result.reason
    key = next(k for k in keys if k.name == result.key_name)
    signed_time = None
    if rule.tlog is not Tlog.OFF and sig.bundle_json is not None:
        if not rekor_keys:
            if rule.tlog is Tlog.REQUIRED:
                raise ConfigError("the policy requires a transparency log but no Rekor key is "
                                  "trusted", hint="add one: `safe-docker keys add rekor FILE` "
                                  "and list it in rekor_keys")
        else:
            from safedocker.signatures.rekor import verify_set

            try:
                signed_time = verify_set(sig, rekor_keys, key.pem).integrated_time
            except VerificationError as e:
                return f"transparency-log entry does not verify: {e.why or e.what}"
    return Claim(fmt, digest, result.payload.docker_reference, result.payload.optional,
                 Signer("key", key.name, key.fingerprint), key_fingerprint=key.fingerprint,
                 log_entry=signed_time is not None, signed_time=signed_time)


def _statement_subject(result: BundleResult, digest: Digest) -> Mapping[str, Any]:
    """The statement's subject entry for ``digest`` (parse_statement found one)."""
    for subject in (result.statement or {}).get("subject", []):
        digests = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digests, dict) and digests.get(digest.algorithm) == digest.hex:
            return subject  # type: ignore[no-any-return]
    return {}


def _bundle_claim(raw: bytes, digest: Digest, rule: Rule, trust: TrustContext,
                  keys: Sequence[PublicKey]) -> Claim | str:
    from safedocker.signatures.bundle import SIGN_PREDICATE, verify_bundle

    result = verify_bundle(
        raw, digest, keys=keys, identities=rule.identities,
        # Keyless needs the root's CAs; a key bundle's Rekor entry needs its log keys.
        trust_root=(trust.root(rule.trust_root)
                    if rule.identities or rule.tlog is not Tlog.OFF else None),
        tlog=_proof_tlog(rule), predicate_type=SIGN_PREDICATE,
    )
    if not result.verified:
        return f"bundle: {result.reason}"
    reference: str | None = None
    annotations: Mapping[str, object] | None = None
    fmt = ClaimFormat.MESSAGE
    if result.content == "dsse":
        fmt = ClaimFormat.STATEMENT
        subject = _statement_subject(result, digest)
        name = subject.get("name")
        reference = name if isinstance(name, str) and name else None
        found = subject.get("annotations")
        annotations = found if isinstance(found, dict) else {}
    common: dict[str, Any] = {"log_entry": result.log is not None,
                              "signed_time": result.integrated_time}
    if result.kind == "key":
        key = next(k for k in keys if k.name == result.key_name)
        return Claim(fmt, digest, reference, annotations, Signer("key", key.name,
                                                                 key.fingerprint),
                     key_fingerprint=key.fingerprint, **common)
    return Claim(fmt, digest, reference, annotations,
                 _identity_signer("keyless", result.subject, result.issuer),
                 certificate=result.certificate, **common)


def gather_claims(rule: Rule, candidates: Sequence[tuple[Digest, SignatureMaterial]],
                  trust: TrustContext, keys: Sequence[PublicKey]
                  ) -> tuple[list[Claim], list[str]]:
    """Every signature in the material that verifies under the rule's anchors, as a
    claim; and why each other one does not."""
    rekor_keys = trust.rekor_keys(rule)
    claims: list[Claim] = []
    reasons: list[str] = []
    for digest, material in candidates:
        signatures, skipped = material.signatures()
        reasons.extend(skipped)
        reasons.extend(material.bundle_errors)
        for fmt, sig in signatures:
            if sig.certificate_pem is not None and rule.identities:
                found = _certificate_claim(sig, digest, fmt, rule, trust)
            else:
                found = _key_claim(sig, digest, fmt, rule, keys, rekor_keys)
            (claims.append(found) if isinstance(found, Claim) else reasons.append(found))
        for raw in material.bundles:
            found = _bundle_claim(raw, digest, rule, trust, keys)
            (claims.append(found) if isinstance(found, Claim) else reasons.append(found))
    return claims, reasons


def evaluate_rule(rule: Rule, ref: ImageRef, candidates: Sequence[tuple[Digest, SignatureMaterial]],
                  config: Config, trust_roots: Callable[[str], TrustRoot] | None = None,
                  ) -> RuleOutcome:
    """Which distinct trusted signers vouch for the image under ``rule``, and why others don't."""
    trust = TrustContext(config, trust_roots or default_trust_roots, config.anchors(rule))
    keys = trust.keys(rule.keys)
    claims, reasons = gather_claims(rule, candidates, trust, keys)
    judgement = judge(rule, ref, claims, keys)
    reasons.extend(judgement.reasons)

    attestations_ok = True
    for attestation in rule.attestations:
        found, why_not = _find_attestation(attestation, candidates, rule, trust)
        if not found:
            attestations_ok = False
            reasons.append(f"no verified {attestation.predicate_type} attestation"
                           + (f" ({'; '.join(why_not)})" if why_not else ""))

    if all(material.empty for _, material in candidates):
        reasons.insert(0, "no signature found")
    elif len(judgement.signers) < rule.threshold and (hint := trust.root_hint(rule, reasons)):
        reasons.append(hint)
    return RuleOutcome(rule, judgement.signers, tuple(reasons), attestations_ok,
                       judgement.digests)


def _check_bundle(raw: bytes, digest: Digest, rule: Rule, trust: TrustContext,
                  keys: Sequence[PublicKey], *, identities: Sequence[Identity],
                  predicate_type: str) -> Signer | str:
    from safedocker.signatures.bundle import verify_bundle

    result = verify_bundle(
        raw, digest, keys=keys, identities=identities,
        # Keyless needs the root's CAs; a key bundle's Rekor entry needs its log keys.
        trust_root=(trust.root(rule.trust_root)
                    if identities or rule.tlog is not Tlog.OFF else None),
        tlog=rule.tlog, predicate_type=predicate_type,
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


def signature_source(rule: Rule, ref: ImageRef) -> ImageRef:
    """The repository whose `.sig` tag and referrers hold ``ref``'s signatures under
    ``rule``: its ``signatures_repository`` (cosign's COSIGN_REPOSITORY), else ``ref``'s."""
    if rule.signatures_repository is None:
        return ref
    from safedocker.reference import parse_reference

    return parse_reference(rule.signatures_repository)


def signature_sources(decision: Decision, ref: ImageRef) -> dict[str, ImageRef]:
    """Every repository the decision's verify rules read signatures from, by name."""
    sources: dict[str, ImageRef] = {}
    for rule in decision.verify_rules:
        source = signature_source(rule, ref)
        sources.setdefault(source.name, source)
    return sources


def default_trust_roots(name: str) -> TrustRoot:
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import trust_root

    return trust_root(paths(), name)
