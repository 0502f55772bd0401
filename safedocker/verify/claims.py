"""One evaluation of verified signatures against a rule, whatever their format.

Every signature that verified cryptographically (a cosign ``.sig`` layer, a cosign OCI 1.1
referrer, a sigstore bundle holding an in-toto statement or a message signature) becomes
one :class:`Claim`: the digest it covers, the docker-reference it names and the
annotations it carries (``None`` where the format cannot carry them), who signed it, and
what the transparency log proved. :func:`judge` then applies a rule's identity,
reference, annotation, transparency-log and threshold requirements to all of them in one
place, so no format can skip a check another format gets. A format that cannot carry a
claim the rule requires cannot satisfy that rule.

The threshold counts distinct signers the policy lists (each listed key, each listed
identity), matched one to one with distinct actual signers: two certificates under one
identity regexp are one listed signer, and one key listed under two names is one signer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from safedocker.errors import UsageError
from safedocker.policy.model import ReferenceCheck, Tlog
from safedocker.reference import parse_reference

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from cryptography import x509

    from safedocker.policy.model import Rule
    from safedocker.reference import Digest, ImageRef
    from safedocker.trust.keys import PublicKey
    from safedocker.verify.verdict import Signer


class ClaimFormat(enum.Enum):
    """Where a signature came from; the value is how messages name it."""

    SIG_TAG = "signature"  # a layer of the `sha256-<hex>.sig` manifest
    REFERRER = "OCI 1.1 referrer signature"  # the same layer, attached as a referrer
    STATEMENT = "sigstore bundle"  # DSSE envelope around an in-toto statement
    MESSAGE = "message-signature bundle"  # a signature over the digest alone

    @property
    def carries_reference(self) -> bool:
        match self:
            case ClaimFormat.SIG_TAG | ClaimFormat.REFERRER | ClaimFormat.STATEMENT:
                return True
            case ClaimFormat.MESSAGE:
                return False

    @property
    def carries_annotations(self) -> bool:
        return self.carries_reference  # the same formats carry both


@dataclass(frozen=True)
class Claim:
    """What one cryptographically verified signature says, in any format."""

    format: ClaimFormat
    digest: Digest  # the image (or platform child) digest the signature covers
    reference: str | None  # the signed docker-reference (statement: the subject's name)
    annotations: Mapping[str, object] | None  # None: the format cannot carry them
    signer: Signer  # who actually signed: a key, or a certificate identity
    key_fingerprint: str | None = None  # key signatures: the trusted key that verified
    certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)
    pki: bool = False  # a private-PKI certificate (no Fulcio issuer needed)
    log_entry: bool = False  # a transparency-log entry verified (SET or inclusion proof)
    signed_time: datetime | None = None  # a verified signing time (SET or RFC 3161)

    @property
    def label(self) -> str:
        return self.format.value


@dataclass(frozen=True)
class Judgement:
    signers: tuple[Signer, ...]  # distinct listed signers, matched one to one
    reasons: tuple[str, ...]
    # The digests the counted signers' accepted claims cover (the index's, a platform
    # child's, or both): what the hand-off may pin.
    digests: tuple[Digest, ...] = ()


def judge(rule: Rule, ref: ImageRef, claims: Sequence[Claim],
          keys: Sequence[PublicKey]) -> Judgement:
    """THE rule check: identity, reference, annotations, transparency log, threshold."""
    reasons: list[str] = []
    vouching: dict[str, tuple[Signer, set[str]]] = {}
    covered: dict[str, list[Digest]] = {}
    for claim in claims:
        listed = listed_signers(claim, rule, keys)
        why = ((None if listed else f"signed by {claim.signer.describe()}, whom the rule "
                "does not list")
               or reference_problem(claim, ref, rule)
               or annotation_problem(claim, rule.annotations)
               or tlog_problem(claim, rule.tlog))
        if why:
            reasons.append(why if claim.format is ClaimFormat.SIG_TAG
                           else f"{claim.label}: {why}")
            continue
        _, names = vouching.setdefault(claim.signer.identity_key, (claim.signer, set()))
        names.update(listed)
        covered.setdefault(claim.signer.identity_key, []).append(claim.digest)
    signers = _one_to_one({key: names for key, (_, names) in vouching.items()})
    found = tuple(vouching[key][0] for key in signers)
    if found and len(found) < rule.threshold:
        reasons.append(f"{len(found)} trusted signer(s), policy requires {rule.threshold}")
    digests = tuple(dict.fromkeys(d for key in signers for d in covered[key]))
    return Judgement(found, tuple(reasons), digests)


def listed_signers(claim: Claim, rule: Rule, keys: Sequence[PublicKey]) -> set[str]:
    """The signers the rule lists that this claim's signer is: ``key:<n>``, ``identity:<n>``."""
    found = set()
    if claim.key_fingerprint is not None:
        by_name = {key.name: key for key in keys}
        found |= {f"key:{n}" for n, name in enumerate(rule.keys)
                  if name in by_name and by_name[name].fingerprint == claim.key_fingerprint}
    if claim.certificate is not None:
        from safedocker.signatures.keyless import matching_identities

        found |= {f"identity:{n}" for n in matching_identities(
            claim.certificate, rule.identities, require_issuer=not claim.pki)}
    return found


