"""``safe-docker gpu``: the host's GPUs, the daemon's runtimes, and the flags a run gets.

With an image, the image is verified first and its rule's ``gpu`` and its config decide
the flags; without one, a CUDA image that asks for every GPU stands in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker.gpu.daemon import DaemonGpu, detect_daemon
from safedocker.gpu.detect import HostGpu, detect_host
from safedocker.gpu.flags import GpuFlags, gpu_flags, resolve_mode
from safedocker.policy.model import GpuPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

# Any CUDA image: what `safe-docker gpu` without an image shows the flags for.
ANY_CUDA_IMAGE: Mapping[str, Any] = {"config": {"Env": ["NVIDIA_VISIBLE_DEVICES=all"]}}


@dataclass(frozen=True)
class GpuSituation:
    host: HostGpu
    daemon: DaemonGpu | None  # None without a GPU: the daemon is not asked
    flags: GpuFlags


def gpu_situation(image: str | None) -> GpuSituation:
    """What a run of ``image`` (or of any CUDA image) would get; a refused image raises."""
    host = detect_host()
    daemon = detect_daemon() if host.present else None
    image_config: Mapping[str, Any] | None = ANY_CUDA_IMAGE
    mode = GpuPolicy.AUTO
    if image is not None:
        from safedocker.cache.store import Cache
        from safedocker.policy.config import load_config
        from safedocker.policy.paths import paths
        from safedocker.reference import parse_reference
        from safedocker.verify.verifier import Verifier

        config = load_config()
        verifier = Verifier(config, cache=Cache.open(paths().cache_dir))
        verdict = verifier.verify(parse_reference(image))
        if not verdict.accepted:
            raise verdict.refusal()
        mode = verdict.decision.gpu
        found = verifier.image_config(verdict)
        image_config = dict(found) if found else None
    return GpuSituation(host, daemon, gpu_flags([], image_config, host, daemon,
                                                resolve_mode(mode)))
