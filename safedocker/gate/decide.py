"""THE gate: the one decision about every image that docker is about to bring to life.

Every path that pulls, creates or runs an image (``run``, ``create``, ``pull``,
``compose``; later ``build``, swarm services and plugins) turns what the user named into
an :class:`ImageRequest` and asks :meth:`Gate.admit` (or :meth:`Gate.admit_all` for a
command with several images). The gate

* applies the mode (``enforce``/``warn``/``off``, from the combined config, a locked
  system policy included): in enforce mode a refusal raises; in warn mode it prints ONE
  line ``safe-docker: warning: <what> — <why> (continuing: mode = warn)`` and goes on;
  with ``off`` nothing is decided or recorded;
* reads IMAGE as docker does: a full image ID (``sha256:<64 hex>``, 64 hex) or a hex word
  docker resolves as an ID prefix is a *local image*, accepted only when its ID is the
  config digest of an image verified under today's policy;
* verifies, for the platform docker will pull (``--platform``, else
  ``DOCKER_DEFAULT_PLATFORM``, else the daemon's own, asked through the engine);
* records one audit entry per image;
* returns the :class:`Admission`: the exact string to hand docker in place of IMAGE
  (``repo@<the digest the accepted signatures cover>``, a full image ID, or — accepted
  without a digest — the canonical ``docker.io/library/x:tag``, never an ID-like word),
  whether docker already has it, and the tag docker would have left.

Callers turn admissions into docker commands (gate/intercept.py, gate/compose.py); they
never decide, print warnings or write the audit log themselves.
"""

from __future__ import annotations

import enum
import re
import sys
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from safedocker._internal.timefmt import stamp
from safedocker.errors import Refused, RegistryTimedOut, RegistryUnavailable, SafeDockerError
from safedocker.policy.model import Mode
from safedocker.reference import Digest, ImageRef, parse_any_reference, parse_reference

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path
    from typing import TextIO

    from safedocker._docker.engine import DockerEngine, LocalImage
    from safedocker.cache.store import TagRecord
    from safedocker.oci.platform import Platform, PlatformChoice
    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths
    from safedocker.verify.verdict import Verdict

_T = TypeVar("_T")
_R = TypeVar("_R")

DEFAULT_PLATFORM = "DOCKER_DEFAULT_PLATFORM"  # docker's own variable, read as the CLI does
# A word docker may resolve as a local image ID prefix (when no image has it as a name).
_ID_PREFIX = re.compile(r"(?:sha256:)?[0-9a-f]{1,64}", re.ASCII)
_ID_CANDIDATES_MAX = 8  # names of one local image tried when it is named by ID
# Images of one command verified side by side (compose services, a stack, a build's
# stages): registry round trips overlap, the registry sees a handful at once at most.
VERIFY_WORKERS = 4


class Origin(enum.Enum):
    """Which docker path asks: decides what IMAGE may mean (IDs) and which checks apply."""

    RUN = "run"
    CREATE = "create"
    PULL = "pull"
    COMPOSE = "compose"
    BUILD = "build"
    SERVICE = "service"
    PLUGIN = "plugin"

    @property
    def reads_ids(self) -> bool:
        """Whether docker reads IMAGE here as a local image ID too.

        Not for pulls, not for plugins (docker parses their references as names only),
        and not for builds: BuildKit's FROM takes no image ID at all, and the legacy
        builder is handed the pinned ``repo@digest`` (or the canonical
        ``registry/repo:tag``) in place of the word, which it can never read as an ID
        prefix; a ``sha256:`` word in a Dockerfile is refused before it gets here.
        """
        return self not in (Origin.PULL, Origin.BUILD, Origin.PLUGIN)


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # verified, or allowed by a policy rule
    WARNED = "warned"  # not verified; continuing because mode (or `unmatched`) = warn
    UNCHECKED = "unchecked"  # mode = off: nothing decided, nothing recorded


