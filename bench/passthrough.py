"""Passthrough cost: what safe-docker adds to every docker command it does not intercept.

Run from the repository root: ``python -m bench.passthrough`` (or ``make bench``).
Prints figures and goals; never fails on timing. See bench/README.md.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    PYTHON,
    SAFE_DOCKER,
    Bench,
    Timing,
    bench_world,
    interleaved_medians,
    load_note,
    ms2,
    ratio2,
    run,
    section,
    table,
    verdict2,
)

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
WARMUP = 3
SHIM_GOAL = 1.3
SHELL_GOAL = 1.05
# Modules the passthrough path must never import (DESIGN.md: heavy imports only where needed).
HEAVY = ("typer", "click", "requests", "urllib3", "cryptography", "sigstore", "docker",
         "pynvml", "platformdirs", "tomllib", "tomli", "safedocker.cli", "safedocker.oci.client")
IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")


def ps_ratio(bench: Bench) -> list[list[str]]:
    section(f"docker ps through safe-docker (median of {RUNS}, interleaved, {WARMUP} warm-up)")
    medians = interleaved_medians(
        {"docker ps": ([bench.docker, "ps"], bench.docker_env()),
         "safe-docker ps": ([SAFE_DOCKER, "ps"], bench.safe_env())},
        runs=RUNS, warmup=WARMUP,
    )
    ratio = medians["safe-docker ps"] / medians["docker ps"]
    return [
        ["docker ps", ms2(medians["docker ps"]), ""],
        ["safe-docker ps", ms2(medians["safe-docker ps"]), ""],
        ["ps ratio (safe-docker ps / docker ps)", ratio2(ratio), "(informational)"],
    ]


def shim_overhead(bench: Bench) -> list[list[str]]:
    """The shim alone: the real docker is /bin/true, so the time is start-up to exec."""
    env = bench.safe_env(SAFE_DOCKER_REAL_DOCKER="/bin/true")
    medians = interleaved_medians(
        {"bare": ([PYTHON, "-c", "pass"], env),
         "shim": ([SAFE_DOCKER, "ps"], env),
         "true": (["/bin/true"], env)},
        runs=RUNS, warmup=WARMUP,
    )
    ratio = medians["shim"] / medians["bare"]
    rows = [
        ["/bin/true (exec floor)", ms2(medians["true"]), ""],
        [f"bare python start-up ({Path(PYTHON).name} -c pass)", ms2(medians["bare"]), ""],
        ["shim: safe-docker ps -> /bin/true", ms2(medians["shim"]), ""],
        ["shim overhead / bare python start-up", ratio2(ratio),
         f"<= {SHIM_GOAL} {verdict2(ratio, SHIM_GOAL)}"],
    ]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # What this environment really pays: no .pyc, so the shim is compiled every start.
        raw = bench.safe_env(bytecode=False, SAFE_DOCKER_REAL_DOCKER="/bin/true")
        cold = interleaved_medians({"bare": ([PYTHON, "-c", "pass"], raw),
                                    "shim": ([SAFE_DOCKER, "ps"], raw)},
                                   runs=max(5, RUNS // 3), warmup=1)
        rows += [["  same, PYTHONDONTWRITEBYTECODE=1 (no .pyc): shim", ms2(cold["shim"]), ""],
                 ["  shim / bare python, no .pyc", ratio2(cold["shim"] / cold["bare"]),
                  "(this environment)"]]
    return rows


def _importtime(argv: list[str], env: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """module -> (self us, cumulative us, nesting depth) from ``-X importtime``."""
    stderr = subprocess.run(argv, env=env, capture_output=True, timeout=60).stderr.decode()
    found = {}
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            depth = len(match.group(3)) // 2
            found[match.group(4)] = (int(match.group(1)), int(match.group(2)), depth)
    return found


def import_summary(bench: Bench, repeat: int = 7) -> None:
    section("imports on the passthrough path (python -X importtime, beyond bare start-up)")
    env = bench.safe_env(SAFE_DOCKER_REAL_DOCKER="/bin/true")
    bare_runs = [_importtime([PYTHON, "-X", "importtime", "-c", "pass"], env) for _ in range(3)]
    bare = set().union(*bare_runs)
    shim_runs = [_importtime([PYTHON, "-X", "importtime", SAFE_DOCKER, "ps"], env)
                 for _ in range(repeat)]
    modules = [m for m in shim_runs[0] if m not in bare]
    # Median per module over the runs, to smooth out a noisy one.
    cumulative = {m: statistics.median(r[m][1] for r in shim_runs if m in r) for m in modules}
    own = {m: statistics.median(r[m][0] for r in shim_runs if m in r) for m in modules}
    depth = {m: shim_runs[0][m][2] for m in modules}
    top_level = sum(cumulative[m] for m in modules if depth[m] == 1)
    print(f"{len(modules)} modules beyond bare start-up; top-level cumulative "
          f"{top_level / 1000:.1f} ms (importtime's own overhead inflates this)")
    rows = [[m if depth[m] <= 1 else "  " * (depth[m] - 1) + m,
             f"{cumulative[m] / 1000:.2f}", f"{own[m] / 1000:.2f}"]
            for m in sorted(modules, key=lambda m: -cumulative[m])[:15]]
    table(rows, header=("module (top 15 by cumulative)", "cumulative ms", "self ms"))
    heavy = sorted(m for m in modules
                   if any(m == h or m.startswith(h + ".") for h in HEAVY))
    print(f"heavy modules on the passthrough path: {', '.join(heavy) if heavy else 'none'}")


BREAKDOWN = (
    ("bare: python -c pass", "pass"),
    ("+ console-script wrapper (import re; re.sub)",
     "import re; re.sub(r'(-script\\.pyw|\\.exe)?$', '', 'safe-docker')"),
    ("+ enum, typing, json (shim, _docker/route.py, binary.py)", "import re, enum, typing, json"),
    ("+ dataclasses (_docker/argv.py)", "import re, enum, typing, json, dataclasses"),
    ("import safedocker._docker.argv", "import re; import safedocker._docker.argv"),
    ("import safedocker.shim", "import re; import safedocker.shim"),
)


def startup_breakdown(bench: Bench) -> None:
    """Where the shim's start-up goes, as cumulative steps (CPU is the robust column)."""
    section(f"shim start-up breakdown (median of {RUNS}, cumulative steps)")
    env = bench.safe_env(SAFE_DOCKER_REAL_DOCKER="/bin/true")
    cases = {label: ([PYTHON, "-c", code], env) for label, code in BREAKDOWN}
    cases["full shim: safe-docker ps -> /bin/true"] = ([SAFE_DOCKER, "ps"], env)
    medians = interleaved_medians(cases, runs=RUNS, warmup=WARMUP)
    bare = medians[BREAKDOWN[0][0]]
    table([[label, ms2(t), f"+{(t.cpu - bare.cpu) * 1000:.1f} ms"] for label, t in medians.items()],
          header=("step", "wall / cpu", "cpu over bare"))


