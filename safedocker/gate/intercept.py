"""`pull`, `run` and `create`: from the user's argv to the docker commands to run.

The order matters: parse argv exactly as docker would, decide from policy, verify,
check the GPU requirement (before anything is pulled), and only then build the argv that
pins the image. Nothing is handed to docker in enforce mode unless the verdict accepts it.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from safedocker._docker.argv import Invocation, global_options, parse
from safedocker._internal import environment
from safedocker.cache.store import open_best_effort
from safedocker.errors import Refused, RegistryUnavailable, SafeDockerError
from safedocker.gate.handoff import Plan, plan_pinned, plan_unchanged
from safedocker.policy.config import Config, load_config
from safedocker.policy.model import Mode
from safedocker.policy.paths import Paths, paths
from safedocker.reference import parse_reference
from safedocker.verify.verifier import Verifier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker._docker.engine import DockerEngine
    from safedocker.verify.verdict import Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    verdict: Verdict | None


def _warn(message: str) -> None:
    sys.stderr.write(f"safe-docker: WARNING: {message} \u2014 continuing because mode = warn\n")


def _platform(invocation: Invocation) -> str | None:
    given = invocation.values("--platform")
    return given[-1] if given else os.environ.get("DOCKER_DEFAULT_PLATFORM") or None


def _audit(where: Paths, argv: Sequence[str], verdict: Verdict | None, outcome: str,
           error: SafeDockerError | None = None) -> None:
    from safedocker.audit import record_decision

    record_decision(where.state_dir, argv, verdict, outcome, error)


def _engine(invocation: Invocation) -> DockerEngine:
    """The daemon the user's command talks to (its -H, --context, --config, TLS flags)."""
    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI

    return DockerCLI.for_command(real_docker(), invocation.argv)


def _docker_config(invocation: Invocation) -> str | None:
    """The user's ``--config`` (registry credentials are read from there, as docker does)."""
    given = [o.value for o in global_options(invocation.argv) if o.name == "--config"]
    return given[-1] if given else None


def _local_image_id(invocation: Invocation, reference: str) -> str | None:
    """The ID of the image docker has locally under ``reference``, or None."""
    return _engine(invocation).image_id(reference)


def _verified_image_id(invocation: Invocation, verdict: Verdict) -> str | None:
    """``sha256:<config>`` when docker has exactly that image (ID = config digest), else None.

    After `docker load` docker knows an image by ID only (no RepoDigests, and it refuses
    to tag repo@digest). The ID is the config digest that the verified, signed manifest
    names, so pinning to it runs exactly what was verified.
    """
    if verdict.config_digest is None:
        return None
    image_id = str(verdict.config_digest)
    return image_id if _local_image_id(invocation, image_id) == image_id else None


def _offline_note(verdict: Verdict) -> None:
    sys.stderr.write(f"safe-docker: {verdict.offline_note()}\n")


