"""Fakes of what the gate talks to (the daemon, verification, the audit log), each
conforming to the gate's Protocols (checked by mypy below)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any

from safedocker._docker.engine import (
    DockerEngine,
    EngineInfo,
    LocalImage,
    ServerPlatform,
)
from safedocker.errors import RegistryUnavailable, SafeDockerError
from safedocker.gate.decide import AuditSink, Gate, ImageVerifier
from safedocker.policy.config import Config
from safedocker.policy.model import Action, Decision, Mode, Rule, Unmatched
from safedocker.reference import Digest, ImageRef, parse_reference
from safedocker.verify.verdict import Verdict

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from safedocker.cache.store import TagRecord
    from safedocker.oci.platform import PlatformChoice

REG = "127.0.0.1:5000"
INDEX = Digest.of(b"index")
CHILD = Digest.of(b"child")
OTHER = Digest.of(b"other")
CONFIG = Digest.of(b"config")
UNSIGNED_ID = Digest.of(b"unsigned config")


def verdict(ref: ImageRef | str, *, accepted: bool = True, covered: Digest | None = INDEX,
            digest: Digest | None = INDEX, reasons: tuple[str, ...] = (),
            action: Action = Action.VERIFY, offline: bool = False,
            config: Digest | None = CONFIG, warned: bool = False) -> Verdict:
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    rule = Rule(scope=f"{REG}/*", action=action, keys=("k",))
    return Verdict(ref, Decision(ref, (rule,), Unmatched.REJECT), accepted=accepted,
                   digest=digest, platform_digest=CHILD, config_digest=config,
                   covered=covered if accepted else None, reasons=reasons, offline=offline,
                   material_time=1_700_000_000.0 if offline else None, warned=warned)


@dataclass
class FakeEngine:
    """A daemon with ``images`` (reference or ID → LocalImage) on ``platform``."""

    images: dict[str, LocalImage] = field(default_factory=dict)
    platform: ServerPlatform = ServerPlatform("linux", "amd64")
    asked: list[str] = field(default_factory=list)

    def image_id(self, reference: str) -> str | None:
        self.asked.append(f"image_id {reference}")
        found = self.images.get(reference)
        return found.id if found else None

    def inspect_image(self, reference: str, *, config: bool = False) -> LocalImage | None:
        self.asked.append(f"inspect {reference}")
        found = self.images.get(reference)
        # As the CLI engine: the run config only to who asks for it.
        return found if found is None or config else replace(found, config=None)

    def server_platform(self) -> ServerPlatform:
        self.asked.append("platform")
        return self.platform

    def info(self) -> EngineInfo:
        raise AssertionError("not asked by the gate")

    def tag(self, source: str, target: str) -> None:
        raise AssertionError("the gate never changes docker")

    def pull(self, reference: str) -> None:
        raise AssertionError("the gate never changes docker")

    def save(self, output: Path, images: Sequence[str]) -> None:
        raise AssertionError("the gate never changes docker")

    def load(self, archive: Path | IO[bytes]) -> None:
        raise AssertionError("the gate never changes docker")

    def server_version(self) -> str:
        raise AssertionError("not asked by the gate")


@dataclass
class FakeVerifier:
    """Answers from ``verdicts`` (by ``str(ref)``), raising the errors it holds."""

    verdicts: dict[str, Verdict | SafeDockerError] = field(default_factory=dict)
    verified_tags: dict[str, TagRecord] = field(default_factory=dict)
    asked: list[tuple[str, PlatformChoice | None]] = field(default_factory=list)
    resolved: dict[str, Verdict | SafeDockerError] = field(default_factory=dict)
    cached: dict[str, Verdict] = field(default_factory=dict)  # decided from cached material

    def verify(self, ref: ImageRef, platform: PlatformChoice | None = None) -> Verdict:
        self.asked.append((str(ref), platform))
        answer = self.verdicts[str(ref)]
        if isinstance(answer, SafeDockerError):
            raise answer
        return answer

    def verify_cached(self, ref: ImageRef, platform: PlatformChoice | None,
                      error: RegistryUnavailable) -> Verdict:
        """``cached`` by ``str(ref)``; else, as the real verifier, no usable record: the
        registry's error with why and hint kept."""
        self.asked.append((f"cached {ref}", platform))
        found = self.cached.get(str(ref))
        if found is None:
            raise RegistryUnavailable(f"cannot verify {ref}: {error.what}",
                                      why=f"{error.why}; no usable offline record",
                                      hint=error.hint)
        return found

    def last_verified(self, ref: ImageRef) -> TagRecord | None:
        return self.verified_tags.get(f"{ref.name}:{ref.tag_or_default}")

    def image_config(self, verdict: Verdict) -> Mapping[str, Any] | None:
        return None

    def resolve(self, verdict: Verdict, platform: PlatformChoice | None = None) -> Verdict:
        """What a name accepted without a digest resolves to: ``resolved`` by
        ``str(ref)``, else INDEX/CHILD/CONFIG."""
        self.asked.append((f"resolve {verdict.ref}", platform))
        answer = self.resolved.get(str(verdict.ref))
        if isinstance(answer, SafeDockerError):
            raise answer
        return answer or replace(verdict, digest=INDEX, platform_digest=CHILD,
                                 config_digest=CONFIG)


@dataclass
class ListAudit:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, command: Sequence[str], verdict: Verdict | None, outcome: str,
               error: SafeDockerError | None = None, target: str | None = None) -> None:
        self.entries.append({"command": list(command), "outcome": outcome, "target": target,
                             "reference": str(verdict.ref) if verdict else None,
                             "error": error.line() if error else None})


@dataclass
class World:
    """One gate over fakes, and what it printed."""

    engine: FakeEngine = field(default_factory=FakeEngine)
    verifier: FakeVerifier = field(default_factory=FakeVerifier)
    audit: ListAudit = field(default_factory=ListAudit)
    stderr: io.StringIO = field(default_factory=io.StringIO)
    mode: Mode = Mode.ENFORCE
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def gate(self) -> Gate:
        return Gate(Config(mode=self.mode), self.engine, self.verifier, self.audit,
                    environ=self.environ, stderr=self.stderr)

    @property
    def lines(self) -> list[str]:
        return self.stderr.getvalue().splitlines()


# The fakes are what the gate's Protocols say (checked by mypy).
_engine: DockerEngine = FakeEngine()
_verifier: ImageVerifier = FakeVerifier()
_audit: AuditSink = ListAudit()