def shell_function(bench: Bench) -> None:
    section("shell function (eval \"$(safe-docker shell-init bash)\")")
    env = bench.safe_env()
    env["PATH"] = os.pathsep.join([str(Path(SAFE_DOCKER).parent), env.get("PATH", os.defpath)])
    probe = subprocess.run([SAFE_DOCKER, "shell-init", "bash"], env=env, capture_output=True,
                           timeout=60)
    if probe.returncode != 0 or not probe.stdout.strip():
        print(f"shell-init: not available (safe-docker shell-init bash exited {probe.returncode})")
        return
    init = probe.stdout.decode()
    env["SDB_INIT"] = init
    # The function must resolve to the shim and still print docker's output.
    check = run(["bash", "-c", 'eval "$SDB_INIT"; type docker; docker ps'], env)
    if b"function" not in check.stdout:
        print("shell-init: ran, but defines no `docker` function; not measured")
        return
    # As a user has it: no SAFE_DOCKER_REAL_DOCKER, the real docker first on PATH (found
    # by `command docker`), safe-docker on PATH for the commands it must see.
    env.pop("SAFE_DOCKER_REAL_DOCKER", None)
    env["PATH"] = os.pathsep.join([str(Path(bench.docker).parent), env["PATH"]])
    # `docker ps` must bypass safe-docker: with SAFE_DOCKER_BIN=/bin/false it still works.
    bypass = run(["bash", "-c", 'eval "$SDB_INIT"; SAFE_DOCKER_BIN=/bin/false docker ps'], env,
                 check=False)
    log = Path(bench.fresh_dir("shell")) / "times.log"
    runs = RUNS + WARMUP
    # One bash process, the two cases interleaved: bash start-up and the eval are paid
    # once, outside the timed region. Each call is bracketed by $EPOCHREALTIME and `times`
    # (the shell's own CPU, which includes the function's routing, plus its children's).
    script = f"""
eval "$SDB_INIT"
exec 3>"{log}"
for ((i = 0; i < {runs}; i++)); do
    echo "B real $EPOCHREALTIME" >&3; times >&3
    command docker ps >/dev/null
    echo "E real $EPOCHREALTIME" >&3; times >&3
    echo "B function $EPOCHREALTIME" >&3; times >&3
    docker ps >/dev/null
    echo "E function $EPOCHREALTIME" >&3; times >&3
done
"""
    run(["bash", "-c", script], env)
    samples = _shell_samples(log.read_text())
    medians = {case: Timing(statistics.median(w for w, _ in values[WARMUP:]),
                            statistics.median(c for _, c in values[WARMUP:]))
               for case, values in samples.items()}
    ratio = medians["function"] / medians["real"]
    table([
        ["real docker ps (command docker ps, same shell)", ms2(medians["real"]), ""],
        ["docker ps through the shell function", ms2(medians["function"]), ""],
        ["shell function ratio (function / real docker ps)", ratio2(ratio),
         f"<= {SHELL_GOAL} {verdict2(ratio, SHELL_GOAL)}"],
        ["function's docker ps starts safe-docker",
         "no" if bypass.returncode == 0 else "yes", "no"],
    ], header=(f"figure (one bash process, interleaved, median of {RUNS})", "wall / cpu",
               "goal"))


