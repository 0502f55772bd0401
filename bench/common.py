"""Shared helpers for the benchmarks: a private docker world, isolated safe-docker dirs,
wall-clock timing of subprocesses, and table printing.

Nothing here asserts on timing: the benchmarks print figures and the goal next to each,
so a regression is visible without making a test flaky.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
# The interpreter the shim runs under (the venv's), and the console script itself.
PYTHON = sys.executable
SAFE_DOCKER = str(Path(PYTHON).with_name("safe-docker"))
if not Path(SAFE_DOCKER).exists():  # pragma: no cover - run outside the venv
    SAFE_DOCKER = shutil.which("safe-docker") or SAFE_DOCKER


def real_docker() -> str:
    """The real docker CLI (never the shim)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = Path(directory or ".") / "docker"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            head = candidate.read_bytes()[:4096] if candidate.stat().st_size < 1 << 20 else b""
            if not (head.startswith(b"#!") and b"safedocker" in head):
                return str(candidate)
    raise SystemExit("bench: no real docker on PATH")


@dataclass
class Bench:
    """A running world plus isolated safe-docker directories (see :func:`bench_world`)."""

    world: object  # tests.world.World
    root: Path
    docker: str
    dirs: dict[str, str] = field(default_factory=dict)

    def docker_env(self) -> dict[str, str]:
        return dict(self.world.docker_env())  # type: ignore[attr-defined]

    def safe_env(self, *, bytecode: bool = True, **overrides: str) -> dict[str, str]:
        """Environment for ``safe-docker``: the world's docker, our dirs, then ``overrides``.

        ``bytecode``: let Python cache compiled modules (as any installed package has), in
        a private prefix so that nothing is written into the source tree. Without it (and
        with PYTHONDONTWRITEBYTECODE=1 in the environment) every start recompiles the shim.
        """
        env = self.docker_env()
        env.update(self.dirs)
        env["SAFE_DOCKER_REAL_DOCKER"] = self.docker
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.root / "pycache")
        env.update(overrides)
        return env

    def fresh_dir(self, name: str) -> str:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        return str(path)


@contextlib.contextmanager
def bench_world() -> Iterator[Bench]:
    """Start a private dockerd + registry and make isolated safe-docker dirs; stop after."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.world import World, ensure_installed

    ensure_installed()
    root = Path(tempfile.mkdtemp(prefix="sdb-", dir="/tmp"))
    world = World(root=root)
    print(f"starting world in {root} …", file=sys.stderr, flush=True)
    try:
        world.start()
        bench = Bench(world=world, root=root, docker=real_docker())
        for var, name in (("SAFE_DOCKER_CONFIG_DIR", "config"), ("SAFE_DOCKER_CACHE_DIR", "cache"),
                          ("SAFE_DOCKER_STATE_DIR", "state"),
                          ("SAFE_DOCKER_SYSTEM_CONFIG_DIR", "system")):
            path = root / name
            path.mkdir()
            bench.dirs[var] = str(path)
        yield bench
    finally:
        world.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- timing ------------------------------------------------------------------------------


def run(argv: Sequence[str], env: Mapping[str, str], *, check: bool = True,
        input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(list(argv), env=dict(env), capture_output=True, input=input,
                            timeout=300, check=False)
    if check and result.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(argv)} exited {result.returncode}:\n"
            f"{result.stderr.decode(errors='replace')[-2000:]}"
        )
    return result


@dataclass(frozen=True)
class Timing:
    """Median wall seconds and median CPU seconds (user + sys of the child and its children).

    The CPU figure is what to compare on a loaded machine: wall time includes waiting for
    a core, CPU time does not (it misses only time blocked on I/O and sockets).
    """

    wall: float
    cpu: float

    def __truediv__(self, other: Timing) -> Timing:
        return Timing(self.wall / other.wall, self.cpu / other.cpu)


def time_once(argv: Sequence[str], env: Mapping[str, str], *,
              check: bool = True) -> tuple[float, float]:
    """(wall, cpu) seconds of one subprocess run (spawn to exit), output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    rc = subprocess.run(list(argv), env=dict(env), stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, timeout=300, check=False).returncode
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and rc != 0:
        run(argv, env)  # re-run to show the error
        raise SystemExit(f"bench: {' '.join(argv)} exited {rc}")
    return elapsed, cpu


def median_time(argv: Sequence[str], env: Mapping[str, str], *, runs: int, warmup: int = 2,
                check: bool = True, before: Callable[[], None] | None = None) -> Timing:
    for _ in range(warmup):
        if before:
            before()
        time_once(argv, env, check=check)
    samples = []
    for _ in range(runs):
        if before:
            before()
        samples.append(time_once(argv, env, check=check))
    return Timing(statistics.median(w for w, _ in samples),
                  statistics.median(c for _, c in samples))


def interleaved_medians(cases: Mapping[str, tuple[Sequence[str], Mapping[str, str]]], *,
                        runs: int, warmup: int = 2,
                        before: Callable[[str], None] | None = None) -> dict[str, Timing]:
    """Median wall and CPU time of each case, runs interleaved so load drift hits all alike."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for i in range(warmup + runs):
        for name, (argv, env) in cases.items():
            if before:
                before(name)
            measured = time_once(argv, env)
            if i >= warmup:
                samples[name].append(measured)
    return {name: Timing(statistics.median(w for w, _ in values),
                         statistics.median(c for _, c in values))
            for name, values in samples.items()}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ms2(timing: Timing) -> str:
    """``wall / cpu`` in milliseconds."""
    return f"{timing.wall * 1000:.1f} / {timing.cpu * 1000:.1f} ms"


def ratio2(timing: Timing) -> str:
    return f"{timing.wall:.2f} / {timing.cpu:.2f}"


def load_note() -> str:
    one, _, _ = os.getloadavg()
    cpus = os.cpu_count() or 1
    busy = " (busy machine: trust the CPU figures over wall)" if one > cpus else ""
    return f"load average {one:.1f} on {cpus} CPUs{busy}"


# --- output ------------------------------------------------------------------------------


def section(title: str) -> None:
    print(f"\n== {title} ==")


def table(rows: Sequence[Sequence[str]],
          header: Sequence[str] = ("figure", "value", "goal")) -> None:
    all_rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in all_rows) for i in range(len(header))]
    for n, row in enumerate(all_rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def verdict(value: float, goal: float, *, below: bool = False) -> str:
    ok = value < goal if below else value <= goal
    return "ok" if ok else "OVER GOAL"


def verdict2(timing: Timing, goal: float) -> str:
    """The goal checked on wall and on CPU time."""
    wall, cpu = verdict(timing.wall, goal), verdict(timing.cpu, goal)
    return wall if wall == cpu else f"wall {wall}, cpu {cpu}"


def not_yet(what: str, why: str) -> None:
    print(f"{what}: not yet measured ({why})")