def plan_intercept(argv: Sequence[str], *, config: Config | None = None,
                   where: Paths | None = None) -> Outcome:
    """The plan for an intercepted command; raises :class:`SafeDockerError` to refuse."""
    invocation = parse(argv)
    if invocation.help:
        return Outcome(plan_unchanged(invocation), None)
    where = where or paths()
    config = config or load_config(where)
    if config.mode is Mode.OFF:
        return Outcome(plan_unchanged(invocation), None)
    enforce = config.mode is Mode.ENFORCE

    def refuse_or_warn(error: SafeDockerError, verdict: Verdict | None) -> Outcome:
        _audit(where, argv, verdict, "refused" if enforce else "warned", error)
        if enforce:
            raise error
        _warn(error.line())
        return Outcome(plan_unchanged(invocation), verdict)

    if invocation.command[-1] == "pull" and invocation.flag("--all-tags"):
        return refuse_or_warn(Refused(
            "refused pull --all-tags",
            why="every tag would be pulled, with no single digest to verify",
            hint="pull the tags you need one by one"), None)

    ref = parse_reference(invocation.image)
    verifier = Verifier(config, platform=_platform(invocation),
                        offline=environment.offline(),
                        cache=open_best_effort(where.cache_dir),
                        docker_config_dir=_docker_config(invocation))
    try:
        verdict = verifier.verify(ref)
    except SafeDockerError as error:
        return refuse_or_warn(error, None)
    if not verdict.accepted:
        return refuse_or_warn(verdict.refusal(), verdict)
    if verdict.warned:
        _warn("; ".join(verdict.reasons))
    if verdict.digest is None:
        _audit(where, argv, verdict, "warned" if verdict.warned else "accepted")
        return Outcome(plan_unchanged(invocation), verdict)

    pinned = ref.pinned(verdict.digest)
    skip_pull = False
    local_id: str | None = None
    if verdict.offline:
        _offline_note(verdict)
        if _local_image_id(invocation, pinned) is None:
            local_id = _verified_image_id(invocation, verdict)
            if local_id is None:
                return refuse_or_warn(RegistryUnavailable(
                    f"cannot run {ref} offline",
                    why=f"verified from the cache, but docker has no local copy of {pinned}",
                    hint="pull it while online, or bring it with `safe-docker airgap save` "
                         "and `airgap load`"),
                    verdict)
        skip_pull = True
    log.info("verified %s as %s", ref, verdict.digest)
    try:
        extra = [] if invocation.command[-1] == "pull" else gpu_options(invocation, verdict,
                                                                         verifier)
        if local_id is not None and invocation.command[-1] != "pull" and not invocation.has(
            "--pull"
        ):
            extra.append("--pull=never")  # offline: never let docker go looking for it
    except SafeDockerError as error:
        _audit(where, argv, verdict, "refused", error)
        raise
    _audit(where, argv, verdict, "warned" if verdict.warned else "accepted")
    return Outcome(plan_pinned(invocation, ref, verdict.digest, extra, skip_pull=skip_pull,
                               target=local_id),
                   verdict)


def _run_env(invocation: Invocation) -> dict[str, str]:
    """The ``-e`` variables the container will get (for NVIDIA_DISABLE_REQUIRE and kin)."""
    env = {}
    for item in invocation.values("--env"):
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]
    return env


def gpu_options(invocation: Invocation, verdict: Verdict, verifier: Verifier) -> list[str]:
    """GPU options for run/create, after checking the image's CUDA requirements.

    Costs nothing on a host without a GPU in ``auto`` mode: NVML answers "no library" and
    neither the image config nor the daemon is consulted.
    """
    from safedocker.gpu.daemon import detect_daemon
    from safedocker.gpu.detect import detect_host
    from safedocker.gpu.flags import GpuMode, gpu_flags, resolve_mode
    from safedocker.gpu.requirements import check_requirements

    mode = resolve_mode(verdict.decision.gpu)
    if mode is GpuMode.NEVER:
        return []
    host = detect_host()
    if not host.present and mode is GpuMode.AUTO:
        return []
    image_config = verifier.image_config(verdict)
    # The GPU facts of the daemon the command runs on, asked with the user's flags.
    daemon = detect_daemon(_engine(invocation)) if host.present else None
    user_options = [(option.name, option.value) for option in invocation.options]
    flags = gpu_flags(user_options, image_config, host, daemon, mode)
    if flags.gives_gpus:
        check_requirements(image_config, host, run_env=_run_env(invocation),
                               devices=flags.devices)
    return list(flags.args)


def run(argv: Sequence[str]) -> NoReturn:
    """The shim's entry for pull/run/create: verify, then exec docker (or exit refused)."""
    from safedocker.console import run_guarded, setup_logging
    from safedocker.gate.handoff import execute

    setup_logging(0)
    run_guarded(lambda: execute(plan_intercept(argv).plan))
