"""The decision about one image: who vouched (:class:`Signer`) and the :class:`Verdict`.

Made by the verifier, consumed by the hand-off, the CLI and the audit log; nobody
re-derives it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safedocker.errors import Refused
from safedocker.policy.model import Action

if TYPE_CHECKING:
    from safedocker.policy.model import Decision, Rule
    from safedocker.reference import Digest, ImageRef


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
    digest: Digest | None = None  # what the reference resolved to (an index, or a manifest)
    platform_digest: Digest | None = None  # the platform's image manifest, when known
    config_digest: Digest | None = None
    config_media_type: str | None = None  # the manifest's config: an image's, or a plugin's
    # What the accepted signatures cover: ``digest`` when the index (or the single
    # manifest) is signed, ``platform_digest`` when acceptance needed the platform child's
    # own signatures. None when no signature was involved (accept rules, refusals).
    covered: Digest | None = None
    signers: tuple[Signer, ...] = ()
    reasons: tuple[str, ...] = ()  # why not, in user words (or why only a warning)
    warned: bool = False  # accepted only because mode or `unmatched` says warn
    offline: bool = False
    decided_at: float = field(default_factory=time.time)
    material_time: float | None = None  # when the material used offline was fetched
    offline_cause: str = ""  # why offline: SAFE_DOCKER_OFFLINE=1, or the registry's failure

    @property
    def rule(self) -> Rule | None:
        return self.decision.rules[-1] if self.decision.rules else None

    @property
    def pin(self) -> Digest | None:
        """The digest docker is handed: exactly what the signatures cover, else (no
        signature involved, or refused under warn) what the reference resolved to."""
        return self.covered or self.digest

    @property
    def pinned(self) -> str | None:
        return self.ref.pinned(self.pin) if self.pin else None

    def offline_note(self) -> str:
        """The note for a decision made from the cache (printed after ``safe-docker: ``).

        Says whether the registry was contacted: not at all (SAFE_DOCKER_OFFLINE=1), or
        tried and unreachable; the time in :func:`~safedocker._internal.timefmt.stamp`'s form.
        """
        from safedocker._internal.timefmt import stamp

        cause = self.offline_cause or "registry not contacted"
        return (f"decided offline for {self.ref} from signatures cached "
                f"{stamp(self.material_time)} ({cause})")

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.ref),
            "digest": str(self.digest) if self.digest else None,
            "platform_digest": str(self.platform_digest) if self.platform_digest else None,
            "covered": str(self.covered) if self.covered else None,
            "pinned": self.pinned,
            "accepted": self.accepted,
            "warned": self.warned,
            "offline": self.offline,
            "offline_cause": self.offline_cause or None,
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

