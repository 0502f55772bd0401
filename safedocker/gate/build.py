"""Builds: every image a build would use is verified before it starts, and pinned.

``plan_build(argv)`` is the entry point for ``docker build``, ``docker image build``,
``docker builder build`` and ``docker buildx build``. The order:

1. the builder docker will use (:mod:`.build_client`) and its command line, read with an
   allowlist (:mod:`safedocker.build.argv`); what cannot be verified (a remote context or
   Dockerfile, a remote cache, a build policy…) is refused (exit 77) in enforce mode;
2. the Dockerfile, read once (:mod:`.build_input`), scanned with the builder's own rules
   (ARGs, ``--build-arg``, stages, ``--platform``, ``COPY --from``, ``RUN --mount``,
   ``# syntax``);
3. every external image through the gate, all of them before anything starts
   (:meth:`Gate.admit_all`), then the images the ONBUILD triggers of those base images use
   (a base accepted by policy without a digest is resolved and pinned first, so that its
   triggers are read too; one that cannot be resolved, offline say, is refused);
4. the pins: BuildKit (buildx) gets ``--build-context NAME=docker-image://repo@digest``
   for each image; the legacy builder (and docker 20.10's built-in BuildKit) a rewritten
   Dockerfile with every image token pinned. Docker always gets ``-f`` with the private copy
   that was scanned (or, for a context on stdin, the bytes read from stdin), so a file
   changed after the scan changes nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from safedocker.build.argv import ContextKind, NamedKind, find_build_command, parse, rebuild
from safedocker.build.dockerfile import DockerfileScan, ImageUse, Platforms, Use, scan
from safedocker.build.frontend import SYNTAX_ARG
from safedocker.build.model import Builder
from safedocker.build.pin import buildkit, rewrite
from safedocker.errors import Refused, SafeDockerError, UsageError
from safedocker.gate.build_client import BuildClient, DockerClient, Kind, choose_builder
from safedocker.gate.build_input import BuildInput, InputKind, read_input, replace_member, sibling
from safedocker.gate.decide import Admission, Gate, ImageRequest, Origin
from safedocker.gate.handoff import Plan
from safedocker.policy.model import Mode

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.build.argv import BuildInvocation
    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths

log = logging.getLogger(__name__)

MAX_TRIGGERS = 1000  # ONBUILD triggers read from one base image's config
SNAPSHOT_DIR = "dockerfile"  # in the private directory: the Dockerfile docker reads
_BUILD_HINT = "build from a local directory (clone or download it first)"


def plan_build(argv: Sequence[str], *, config: Config | None = None,
               where: Paths | None = None, gate: Gate | None = None,
               client: BuildClient | None = None, stdin: IO[bytes] | None = None,
               environ: Mapping[str, str] | None = None) -> Plan:
    """The plan for a build command; raises :class:`SafeDockerError` to refuse.

    ``stdin``: where a ``-`` context or ``-f -`` is read from (default: ours). The plan's
    ``workdir`` holds the files docker is handed; ``handoff.execute`` removes it."""
    argv = tuple(argv)
    env = dict(os.environ if environ is None else environ)
    found = find_build_command(argv)
    if found is None:
        raise UsageError("not a build command")
    gate = gate or _open_gate(argv, config, where, env)
    if gate.mode is Mode.OFF:
        return Plan((argv,))
    if client is None:
        from safedocker._docker.binary import real_docker

        client = DockerClient.for_command(real_docker(), argv, environ=env)
    try:
        kind = choose_builder(found[0], env, client)
    except Refused as error:
        gate.refuse(argv, error)  # warn mode: docker decides, unchecked
        return Plan((argv,))
    inv = parse(argv, builder=kind.grammar, env=env, builtin_buildkit=kind is Kind.BUILTIN)
    if inv.help:
        return Plan((argv,))
    reasons = inv.unverifiable()
    if reasons:
        remote = inv.context is ContextKind.REMOTE
        gate.refuse(argv, Refused("refused the build", why=reasons[0],
                                  hint=_BUILD_HINT if remote else
                                  "give only what safe-docker can read: local directories, "
                                  "docker-image:// contexts, a local cache"))
        return Plan((argv,))
    workdir = Path(tempfile.mkdtemp(prefix="safe-docker-build-"))
    try:
        return _Build(argv, inv, kind, gate, client, workdir, env).plan(
            stdin if stdin is not None else sys.stdin.buffer)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _open_gate(argv: Sequence[str], config: Config | None, where: Paths | None,
               env: Mapping[str, str]) -> Gate:
    from safedocker._docker.argv import global_options
    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI

    given = [o.value for o in global_options(argv) if o.name == "--config"]
    engine = DockerCLI.for_command(real_docker(), argv)
    return Gate.open(engine, config=config, where=where,
                     docker_config=given[-1] if given else None, environ=env)


@dataclass
class _Build:
    argv: tuple[str, ...]
    inv: BuildInvocation
    kind: Kind
    gate: Gate
    client: BuildClient
    workdir: Path
    env: Mapping[str, str]
    _build_platform: tuple[str, ...] | None = None  # () when unknown; asked once

    def plan(self, stdin: IO[bytes]) -> Plan:
        try:
            source = read_input(self.inv, self.workdir, stdin)
            return self._pinned(source)
        except _Decided as decided:
            raise decided.error from None  # the gate decided, recorded and said it
        except Refused as error:
            # Warn mode goes on unpinned; docker still gets exactly what was read.
            self.gate.refuse(self.argv, error)
            consumed = self.workdir / "stdin"
            return Plan((self.argv,), stdin=str(consumed) if consumed.exists() else None,
                        workdir=str(self.workdir))

    # --- what the build uses --------------------------------------------------------

    def _pinned(self, source: BuildInput) -> Plan:
        if self.kind is Kind.BUILDX and source.path is not None and (
                rego := sibling(source.path, ".rego")) is not None:
            raise Refused(f"refused the build: {rego} is a build policy for this Dockerfile",
                          why="a build policy can replace the images safe-docker pinned",
                          hint="move the .rego file away to build through safe-docker")
        scanned = scan(source.data, builder=self.kind.reader, build_args=self.inv.build_args(),
                       platforms=self._platforms(), target=self.inv.target)
        self._same_with_proxies(source, scanned)
        for note in scanned.notes:
            log.info("%s", note)
        user = self.inv.named_contexts if self.kind is Kind.BUILDX else ()
        replaced = {named.key for named in user}
        uses = [u for u in scanned.images
                if u.use is Use.FRONTEND or u.context_key not in replaced]
        extra: list[tuple[str, str]] = [
            (named.value.removeprefix("docker-image://"), f"--build-context {named.key}")
            for named in user if named.kind is NamedKind.IMAGE]
        sbom = self.inv.sbom if self.kind is Kind.BUILDX else None
        if sbom is not None:
            extra.append((sbom.generator, "the SBOM generator (--attest type=sbom)"))
        admitted = self._resolve_bases(scanned, self._admit(uses, extra))
        triggers = self._triggers(scanned, admitted)
        if triggers:
            admitted.update(self._admit(triggers, []))
            scanned = replace(scanned, images=scanned.images + tuple(triggers))
        pins = self._pins(admitted)
        if self.kind.rewrites:
            return self._rewritten(source, scanned, pins)
        return self._named(source, scanned, pins,
                           sbom_target=admitted[_key(sbom.generator)].target if sbom else None)

    def _same_with_proxies(self, source: BuildInput, scanned: DockerfileScan) -> None:
        """The docker CLI adds proxy build args from its config.json (and buildx may add
        SOURCE_DATE_EPOCH from the environment); a Dockerfile whose images change with
        them (``FROM base${HTTP_PROXY:+x}``) is refused."""
        given = self.inv.build_args()
        implicit = list(self.client.proxy_build_args())
        epoch = self.env.get("SOURCE_DATE_EPOCH")
        if epoch is not None and self.kind is Kind.BUILDX:
            implicit.append({"SOURCE_DATE_EPOCH": epoch})
        for extra in implicit:
            other = scan(source.data, builder=self.kind.reader,
                         build_args={**extra, **given}, platforms=self._platforms(),
                         target=self.inv.target)
            if _uses(other) != _uses(scanned):
                raise Refused("refused the build: the Dockerfile's images change with the "
                              f"build args docker adds itself ({', '.join(sorted(extra))})",
                              why="safe-docker cannot tell which of them the builder sees",
                              hint="name the images without HTTP_PROXY & co or "
                                   "SOURCE_DATE_EPOCH")

    def _platforms(self) -> Platforms:
        """BUILDPLATFORM (and the default target): the daemon's, when BuildKit runs in it;
        a buildx builder of another driver has its own worker platform: unknown, so a
        Dockerfile whose images depend on it is refused."""
        if self._build_platform is None:
            known = self.kind.reader is Builder.BUILDKIT and (
                self.kind is not Kind.BUILDX or self.client.native_platform(self._builder()))
            self._build_platform = (str(self.gate.daemon_platform()),) if known else ()
        build = self._build_platform[0] if self._build_platform else None
        return Platforms(build=build, targets=self.inv.platforms)

    def _builder(self) -> str | None:
        return self.inv.last("builder") or self.env.get("BUILDX_BUILDER") or None

    def _admit(self, uses: Sequence[ImageUse], extra: Sequence[tuple[str, str]]
               ) -> dict[tuple[str, str | None], Admission]:
        """Decide every image at once (all or nothing); keyed by (image, platform)."""
        requests: dict[tuple[str, str | None], ImageRequest] = {}
        for use in uses:
            platform = None if use.use is Use.FRONTEND else use.platform or use.target_platform
            key = (str(use.ref), platform)
            if key not in requests:
                requests[key] = ImageRequest.parse(
                    use.text, command=self.argv, origin=Origin.BUILD, platform=platform,
                    label=f"Dockerfile line {use.line}, {use.use.value}" if use.line else
                    "# syntax frontend")
        for text, label in extra:
            key = _key(text)
            if key not in requests:
                requests[key] = ImageRequest.parse(text, command=self.argv,
                                                   origin=Origin.BUILD, label=label)
        try:
            admissions = self.gate.admit_all(requests.values())
        except SafeDockerError as error:
            raise _Decided(error) from error
        return dict(zip(requests, admissions, strict=True))

    def _resolve_bases(self, scanned: DockerfileScan,
                       admitted: dict[tuple[str, str | None], Admission]
                       ) -> dict[tuple[str, str | None], Admission]:
        """Base images accepted by policy without a digest, pinned to what they are now:
        their ONBUILD triggers run in this build and may name other images, which must be
        read (and verified) like any other; a base that cannot be read is refused."""
        bases = [key for key in dict.fromkeys((str(u.ref), u.platform or u.target_platform)
                                              for u in scanned.images if u.use is Use.FROM)
                 if key in admitted]  # in Dockerfile order: the first failure is raised
        resolved = self.gate.resolve_all([admitted[key] for key in bases])
        for key, answer in zip(bases, resolved, strict=True):
            if isinstance(answer, SafeDockerError):
                raise Refused(f"refused the build: cannot read the base image {key[0]} to "
                              "see its ONBUILD triggers", why=answer.why or answer.what,
                              hint="build while the registry is reachable") from answer
            admitted[key] = answer
        return admitted

    def _triggers(self, scanned: DockerfileScan,
                  admitted: Mapping[tuple[str, str | None], Admission]) -> list[ImageUse]:
        """Images the ONBUILD triggers of verified base images use (from their configs)."""
        from safedocker.build.dockerfile import trigger_images

        found: list[ImageUse] = []
        by_line = {(u.line, u.target_platform): u for u in scanned.images if u.use is Use.FROM}
        bases = [(index, use, (str(use.ref), use.platform or use.target_platform))
                 for index, stage in enumerate(scanned.stages)
                 if stage.base_stage is None and not stage.scratch
                 for (line, _), use in by_line.items() if line == stage.line]
        configs = self._configs({key: admitted[key] for _, _, key in bases if key in admitted})
        for index, use, key in bases:
            stage = scanned.stages[index]
            admission = admitted.get(key)
            onbuild = self._onbuild(admission, configs.get(key)) if admission else ()
            if onbuild:
                for image in trigger_images(onbuild, scanned, stage=index):
                    if self.kind.rewrites:
                        raise Refused(
                            f"refused the build: the base image {use.text} (Dockerfile line "
                            f"{stage.line}) has an ONBUILD trigger that uses {image.text}",
                            why=f"{self.kind.value} cannot be pinned to the images of a base "
                                "image's triggers",
                            hint="build with buildx, or use a base image without ONBUILD "
                                 "COPY --from")
                    found.append(image)
        return found

    def _configs(self, bases: Mapping[tuple[str, str | None], Admission]
                 ) -> dict[tuple[str, str | None], Mapping[str, Any] | None | SafeDockerError]:
        """The image configs of the bases, read side by side (one base: when asked)."""
        if len(bases) < 2:
            return {}
        return dict(zip(bases, self.gate.image_configs(list(bases.values())), strict=True))

    def _onbuild(self, admission: Admission,
                 document: Mapping[str, Any] | None | SafeDockerError) -> tuple[str, ...]:
        """A verified image's ONBUILD triggers (none known for an image accepted without
        a digest: the policy accepts whatever it holds); ``document``: its config, when
        it was read already."""
        verdict = admission.verdict
        if verdict is None or verdict.config_digest is None:
            return ()
        if document is None:
            document = self.gate.verifier.image_config(verdict)
        if document is None and verdict.offline:
            # Decided from the cache, which may not hold the config: its triggers are not
            # known, which is not "none" (they may use images nothing verified).
            raise Refused(f"refused the build: cannot read the base image {verdict.ref} to "
                          "see its ONBUILD triggers",
                          why="it was verified from the cache, which does not hold its "
                              "image config",
                          hint="build while the registry is reachable")
        if isinstance(document, SafeDockerError):
            raise document
        config = _go_member(document, "config")
        triggers = _go_member(config, "OnBuild")
        if triggers is None:
            return ()
        if not isinstance(triggers, list) or not all(isinstance(t, str) for t in triggers) \
                or len(triggers) > MAX_TRIGGERS:
            raise Refused(f"refused the build: the image config of {verdict.ref} has "
                          "unreadable ONBUILD triggers", hint="use another base image")
        return tuple(triggers)

    def _pins(self, admitted: Mapping[tuple[str, str | None], Admission]) -> dict[str, str]:
        pins: dict[str, str] = {}
        for (text, _), admission in admitted.items():
            if admission.local_id:
                raise Refused(f"refused the build: the verified image {text} is in docker "
                              f"only by its ID ({admission.target})",
                              why="a builder is handed images by name",
                              hint="pull it by name while online, then build")
            if pins.setdefault(text, admission.target) != admission.target:
                raise Refused(f"refused the build: {text} is verified as different images "
                              "for different platforms",
                              why="one Dockerfile token cannot be pinned to both",
                              hint="build one platform at a time, or ask the publisher to "
                                   "sign the image index")
        return pins

    # --- what docker is handed --------------------------------------------------------

    def _rewritten(self, source: BuildInput, scanned: DockerfileScan,
                   pins: Mapping[str, str]) -> Plan:
        """Legacy builder and docker 20.10's built-in BuildKit: the pinned Dockerfile."""
        data = rewrite(source.data, scanned, pins)
        build_args = _frontend_arg(scanned, pins) if self.kind is Kind.BUILTIN else ()
        match source.kind:
            case InputKind.FILE | InputKind.STDIN_FILE:
                path = self._snapshot(source, data)
                command = rebuild(self.inv, dockerfile=str(path), build_args=build_args)
                return self._plan(command)
            case InputKind.STDIN_DOCKERFILE:
                path = self._snapshot(source, data)
                return self._plan(rebuild(self.inv, build_args=build_args), stdin=path)
            case InputKind.STDIN_TAR:
                target = self.workdir / "context.pinned.tar"
                replace_member(source, data, target)
                return self._plan(rebuild(self.inv, build_args=build_args), stdin=target)

    def _named(self, source: BuildInput, scanned: DockerfileScan, pins: Mapping[str, str],
               *, sbom_target: str | None) -> Plan:
        """buildx: the Dockerfile as it was, every image pinned by a named context."""
        supported = scanned.frontend is not None or self.client.named_contexts(
            self._builder())
        pinned = buildkit(scanned, pins, user=self.inv.named_contexts,
                          builtin_named_contexts=supported)
        options: dict[str, Any] = {"contexts": pinned.contexts,
                                   "build_args": pinned.build_args,
                                   "sbom_generator": sbom_target}
        match source.kind:
            case InputKind.FILE | InputKind.STDIN_FILE:
                path = self._snapshot(source, source.data)
                ignore = sibling(source.path, ".dockerignore") if source.path else None
                if ignore is not None:  # BuildKit reads <Dockerfile>.dockerignore beside it
                    path.with_name(path.name + ".dockerignore").write_bytes(
                        ignore.read_bytes())
                return self._plan(rebuild(self.inv, dockerfile=str(path), **options))
            case InputKind.STDIN_DOCKERFILE | InputKind.STDIN_TAR:
                return self._plan(rebuild(self.inv, **options), stdin=source.buffered)

    def _snapshot(self, source: BuildInput, data: bytes) -> Path:
        folder = self.workdir / SNAPSHOT_DIR
        folder.mkdir()
        path = folder / source.name
        path.write_bytes(data)
        return path

    def _plan(self, command: Sequence[str], *, stdin: Path | None = None) -> Plan:
        return Plan((tuple(command),), stdin=str(stdin) if stdin else None,
                    workdir=str(self.workdir))


