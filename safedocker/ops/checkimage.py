"""``safe-docker verify IMAGE``'s library side: the verifier the config and environment
describe, one verdict, and its audit record (refusals before a verdict recorded too)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from safedocker._internal import environment
from safedocker.audit import record_decision
from safedocker.cache.store import Cache
from safedocker.errors import SafeDockerError
from safedocker.policy.config import load_config
from safedocker.policy.paths import paths
from safedocker.reference import parse_reference
from safedocker.verify.verifier import Verifier

if TYPE_CHECKING:
    from safedocker.verify.verdict import Verdict


def check_image(image: str, *, platform: str | None) -> Verdict:
    """The verdict on ``image`` (accepted or not), recorded in the audit log.

    ``platform`` defaults to DOCKER_DEFAULT_PLATFORM, as docker's; SAFE_DOCKER_OFFLINE
    decides from the cache. An error before a verdict is recorded, then raised.
    """
    ref = parse_reference(image)
    verifier = Verifier(load_config(),
                        platform=platform or os.environ.get("DOCKER_DEFAULT_PLATFORM"),
                        offline=environment.offline(),
                        cache=Cache.open(paths().cache_dir))
    argv = ["verify", image]
    try:
        verdict = verifier.verify(ref)
    except SafeDockerError as e:  # refused before a verdict (unreachable, bad data): audited
        record_decision(paths().state_dir, argv, None, "refused", e, reference=str(ref))
        raise
    outcome = ("refused" if not verdict.accepted
               else "warned" if verdict.warned else "accepted")
    record_decision(paths().state_dir, argv, verdict, outcome)
    if outcome == "accepted":
        from safedocker.gate.warm import remember_verify

        remember_verify(verifier.config, verifier, ref, verdict,
                        platform or os.environ.get("DOCKER_DEFAULT_PLATFORM"))
    return verdict