TIMES_LINE = re.compile(r"^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$")


def _shell_samples(text: str) -> dict[str, list[tuple[float, float]]]:
    """(wall, cpu) per call from the log: B/E lines with $EPOCHREALTIME, each followed by
    `times` (shell user sys, then children user sys)."""
    samples: dict[str, list[tuple[float, float]]] = {"real": [], "function": []}
    lines = text.splitlines()
    begin: tuple[float, float] = (0.0, 0.0)
    for n, line in enumerate(lines):
        if not line.startswith(("B ", "E ")):
            continue
        mark, case, stamp = line.split()
        cpu = 0.0
        for times_line in lines[n + 1:n + 3]:
            match = TIMES_LINE.match(times_line.strip())
            if match:
                cpu += (int(match.group(1)) * 60 + float(match.group(2))
                        + int(match.group(3)) * 60 + float(match.group(4)))
        point = (float(stamp.replace(",", ".")), cpu)
        if mark == "B":
            begin = point
        else:
            samples[case].append((point[0] - begin[0], point[1] - begin[1]))
    return samples


def main() -> int:
    started = time.perf_counter()
    print(f"safe-docker passthrough benchmark; python {sys.version.split()[0]}, "
          f"{RUNS} runs per figure; {load_note()}")
    with bench_world() as bench:
        rows = ps_ratio(bench)
        rows += shim_overhead(bench)
        table(rows, header=("figure", "wall / cpu", "goal"))
        startup_breakdown(bench)
        import_summary(bench)
        shell_function(bench)
    print(f"\n(passthrough benchmark took {time.perf_counter() - started:.0f} s; {load_note()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