@dataclass(frozen=True)
class ImageRequest:
    """One image a docker command names, read as docker reads it.

    ``subject``: a reference, or (a :class:`Digest`) a local image by its full ID.
    ``may_be_id``: a hex word that docker resolves as a local image ID prefix when no local
    image has it as a name. ``platform``: the explicit platform (``--platform``, compose's
    ``platform:``); None means ``DOCKER_DEFAULT_PLATFORM``, else the daemon's.
    ``label``: what the image is in the command (``service 'app'``), for messages.
    """

    command: tuple[str, ...]  # the user's command line, for the audit log
    text: str  # IMAGE as the user wrote it
    subject: ImageRef | Digest
    origin: Origin
    platform: str | None = None
    may_be_id: bool = False
    label: str = ""

    @classmethod
    def parse(cls, text: str, *, command: Sequence[str], origin: Origin,
              platform: str | None = None, label: str = "") -> ImageRequest:
        """Read IMAGE as docker does for ``origin``; a bad reference is a UsageError (2)."""
        subject: ImageRef | Digest = (parse_any_reference(text) if origin.reads_ids
                                      else parse_reference(text))
        may_be_id = (origin.reads_ids and isinstance(subject, ImageRef)
                     and _ID_PREFIX.fullmatch(text) is not None)
        return cls(tuple(command), text, subject, origin, platform or None, may_be_id, label)

    @property
    def ref(self) -> ImageRef | None:
        return self.subject if isinstance(self.subject, ImageRef) else None


@dataclass(frozen=True)
class Admission:
    """What the gate decided for one request, and exactly what docker gets.

    ``target``: the IMAGE to hand docker: ``repo@sha256:…`` (what the accepted signatures
    cover; under warn, the digest resolved), ``sha256:<id>`` (a verified local image), or
    the canonical ``registry/repo:tag`` of an image accepted without a digest; the user's
    text only when unchecked (mode = off). ``present_locally``: docker has ``target``
    already (asked offline and for run/create; False when not asked). ``tag``: the
    ``repo:tag`` to leave on the image, as ``pull repo:tag`` and ``run repo:tag`` do;
    None when the user named a digest or an ID, or docker already has that tag on exactly
    ``target``. ``notes``: the lines the gate printed.
    """

    request: ImageRequest
    outcome: Outcome
    target: str
    verdict: Verdict | None = None
    present_locally: bool = False
    tag: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        """``target`` names content (a digest or an image ID), not a moving tag."""
        return "@" in self.target or self.target.startswith("sha256:")

    @property
    def local_id(self) -> bool:
        """``target`` is an image ID: docker must not try to pull it."""
        return self.target.startswith("sha256:")

    @property
    def offline(self) -> bool:
        return self.verdict is not None and self.verdict.offline


class ImageVerifier(Protocol):
    """What the gate needs from verification (verify/verifier.py's Verifier)."""

    def verify(self, ref: ImageRef, platform: PlatformChoice | None = None) -> Verdict: ...

    def verify_cached(self, ref: ImageRef, platform: PlatformChoice | None,
                      error: RegistryUnavailable) -> Verdict:
        """The verdict from cached material alone, as verify() decides when the registry
        fails with ``error``; raises as verify() would then."""
        ...

    def last_verified(self, ref: ImageRef) -> TagRecord | None:
        """The digest ``ref``'s tag had when it was last accepted here, if known."""
        ...

    def image_config(self, verdict: Verdict) -> Mapping[str, Any] | None: ...

    def resolve(self, verdict: Verdict, platform: PlatformChoice | None = None) -> Verdict:
        """An image accepted without a digest, with the digests its name resolves to now."""
        ...


class AuditSink(Protocol):
    """Where decisions are recorded (audit.py's log; a list in tests)."""

    def record(self, command: Sequence[str], verdict: Verdict | None, outcome: str,
               error: SafeDockerError | None = None, target: str | None = None) -> None: ...


@dataclass(frozen=True)
class StateAudit:
    """The audit log under the state dir."""

    state_dir: Path

    def record(self, command: Sequence[str], verdict: Verdict | None, outcome: str,
               error: SafeDockerError | None = None, target: str | None = None) -> None:
        from safedocker.audit import record_decision

        record_decision(self.state_dir, command, verdict, outcome, error, target=target)


@dataclass
class _Refusal:
    """A decision not to admit: the error to raise (enforce) or warn about."""

    error: SafeDockerError
    verdict: Verdict | None = None


