"""`pull`, `run` and `create`: argv → :class:`ImageRequest` → the gate → the plan.

The order matters: parse argv exactly as docker would (usage errors first), let the gate
decide (mode, verification, audit, the platform docker will pull), check the GPU
requirement before anything is pulled, and only then build the docker commands, with
IMAGE replaced by what the gate says docker gets.

``pull repo:tag`` becomes ``docker pull repo@digest`` and ``docker tag repo@digest
repo:tag``. ``run``/``create repo:tag`` leave the image tagged as docker would: when
docker lacks the pinned image it is pulled first by digest (its progress on stderr, so
the container's stdout stays clean) and tagged, then ``docker run … repo@digest …`` is
exec'd.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from safedocker._docker.argv import Invocation, global_options, parse
from safedocker._docker.grammar import image_mounts, with_value
from safedocker.errors import Refused
from safedocker.gate.decide import Admission, Gate, ImageRequest, Origin, Outcome
from safedocker.gate.handoff import Plan, plan_unchanged

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths

log = logging.getLogger(__name__)

_ORIGINS = {"run": Origin.RUN, "create": Origin.CREATE, "pull": Origin.PULL}


@dataclass(frozen=True)
class Handoff:
    plan: Plan
    admission: Admission | None


def _docker_config(invocation: Invocation) -> str | None:
    """The user's ``--config`` (registry credentials are read from there, as docker does)."""
    given = [o.value for o in global_options(invocation.argv) if o.name == "--config"]
    return given[-1] if given else None


def gate_for(invocation: Invocation, *, config: Config | None = None,
             where: Paths | None = None) -> Gate:
    """The gate for a docker command: the daemon its -H/--context names, its --config."""
    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI

    engine = DockerCLI.for_command(real_docker(), invocation.argv)
    return Gate.open(engine, config=config, where=where,
                     docker_config=_docker_config(invocation))


def plan_intercept(argv: Sequence[str], *, config: Config | None = None,
                   where: Paths | None = None, gate: Gate | None = None) -> Handoff:
    """The plan for an intercepted command; raises :class:`SafeDockerError` to refuse."""
    invocation = parse(argv)
    if invocation.help:
        return Handoff(plan_unchanged(invocation), None)
    gate = gate or gate_for(invocation, config=config, where=where)
    command = invocation.command[-1]
    if command == "pull" and invocation.flag("--all-tags"):
        gate.refuse(argv, Refused(
            "refused pull --all-tags",
            why="every tag would be pulled, with no single digest to verify",
            hint="pull the tags you need one by one"))
        return Handoff(plan_unchanged(invocation), None)
    platform = invocation.values("--platform")
    request = ImageRequest.parse(invocation.image, command=argv, origin=_ORIGINS[command],
                                 platform=platform[-1] if platform else None)
    gpu: list[str] = []

    def check(admission: Admission) -> None:
        if command != "pull" and admission.verdict is not None and admission.verdict.accepted:
            gpu.extend(gpu_options(invocation, admission, gate))

    mounts = image_mounts(invocation.options, ("--mount",)) if command != "pull" else []
    admission = gate.admit(request, check=check)
    if admission.outcome is Outcome.UNCHECKED:
        return Handoff(plan_unchanged(invocation), admission)
    if not gpu:
        from safedocker.gate.warm import remember

        remember(gate, argv, admission)  # the verdict cache, for the next run's warm path
    log.info("handing docker %s for %s", admission.target, invocation.image)
    if command == "pull":
        return Handoff(_pull_plan(invocation, admission), admission)
    # `--mount type=image,source=IMG` (docker >= 28): IMG's files in the container, so IMG
    # is verified as the container's own image is, and mounted by what the gate names.
    mounted = gate.admit_all(
        ImageRequest.parse(m.source, command=argv, origin=Origin.CREATE,
                           label="--mount source") for m in mounts)
    tokens = list(invocation.argv)
    for mount, given in zip(mounts, mounted, strict=True):
        tokens = with_value(tokens, mount.option, mount.with_source(given.target))
    plan = _run_plan(invocation._replace(argv=tuple(tokens)), admission, gpu)
    pulled = {command[-1] for command in plan.commands if "pull" in command}
    missing = dict.fromkeys(given.target for given in mounted if given.pinned
                            and not given.local_id and not given.present_locally)
    pulls = tuple((*invocation.globals, "pull", target) for target in missing
                  if target not in pulled)
    if pulls:  # docker pulls a missing container image, never a missing mounted one
        plan = Plan((*pulls, *plan.commands), progress=frozenset(range(len(pulls))) | {
            index + len(pulls) for index in plan.progress})
    return Handoff(plan, admission)


def _pull_plan(invocation: Invocation, admission: Admission) -> Plan:
    """``pull``: by digest, then the tag the user asked for (offline: only the tag)."""
    target = admission.target
    if not admission.pinned:
        return Plan((tuple(invocation.rebuild(target)),))
    skip = admission.offline and admission.present_locally
    pull = () if skip else (tuple(invocation.rebuild(target)),)
    if admission.tag is None:
        # Pulled by digest: there is no tag to restore.
        return Plan(pull or ((*invocation.globals, "image", "inspect", "--format", "{{.Id}}",
                              target),))
    return Plan((*pull, (*invocation.globals, "tag", target, admission.tag)))


def _run_plan(invocation: Invocation, admission: Admission, extra: Sequence[str]) -> Plan:
    """``run``/``create``: the pinned image, pulled and tagged first when docker lacks it
    and the user named a tag (as `docker run repo:tag` would leave it)."""
    options = list(extra)
    if admission.local_id and not invocation.has("--pull"):
        options.append("--pull=never")  # an image ID: never let docker go looking for it
    run = tuple(invocation.rebuild(admission.target, options))
    if admission.tag is None:
        return Plan((run,))
    steps: list[tuple[str, ...]] = []
    progress: set[int] = set()
    present = admission.present_locally
    pull_policy = (invocation.values("--pull") or ["missing"])[-1]
    if not present and pull_policy != "never" and not admission.offline:
        platform = invocation.values("--platform")
        progress.add(len(steps))
        steps.append((*invocation.globals, "pull",
                      *(("--platform", platform[-1]) if platform else ()), admission.target))
        present = True
    if present:
        steps.append((*invocation.globals, "tag", admission.target, admission.tag))
    return Plan((*steps, run), progress=frozenset(progress))


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


def gpu_options(invocation: Invocation, admission: Admission, gate: Gate) -> list[str]:
    """GPU options for run/create, after checking the image's CUDA requirements.

    Costs nothing on a host without a GPU in ``auto`` mode: NVML answers "no library" and
    neither the image config nor the daemon is consulted.
    """
    from safedocker.gpu.daemon import detect_daemon
    from safedocker.gpu.detect import detect_host
    from safedocker.gpu.flags import GpuMode, gpu_flags, resolve_mode
    from safedocker.gpu.requirements import check_requirements

    verdict = admission.verdict
    if verdict is None:
        return []
    mode = resolve_mode(verdict.decision.gpu)
    if mode is GpuMode.NEVER:
        return []
    host = detect_host()
    if not host.present and mode is GpuMode.AUTO:
        return []
    image_config = gate.image_config(verdict)
    # The GPU facts of the daemon the command runs on, asked with the user's flags.
    daemon = detect_daemon(gate.engine) if host.present else None
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