class _Decided(Exception):  # noqa: N818 - a carrier, not an error of its own
    """A refusal the gate already decided and recorded."""

    def __init__(self, error: SafeDockerError) -> None:
        super().__init__(error.line())
        self.error = error


def _uses(scanned: DockerfileScan) -> set[tuple[str, str, str | None]]:
    return {(u.use.value, str(u.ref), u.platform or u.target_platform) for u in scanned.images}


def _key(text: str) -> tuple[str, str | None]:
    from safedocker.reference import parse_reference

    return (str(parse_reference(text)), None)


def _go_member(document: object, name: str) -> object:
    """``document[name]`` as Go's encoding/json finds it (case-insensitively)."""
    from safedocker._internal.strictjson import go_fold

    if not isinstance(document, dict):
        return None
    wanted = go_fold(name)
    return next((v for k, v in document.items() if go_fold(k) == wanted), None)


def _frontend_arg(scanned: DockerfileScan, pins: Mapping[str, str]
                  ) -> tuple[tuple[str, str], ...]:
    """``BUILDKIT_SYNTAX=repo@digest [args]`` for a ``# syntax`` frontend."""
    frontend = scanned.frontend
    if frontend is None:
        return ()
    pinned = pins.get(str(frontend.ref))
    if pinned is None:
        raise Refused(f"no verified digest for the Dockerfile frontend {frontend.ref}")
    _, _, rest = frontend.cmdline.partition(" ")
    return ((SYNTAX_ARG, f"{pinned} {rest}" if rest else pinned),)


def run(argv: Sequence[str]) -> NoReturn:
    """The shim's entry for builds: verify every image, then run docker (or exit 77)."""
    from safedocker.console import run_guarded, setup_logging
    from safedocker.gate.handoff import execute

    setup_logging(0)
    run_guarded(lambda: execute(plan_build(argv)))