class Gate:
    """Decides, verifies, records and names what docker gets; one per docker command.

    ``engine``: the daemon the command talks to (its -H/--context), asked for local images
    and its platform. ``verifier``: verification under ``config``. ``audit``: where each
    decision is recorded. ``environ``: the command's environment (DOCKER_DEFAULT_PLATFORM).
    ``stderr``: where warnings and notes go.
    """

    def __init__(self, config: Config, engine: DockerEngine, verifier: ImageVerifier,
                 audit: AuditSink, *, environ: Mapping[str, str] | None = None,
                 stderr: TextIO | None = None) -> None:
        import os

        self.config = config
        self.engine = engine
        self.verifier = verifier
        self.audit = audit
        self.environ = os.environ if environ is None else environ
        self._stderr = stderr
        self._daemon: Platform | None = None
        self._daemon_lock = threading.Lock()  # asked from the verification workers too

    @classmethod
    def open(cls, engine: DockerEngine, *, config: Config | None = None,
             where: Paths | None = None, docker_config: str | None = None,
             environ: Mapping[str, str] | None = None) -> Gate:
        """The gate with the real verifier (cache, offline switch) and audit log."""
        from safedocker._internal import environment
        from safedocker.cache.store import open_best_effort
        from safedocker.policy.config import load_config
        from safedocker.policy.paths import paths
        from safedocker.verify.verifier import Verifier

        where = where or paths(environ)
        config = config or load_config(where)
        verifier = Verifier(config, offline=environment.offline(environ),
                            cache=open_best_effort(where.cache_dir),
                            docker_config_dir=docker_config)
        return cls(config, engine, verifier, StateAudit(where.state_dir), environ=environ)

    @property
    def mode(self) -> Mode:
        return self.config.mode

    # --- the decisions -------------------------------------------------------------------

    def admit(self, request: ImageRequest, *,
              check: Callable[[Admission], None] | None = None) -> Admission:
        """Decide ``request``: the admission, or raise the refusal (enforce mode).

        ``check``: the caller's own requirement of an admitted image (GPU requirements):
        an error it raises is recorded as a refusal and raised in every mode, since it is
        not the policy's to waive.
        """
        return self._admit(request, check, None)

    def admit_all(self, requests: Iterable[ImageRequest], *,
                  check: Callable[[Admission], None] | None = None) -> tuple[Admission, ...]:
        """Decide every image of one command, all or nothing: each image is decided and
        recorded, then (enforce mode) the first refusal is raised, before the caller has
        created anything.

        The registry work is done first, side by side (:meth:`_verify_ahead`); the
        decisions, their lines and audit records then follow in the order of
        ``requests``, as if each had been verified in turn."""
        requests = tuple(requests)
        ahead = self._verify_ahead(requests) if self.mode is not Mode.OFF else {}
        admitted: list[Admission] = []
        first: SafeDockerError | None = None
        for request in requests:
            key = _ahead_key(request)
            try:
                admitted.append(self._admit(request, check,
                                            ahead.get(key) if key is not None else None))
            except SafeDockerError as error:  # noqa: PERF203 - one refusal must not stop the rest
                first = first or error
        if first is not None:
            raise first
        return tuple(admitted)

    def _admit(self, request: ImageRequest, check: Callable[[Admission], None] | None,
               verified: Verdict | SafeDockerError | None) -> Admission:
        if self.mode is Mode.OFF:
            return Admission(request, Outcome.UNCHECKED, request.text)
        decided = self._decide(request, verified)
        if isinstance(decided, _Refusal):
            return self._refused(request, decided)
        if check is not None:
            try:
                check(decided)
            except SafeDockerError as error:
                self._record(request, decided.verdict, "refused", error, decided.target)
                raise
        self._record(request, decided.verdict, decided.outcome.value, None, decided.target)
        return decided

    def _verify_ahead(self, requests: Sequence[ImageRequest]
                      ) -> dict[tuple[str, str | None], Verdict | SafeDockerError]:
        """The verdict (or the error) of every distinct image named by reference, verified
        at most :data:`VERIFY_WORKERS` at a time through the one verifier (one registry
        session and token cache per registry). The whole set, one image alone included, has
        one deadline: the config's ``registry_timeout`` for each wave of that many."""
        firsts: dict[tuple[str, str | None], ImageRequest] = {}
        for request in requests:
            key = _ahead_key(request)
            if key is not None:
                firsts.setdefault(key, request)
        if not firsts:
            return {}

        def verify(request: ImageRequest) -> Verdict:
            ref = request.subject
            assert isinstance(ref, ImageRef)  # noqa: S101 - _ahead_key admits references only
            return self.verifier.verify(ref, self._platform(request))

        answers = self._side_by_side(verify, list(firsts.values()),
                                     [r.ref.registry if r.ref else "" for r in firsts.values()])
        # An image the set's deadline cut short is decided from its cached material, as one
        # image alone is when its registry does not answer in time.
        return {key: self._cached(request, answer) if isinstance(answer, RegistryTimedOut)
                else answer for (key, request), answer in zip(firsts.items(), answers,
                                                               strict=True)}

    def _cached(self, request: ImageRequest, timed_out: RegistryTimedOut
                ) -> Verdict | SafeDockerError:
        ref = request.subject
        assert isinstance(ref, ImageRef)  # noqa: S101 - _ahead_key admits references only
        try:
            return self.verifier.verify_cached(ref, self._platform(request), timed_out)
        except SafeDockerError as error:
            return error

    def image_config(self, verdict: Verdict) -> Mapping[str, Any] | None:
        """The image config of an accepted image, for GPU decisions: the verifier's
        (hash-checked). For one decided offline whose config the cache does not hold, the
        run config of docker's image whose ID is the verified config's digest (docker
        names an image by its config's hash), asked by that ID: pulled (under the pinned
        name too) or loaded (by ID only); None when neither is known."""
        found = self.verifier.image_config(verdict)
        if found is not None or not verdict.offline or verdict.config_digest is None:
            return found
        image_id = str(verdict.config_digest)
        local = self.engine.inspect_image(image_id, config=True)
        if local is None or local.id != image_id or local.config is None:
            return None
        return {"config": dict(local.config)}

    def image_configs(self, admissions: Sequence[Admission]
                      ) -> list[Mapping[str, Any] | None | SafeDockerError]:
        """The image configs of admitted images (a build's bases: their ONBUILD triggers),
        read side by side as their verification was; what reading one raised stands in
        its place, for the caller to raise in its own order. None: not known (accepted
        without a digest)."""
        def config(admission: Admission) -> Mapping[str, Any] | None:
            verdict = admission.verdict
            if verdict is None or verdict.config_digest is None:
                return None
            return self.verifier.image_config(verdict)

        registries = [a.request.ref.registry if a.request.ref else "" for a in admissions]
        return self._side_by_side(config, admissions, registries)

    def _side_by_side(self, work: Callable[[_T], _R], items: Sequence[_T],
                      registries: Sequence[str]) -> list[_R | SafeDockerError]:
        """``work`` over ``items`` at most :data:`VERIFY_WORKERS` at a time, the answers
        (or the errors) in the order of ``items``. The whole set has one deadline: the
        config's ``registry_timeout`` for each wave of that many."""
        from safedocker._internal.deadline import Deadline
        from safedocker._internal.pool import Done, bounded_map
        from safedocker.oci.transport import TIMEOUT_HINT

        waves = -(-len(items) // VERIFY_WORKERS)
        setting = "registry_timeout" + (f", {len(items)} images" if len(items) > 1 else "")
        deadline = Deadline.after(self.config.registry_timeout * waves, setting=setting)
        found: list[_R | SafeDockerError] = []
        answers = bounded_map(work, items, workers=VERIFY_WORKERS, deadline=deadline,
                              name="safe-docker verify")
        for registry, answer in zip(registries, answers, strict=True):
            if isinstance(answer, Done):
                found.append(answer.value)
            elif isinstance(answer.error, SafeDockerError):
                found.append(answer.error)
            elif isinstance(answer.error, TimeoutError):
                found.append(RegistryTimedOut(f"{registry} timed out",
                                              why=f"no complete answer {deadline.describe()}",
                                              hint=TIMEOUT_HINT))
            else:
                raise answer.error
        return found

    def refuse(self, command: Sequence[str], error: SafeDockerError) -> None:
        """A refusal that names no image (``pull --all-tags``, a compose build): raised in
        enforce mode, one warning line in warn mode; recorded either way."""
        if self.mode is Mode.OFF:
            return
        enforce = self.mode is Mode.ENFORCE
        self.audit.record(command, None, "refused" if enforce else "warned", error)
        if enforce:
            raise error
        self._warn(error)

    # --- how one request is decided ------------------------------------------------------

    def _decide(self, request: ImageRequest,
                verified: Verdict | SafeDockerError | None = None) -> Admission | _Refusal:
        if isinstance(request.subject, Digest):
            return self._decide_id(request, request.subject)
        ref = request.subject
        if request.may_be_id:
            local = self.engine.inspect_image(request.text)
            if local is not None and not _named(local, ref):
                return self._decide_id(request, Digest.parse(local.id))
        if isinstance(verified, SafeDockerError):
            return _Refusal(_own(verified))
        try:
            verdict = (verified if verified is not None
                       else self.verifier.verify(ref, self._platform(request)))
        except SafeDockerError as error:
            return _Refusal(error)
        if not verdict.accepted:
            return _Refusal(self._explain(ref, verdict), verdict)
        mismatch = _kind_mismatch(request, verdict)
        if mismatch is not None:
            return _Refusal(mismatch, verdict)
        notes: list[str] = []
        if verdict.warned:
            notes.append(self._say(
                f"warning: {ref} is not verified \u2014 {'; '.join(verdict.reasons)} "
                "(continuing: unmatched = warn)"))
        outcome = Outcome.WARNED if verdict.warned else Outcome.ACCEPTED
        if verdict.pin is None:
            # Allowed without a digest: the canonical name, which docker never reads as an
            # image ID (a bare hex word could be one).
            return Admission(request, outcome, ref.tagged, verdict, notes=tuple(notes))
        target = ref.pinned(verdict.pin)
        present, tag = False, _tag_of(ref, target)
        if verdict.offline or request.origin in (Origin.RUN, Origin.CREATE):
            local = self.engine.inspect_image(target)
            present = local is not None
            if local is not None and _named(local, ref):
                tag = None  # docker already has the tag on exactly this image
        if verdict.offline:
            notes.append(self._say(verdict.offline_note()))
            if not present:
                loaded = self._loaded_id(verdict)
                if loaded is None:
                    return _Refusal(RegistryUnavailable(
                        f"cannot run {ref} offline",
                        why=f"verified from the cache, but docker has no local copy of {target}",
                        hint="pull it while online, or bring it with `safe-docker airgap save` "
                             "and `airgap load`"),
                        verdict)
                target, present, tag = loaded, True, None
        return Admission(request, outcome, target, verdict, present, tag, tuple(notes))

    def _decide_id(self, request: ImageRequest, image_id: Digest) -> Admission | _Refusal:
        """A local image named by ID: accepted only if it is the config of an image
        verified under today's policy (pulled verified before, or loaded by `load`)."""
        local = self.engine.inspect_image(str(image_id))
        shown = f"image {request.text}" if request.text == str(image_id) else \
            f"image {request.text} ({image_id})"
        hint = "run it by name (repository:tag or repository@sha256:…) so it can be verified"
        if local is None or local.id != str(image_id):
            return _Refusal(Refused(f"refused {shown}", why="docker has no such local image",
                                    hint=hint))
        reasons: list[str] = []
        refused: Verdict | None = None
        for candidate in self._id_candidates(local):
            try:
                verdict = self.verifier.verify(candidate, self._platform(request))
            except SafeDockerError as error:
                reasons.append(error.line().removeprefix("safe-docker: "))
                continue
            if verdict.accepted and not verdict.warned and verdict.covered is not None \
                    and verdict.config_digest == image_id:
                return Admission(request, Outcome.ACCEPTED, str(image_id), verdict,
                                 present_locally=True)
            refused = refused or verdict
            reasons.extend(verdict.reasons or (f"{candidate} is another image",))
        why = f"{image_id} is not the image of any reference verified under the policy"
        if reasons:
            why += f" ({reasons[0]})"
        return _Refusal(Refused(f"refused {shown}", why=why, hint=hint), refused)

    def _id_candidates(self, local: LocalImage) -> list[ImageRef]:
        """References that may have verified this image: docker's repo digests, and its
        tags at the digest they had when last verified here (the names only point: the
        ID must still equal the verified config digest)."""
        found = [ref for ref in map(_reference, local.repo_digests) if ref is not None]
        for ref in map(_reference, local.repo_tags):
            record = self.verifier.last_verified(ref) if ref is not None else None
            if ref is not None and record is not None:
                found.append(ImageRef(ref.registry, ref.repository, ref.tag, record.digest))
        return list(dict.fromkeys(r for r in found if r.digest is not None))[:_ID_CANDIDATES_MAX]

    def _loaded_id(self, verdict: Verdict) -> str | None:
        """``sha256:<config>`` when docker has exactly the verified image by ID only (after
        `docker load` it has no repo digest, and refuses to tag repo@digest)."""
        if verdict.config_digest is None:
            return None
        image_id = str(verdict.config_digest)
        return image_id if self.engine.image_id(image_id) == image_id else None

    def _explain(self, ref: ImageRef, verdict: Verdict) -> SafeDockerError:
        """The refusal, naming the digest a moved tag had when it was last verified."""
        error = verdict.refusal()
        record = self.verifier.last_verified(ref) if ref.digest is None else None
        if record is not None and verdict.digest is not None and record.digest != verdict.digest:
            error.why += (f"; {ref.name}:{ref.tag_or_default} moved: it was {record.digest} "
                          f"when verified {stamp(record.seen_at)}")
            error.hint = (f"the verified image is {ref.name}@{record.digest}; ask the "
                          "publisher to sign the new one")
        return error

    def _refused(self, request: ImageRequest, refusal: _Refusal) -> Admission:
        error, verdict = refusal.error, refusal.verdict
        if request.label:
            error.what = f"{error.what} ({request.label})"
        enforce = self.mode is Mode.ENFORCE
        target = self._warn_target(request, verdict)
        self._record(request, verdict, "refused" if enforce else "warned", error,
                     None if enforce else target)
        if enforce:
            raise error
        note = self._warn(error)
        ref = request.ref
        present, tag = False, _tag_of(ref, target)
        if request.origin in (Origin.RUN, Origin.CREATE) and "@" in target:
            local = self.engine.inspect_image(target)
            present = local is not None
            if local is not None and ref is not None and _named(local, ref):
                tag = None
        return Admission(request, Outcome.WARNED, target, verdict, present, tag, (note,))

    def _warn_target(self, request: ImageRequest, verdict: Verdict | None) -> str:
        """Under warn mode: the digest that was resolved, else the canonical name."""
        if isinstance(request.subject, Digest):
            return str(request.subject)
        ref = request.subject
        if verdict is not None and verdict.pin is not None:
            return ref.pinned(verdict.pin)
        if request.may_be_id and _ID_PREFIX.fullmatch(request.text):
            local = self.engine.inspect_image(request.text)
            if local is not None and not _named(local, ref):
                return local.id  # what docker itself would have run
        return ref.pinned(ref.digest) if ref.digest else ref.tagged

    # --- helpers -------------------------------------------------------------------------

    def _platform(self, request: ImageRequest) -> PlatformChoice:
        from safedocker.oci.platform import PlatformChoice

        explicit = request.platform or self.environ.get(DEFAULT_PLATFORM) or None
        return PlatformChoice(explicit, self._daemon_platform)

    def resolve(self, admission: Admission) -> Admission:
        """An image accepted without a digest, pinned to what its name resolves to now
        (a build must see what it holds: its ONBUILD triggers name other images)."""
        verdict = admission.verdict
        if verdict is None or verdict.config_digest is not None or admission.local_id:
            return admission
        resolved = self.verifier.resolve(verdict, self._platform(admission.request))
        if resolved.digest is None:
            return admission
        return replace(admission, target=resolved.ref.pinned(resolved.digest),
                       verdict=resolved)

    def resolve_all(self, admissions: Sequence[Admission]) -> list[Admission | SafeDockerError]:
        """:meth:`resolve` for each admission, side by side when there are several (a
        build's bases); what one raised stands in its place, in the order given."""
        needed = [a for a in admissions
                  if a.verdict is not None and a.verdict.config_digest is None
                  and not a.local_id]
        if len(needed) < 2:
            found: list[Admission | SafeDockerError] = []
            for admission in admissions:
                try:
                    found.append(self.resolve(admission))
                except SafeDockerError as error:  # noqa: PERF203 - the caller raises in order
                    found.append(error)
            return found
        registries = [a.request.ref.registry if a.request.ref else "" for a in admissions]
        return self._side_by_side(self.resolve, admissions, registries)

    def daemon_platform(self) -> Platform:
        """The daemon's platform (a build's BUILDPLATFORM), asked once per command."""
        return self._daemon_platform()

    def _daemon_platform(self) -> Platform:
        """The daemon's platform, asked once per command (only when an index needs it)."""
        from safedocker.oci.platform import daemon_platform

        with self._daemon_lock:
            if self._daemon is None:
                found = self.engine.server_platform()
                self._daemon = daemon_platform(found.os, found.arch, found.machine)
            return self._daemon

    def _record(self, request: ImageRequest, verdict: Verdict | None, outcome: str,
                error: SafeDockerError | None, target: str | None) -> None:
        self.audit.record(request.command, verdict, outcome, error, target)

    def _warn(self, error: SafeDockerError) -> str:
        why = f" \u2014 {error.why}" if error.why else ""
        return self._say(f"warning: {error.what}{why} (continuing: mode = warn)")

    def _say(self, text: str) -> str:
        line = f"safe-docker: {text}"
        (self._stderr or sys.stderr).write(line + "\n")
        return line


def _own(error: SafeDockerError) -> SafeDockerError:
    """A request's own copy of the error of a verification that several requests share
    (one image named twice): the label its refusal adds is its own."""
    copied = type(error).__new__(type(error), *error.args)
    copied.__dict__.update(error.__dict__)
    copied.__cause__, copied.__context__ = error.__cause__, error.__context__
    copied.__suppress_context__ = error.__suppress_context__
    return copied


def _ahead_key(request: ImageRequest) -> tuple[str, str | None] | None:
    """What a request is verified as, when it is named by reference: the same image for
    the same platform is verified once per command. None: decided in turn (an ID, or a
    word that docker may read as one, asks the daemon first)."""
    ref = request.ref
    if ref is None or request.may_be_id:
        return None
    return (str(ref), request.platform)


def _kind_mismatch(request: ImageRequest, verdict: Verdict) -> SafeDockerError | None:
    """A plugin's manifest (its config is a plugin config) is accepted only where docker
    installs plugins, and only a plugin there: what was verified is what docker runs."""
    from safedocker.oci.media import PLUGIN_CONFIG

    found = verdict.config_media_type
    if found is None:
        return None  # accepted without reading the manifest (an accept rule)
    plugin = request.origin is Origin.PLUGIN
    if plugin == (found == PLUGIN_CONFIG):
        return None
    what, other = ("a docker plugin", "an image") if plugin else ("an image", "a docker plugin")
    return Refused(f"refused {request.text}", why=f"it is not {what}: its manifest is {other}'s",
                   hint="docker plugin install takes plugins, run/pull/create take images")


def _named(local: LocalImage, ref: ImageRef) -> bool:
    """Whether docker found ``local`` under ``ref``'s name (not as an ID prefix)."""
    wanted = (ref.name, ref.tag_or_default)
    return any(tagged is not None and (tagged.name, tagged.tag_or_default) == wanted
               for tagged in map(_reference, local.repo_tags))


def _reference(text: str) -> ImageRef | None:
    """A name docker printed, parsed; None if it is not one we can read."""
    try:
        return parse_reference(text)
    except SafeDockerError:
        return None


def _tag_of(ref: ImageRef | None, target: str) -> str | None:
    """The ``repo:tag`` docker leaves for ``ref`` once ``target`` is local (pull, run):
    none when the user named a digest only, or when target is not a repo digest."""
    if ref is None or "@" not in target or (ref.digest is not None and ref.tag is None):
        return None
    return ref.tagged