def _one_to_one(edges: Mapping[str, set[str]]) -> list[str]:
    """A largest matching of actual signers to listed signers (augmenting paths); the
    actual signers that are matched, in the order they were found."""
    owner: dict[str, str] = {}  # listed signer -> actual signer

    def assign(actual: str, seen: set[str]) -> bool:
        for listed in sorted(edges[actual]):
            if listed in seen:
                continue
            seen.add(listed)
            if listed not in owner or assign(owner[listed], seen):
                owner[listed] = actual
                return True
        return False

    for actual in edges:
        assign(actual, set())
    matched = set(owner.values())
    return [actual for actual in edges if actual in matched]


def reference_problem(claim: Claim, ref: ImageRef, rule: Rule) -> str | None:
    """Why the signed docker-reference does not fit the pulled ``ref`` under ``rule``."""
    identity = rule.signed_identity
    fixed = identity.exact_reference or identity.exact_repository
    if rule.reference is ReferenceCheck.DIGEST and fixed is None:
        return None
    if claim.reference is None:
        # A bundle from cosign v3 names no repository: nothing to compare unless the rule
        # requires a name; a message signature cannot name one at all.
        if fixed is None and rule.reference is ReferenceCheck.REPOSITORY:
            return None
        wanted = fixed or f"reference = {rule.reference.value!r}"
        lacks = ("it cannot carry a signed docker-reference" if not
                 claim.format.carries_reference else "it names no docker-reference")
        return f"{lacks}, and the rule requires one ({wanted})"
    try:
        signed = parse_reference(claim.reference)
    except UsageError:
        return f"signed docker-reference {claim.reference!r} is not a valid reference"
    if identity.exact_reference is not None:
        if str(signed) != identity.exact_reference:
            return f"signature is for {signed}, the rule requires exactly " \
                   f"{identity.exact_reference}"
        return None
    if identity.exact_repository is not None:
        if signed.name != identity.exact_repository:
            return f"signature is for {signed.name}, the rule requires " \
                   f"{identity.exact_repository}"
        return None
    if signed.name != ref.name and not any(remap.allows(ref.name, signed.name)
                                           for remap in identity.remaps):
        also = f" (nor {identity.describe()})" if identity.remaps else ""
        return f"signature is for {signed.name}, not {ref.name}{also}"
    if rule.reference is ReferenceCheck.REPOSITORY:
        return None
    wanted_ref = ref if ref.tag or ref.digest else ref.with_tag("latest")
    if (signed.tag, signed.digest) != (wanted_ref.tag, wanted_ref.digest):
        return f"signature is for {signed}, not {wanted_ref}"
    return None


def annotation_problem(claim: Claim, required: Mapping[str, str]) -> str | None:
    """Why the claim lacks a required ``key=value`` annotation, or None."""
    if not required:
        return None
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(required.items()))
    if claim.annotations is None:
        return f"it cannot carry annotations, and the rule requires {wanted}"
    for key, value in sorted(required.items()):
        found = claim.annotations.get(key)
        if found is None:
            return f"signature lacks required annotation {key}={value}"
        # cosign compares JSON values; a number 1 is not the string "1".
        if found != value or not isinstance(found, str):
            return f"signature annotation {key} is {found!r}, not {value!r}"
    return None


def tlog_problem(claim: Claim, tlog: Tlog) -> str | None:
    """Why the claim's transparency-log proof does not meet ``tlog``, or None. A proof
    that is present and wrong was refused before: the formats' checks verify it."""
    match tlog:
        case Tlog.OFF | Tlog.OPTIONAL:
            return None
        case Tlog.REQUIRED:
            if not claim.log_entry:
                return f"{claim.label} has no transparency-log entry (Rekor SET or " \
                       "inclusion proof) but the policy requires one"
            if claim.signed_time is None:
                return "the policy requires a transparency log, and the log entry has no " \
                       "signed time: no SET and no RFC 3161 timestamp (a Rekor v2 entry " \
                       "needs one)"
            return None
