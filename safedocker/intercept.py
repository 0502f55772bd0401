"""`pull`, `run` and `create`: from the user's argv to the docker commands to run.

The order matters: parse argv exactly as docker would, decide from policy, verify,
check the GPU requirement (before anything is pulled), and only then build the argv that
pins the image. Nothing is handed to docker in enforce mode unless the verdict accepts it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from safedocker.config import Config, load_config
from safedocker.dockerargs import Invocation, parse
from safedocker.errors import Refused, SafeDockerError
from safedocker.handoff import Plan, plan_pinned, plan_unchanged
from safedocker.policy import Mode
from safedocker.reference import parse_reference
from safedocker.verify import Verdict, Verifier

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


def plan_intercept(
    argv: Sequence[str],
    *,
    config: Config | None = None,
    record: Callable[[Invocation, Verdict | None, str], None] | None = None,
) -> Outcome:
    """The plan for an intercepted command; raises :class:`SafeDockerError` to refuse."""
    invocation = parse(argv)
    if invocation.help:
        return Outcome(plan_unchanged(invocation), None)
    config = config or load_config()
    if config.mode is Mode.OFF:
        return Outcome(plan_unchanged(invocation), None)
    enforce = config.mode is Mode.ENFORCE

    if invocation.command[-1] == "pull" and invocation.flag("--all-tags"):
        refusal = Refused("refused pull --all-tags",
                          why="every tag would be pulled, with no single digest to verify",
                          hint="pull the tags you need one by one")
        if enforce:
            raise refusal
        _warn(refusal.line())
        return Outcome(plan_unchanged(invocation), None)

    ref = parse_reference(invocation.image)
    verifier = Verifier(config, platform=_platform(invocation),
                        offline=os.environ.get("SAFE_DOCKER_OFFLINE") == "1")
    try:
        verdict = verifier.verify(ref)
    except SafeDockerError as error:
        if enforce:
            if record:
                record(invocation, None, f"error: {error.what}")
            raise
        _warn(error.line())
        return Outcome(plan_unchanged(invocation), None)

    if not verdict.accepted:
        if record:
            record(invocation, verdict, "refused" if enforce else "warned")
        if enforce:
            raise verdict.refusal()
        _warn(verdict.refusal().line())
        return Outcome(plan_unchanged(invocation), verdict)
    if verdict.warned:
        _warn("; ".join(verdict.reasons))
    if record:
        record(invocation, verdict, "warned" if verdict.warned else "accepted")
    if verdict.digest is None:
        return Outcome(plan_unchanged(invocation), verdict)
    log.info("verified %s as %s", ref, verdict.digest)
    return Outcome(plan_pinned(invocation, ref, verdict.digest), verdict)
