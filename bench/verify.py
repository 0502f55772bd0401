"""Verification cost: registry requests, verify wall time, pull overhead, policy scale.

Run from the repository root: ``python -m bench.verify`` (or ``make bench``).
Prints figures and goals; never fails on timing. See bench/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import tomllib

from bench.common import (
    PYTHON,
    SAFE_DOCKER,
    Bench,
    Timing,
    bench_world,
    interleaved_medians,
    load_note,
    ms,
    ms2,
    ratio2,
    run,
    section,
    table,
    time_once,
    verdict,
    verdict2,
)

RUNS = int(os.environ.get("BENCH_VERIFY_RUNS", "10"))
REQUESTS_GOAL = 4
PULL_GOAL = 1.5
POLICY_GOAL_MS = 5.0
PASSWORD = "pw"  # noqa: S105 - a throw-away key made for the benchmark
HEADER = ("figure", "value (wall / cpu)", "goal")

# Counts registry requests of one verification in a fresh process (the CLI's situation).
COUNT_SNIPPET = """
import json, sys, time
from safedocker.config import load_config
from safedocker.reference import parse_reference
from safedocker.verify import Verifier
start = time.perf_counter()
kwargs = {}
if "cache" in getattr(Verifier, "__dataclass_fields__", {}):  # as the CLI opens it
    from safedocker.cache import Cache
    from safedocker.config import paths
    kwargs["cache"] = Cache.open(paths().cache_dir)
v = Verifier(load_config(), **kwargs)
try:
    verdict = v.verify(parse_reference(sys.argv[1]))
    out = {"accepted": verdict.accepted, "reasons": list(verdict.reasons)}
except Exception as e:  # report, do not hide
    out = {"accepted": False, "error": f"{e.__class__.__name__}: {e}"}
out["requests"] = v.requests_made
out["seconds"] = time.perf_counter() - start
out["modules"] = sorted(m for m in sys.modules
                        if m.split(".")[0] == "sigstore" or m.startswith("safedocker."))
print(json.dumps(out))
"""


def count_in_subprocess(image: str, env: dict[str, str]) -> dict:
    result = run([PYTHON, "-c", COUNT_SNIPPET, image], env)
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


# --- set-up -------------------------------------------------------------------------------


def prepare(bench: Bench) -> tuple[str, Path]:
    """A signed single-platform image, a trusted key and a policy for REGISTRY/bench/*."""
    keys = Path(bench.fresh_dir("keys"))
    env = bench.safe_env(COSIGN_PASSWORD=PASSWORD)
    run([SAFE_DOCKER, "keys", "generate", "bench", "--dir", str(keys)], env)
    registry = bench.world.registry  # type: ignore[attr-defined]
    run([SAFE_DOCKER, "policy", "add", f"{registry}/bench/*", "--key", "bench"], env)
    image = bench.world.push_image("bench/app", "v1").tagged  # type: ignore[attr-defined]
    run([SAFE_DOCKER, "sign", "--key", str(keys / "bench.key"), image], env)
    run([SAFE_DOCKER, "verify", image], env)  # must pass before anything is timed
    return image, keys


# --- cold verify -------------------------------------------------------------------------


def cold_verify(bench: Bench, image: str) -> list[list[str]]:
    section("cold verify (nothing cached)")
    # In-process, as the brief asks: env set in os.environ before safedocker is imported.
    os.environ.update(bench.safe_env(SAFE_DOCKER_CACHE_DIR=bench.fresh_dir("cache-cold")))
    start = time.perf_counter()
    from safedocker.config import load_config
    from safedocker.reference import parse_reference
    from safedocker.verify import Verifier

    kwargs = {}
    if "cache" in getattr(Verifier, "__dataclass_fields__", {}):  # as the CLI opens it
        from safedocker.cache import Cache
        from safedocker.config import paths

        kwargs["cache"] = Cache.open(paths().cache_dir)
    verifier = Verifier(load_config(), **kwargs)
    verdict_ = verifier.verify(parse_reference(image))
    first = time.perf_counter() - start
    requests = verifier.requests_made
    if not verdict_.accepted:
        print(f"cold verify refused: {verdict_.reasons}")

    def fresh_cache_env() -> dict[str, str]:
        return bench.safe_env(SAFE_DOCKER_CACHE_DIR=bench.fresh_dir("cache-cold"))

    samples = [time_once([SAFE_DOCKER, "verify", image], fresh_cache_env())
               for _ in range(RUNS + 1)][1:]
    cli = Timing(statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples))
    return [
        ["cold verify: registry requests (in-process)", str(requests),
         f"<= {REQUESTS_GOAL} {verdict(requests, REQUESTS_GOAL)}"],
        ["cold verify: in-process, imports included", ms(first), ""],
        [f"cold verify: safe-docker verify CLI (median of {RUNS})", ms2(cli), ""],
    ]


# --- warm path ---------------------------------------------------------------------------


def warm_path(bench: Bench, image: str) -> list[list[str]]:
    """Second verification with the same cache dir, in a fresh process each time."""
    section("warm path (cached material)")
    env = bench.safe_env(SAFE_DOCKER_CACHE_DIR=bench.fresh_dir("cache-warm"))
    cold = count_in_subprocess(image, env)
    warm = count_in_subprocess(image, env)
    if not warm.get("accepted") or warm["requests"] >= cold["requests"]:
        print(f"warm path: not yet measured (a second verify with the same cache made "
              f"{warm['requests']} requests, cold {cold['requests']}: no cached material used)")
        return []
    timing = interleaved_medians({"warm": ([SAFE_DOCKER, "verify", image], env)}, runs=RUNS)["warm"]
    return [
        ["warm verify: registry requests", str(warm["requests"]),
         f"(cold: {cold['requests']})"],
        [f"warm verify: safe-docker verify CLI (median of {RUNS})", ms2(timing), ""],
    ]


# --- pull --------------------------------------------------------------------------------


def pull_ratio(bench: Bench, image: str) -> list[list[str]]:
    section(f"pull of a present, verified image (median of {RUNS}, interleaved)")
    env = bench.safe_env()  # one cache dir throughout: whatever safe-docker keeps, it keeps
    run([SAFE_DOCKER, "pull", image], env)
    medians = interleaved_medians(
        {"docker pull": ([bench.docker, "pull", image], bench.docker_env()),
         "safe-docker pull": ([SAFE_DOCKER, "pull", image], env)},
        runs=RUNS, warmup=1,
    )
    ratio = medians["safe-docker pull"] / medians["docker pull"]
    return [
        ["docker pull IMAGE", ms2(medians["docker pull"]), ""],
        ["safe-docker pull IMAGE", ms2(medians["safe-docker pull"]), ""],
        ["pull ratio (safe-docker / docker)", ratio2(ratio),
         f"<= {PULL_GOAL} {verdict2(ratio, PULL_GOAL)}"],
    ]


# --- policy scale ------------------------------------------------------------------------


def _rules(count: int, registry: str, globs: float) -> list[dict]:
    """``count`` distinct scopes (a share ``globs`` of them globs); the real one last."""
    rules = []
    n_globs = int((count - 1) * globs)
    for i in range(count - 1):
        if i < n_globs:
            scope = (f"{registry}/team{i}/*", f"registry{i}.example.com/*/app{i}",
                     f"docker.io/org{i}/img*", f"ghcr.io/proj{i}/*:v*")[i % 4]
        else:
            scope = (f"docker.io/vendor{i}/image{i}", f"quay.io/ns{i}",
                     f"registry{i}.example.com", f"docker.io/library/base{i}:1.{i}")[i % 4]
        rules.append({"scope": scope, "action": ("accept", "reject")[i % 2]})
    rules.append({"scope": f"{registry}/bench/*", "action": "verify", "keys": ["bench"]})
    return rules


def _write_config(base: Path, target: Path, rules: list[dict]) -> None:
    """The base config's keys and settings with ``rules`` as its policy."""
    shutil.copytree(base, target)
    import tomli_w  # a dependency of safe-docker

    document = tomllib.loads((base / "config.toml").read_text())
    document["policy"] = rules
    (target / "config.toml").write_text(tomli_w.dumps(document))


def _in_process(config_dir: str, image: str, iterations: int = 30) -> tuple[float, float, str]:
    """Median seconds of load_config() + decide(), and of decide() alone."""
    from safedocker.config import load_config
    from safedocker.reference import parse_reference

    os.environ["SAFE_DOCKER_CONFIG_DIR"] = config_dir
    ref = parse_reference(image)
    both, alone = [], []
    action = ""
    for _ in range(iterations):
        start = time.perf_counter()
        config = load_config()
        decision = config.policy.decide(ref)
        middle = time.perf_counter()
        config.policy.decide(ref)
        end = time.perf_counter()
        both.append(middle - start)
        alone.append(end - middle)
        action = decision.action.value if decision.action else "unmatched"
    return statistics.median(both), statistics.median(alone), action


def policy_scale(bench: Bench, image: str) -> list[list[str]]:
    section("policy decision: 1 rule vs 1,000 rules")
    registry = bench.world.registry  # type: ignore[attr-defined]
    base = Path(bench.dirs["SAFE_DOCKER_CONFIG_DIR"])
    variants = {"1 rule": _rules(1, registry, 0.0),
                "1,000 rules (40% globs)": _rules(1000, registry, 0.4),
                "1,000 rules (all globs)": _rules(1000, registry, 1.0)}
    dirs = {}
    for label, rules in variants.items():
        target = Path(bench.fresh_dir("policy")) / "config"
        _write_config(base, target, rules)
        dirs[label] = str(target)
    saved = os.environ.get("SAFE_DOCKER_CONFIG_DIR")
    figures = {label: _in_process(d, image) for label, d in dirs.items()}
    if saved is not None:
        os.environ["SAFE_DOCKER_CONFIG_DIR"] = saved
    cli = interleaved_medians(
        {label: ([SAFE_DOCKER, "policy", "check", image],
                 bench.safe_env(SAFE_DOCKER_CONFIG_DIR=d)) for label, d in dirs.items()},
        runs=RUNS, warmup=1,
    )
    one_both, one_alone, _ = figures["1 rule"]
    rows = []
    for label, (both, alone, action) in figures.items():
        added = (both - one_both) * 1000
        goal = "" if label == "1 rule" else (
            f"< {POLICY_GOAL_MS:.0f} ms added {verdict(added, POLICY_GOAL_MS, below=True)}")
        rows.append([f"{label}: load_config()+decide() in-process", ms(both), goal])
        rows.append([f"{label}: decide() alone (-> {action})", ms(alone), ""])
        added_cli = (cli[label].wall - cli["1 rule"].wall) * 1000
        rows.append([f"{label}: safe-docker policy check CLI", ms2(cli[label]),
                     "" if label == "1 rule" else f"(+{added_cli:.1f} ms wall)"])
    return rows


# --- keyless -----------------------------------------------------------------------------


def keyless(bench: Bench, image: str) -> list[list[str]]:
    """Try an identities-only rule; measure only if a keyless code path actually runs."""
    section("keyless (Fulcio certificate + identity) cold verify, sigstore import cost")
    registry = bench.world.registry  # type: ignore[attr-defined]
    target = Path(bench.fresh_dir("keyless")) / "config"
    rule = {"scope": f"{registry}/bench/*", "action": "verify",
            "identities": [{"issuer": "https://token.actions.githubusercontent.com",
                            "subject_regexp": "^https://github.com/example/"}]}
    _write_config(Path(bench.dirs["SAFE_DOCKER_CONFIG_DIR"]), target, [rule])
    env = bench.safe_env(SAFE_DOCKER_CONFIG_DIR=str(target),
                         SAFE_DOCKER_CACHE_DIR=bench.fresh_dir("cache-keyless"))
    tried = count_in_subprocess(image, env)
    markers = ("keyless", "fulcio", "bundle", "x509", "certificate")
    keyless_modules = [m for m in tried["modules"]
                       if m.split(".")[0] == "sigstore" or any(w in m for w in markers)]
    if not keyless_modules:
        why = tried.get("error") or "; ".join(tried.get("reasons", [])) or "accepted"
        print("keyless cold verify: not yet measured (an identities-only rule ran no keyless "
              f"code: {why[:160]})")
        print("sigstore import cost: not yet measured (safe-docker does not import sigstore)")
        return []
    # The image carries only a key signature, so the verdict is a refusal: the figures
    # are the cost of looking for and checking keyless material.
    samples = [time_once([SAFE_DOCKER, "verify", image], env, check=False) for _ in range(RUNS)]
    cli = Timing(statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples))
    rows = [["keyless cold verify: registry requests", str(tried["requests"]),
             f"<= {REQUESTS_GOAL} {verdict(tried['requests'], REQUESTS_GOAL)}"],
            [f"keyless cold verify: CLI (median of {RUNS}, key-signed image)", ms2(cli), ""]]
    top = sorted({m.split(".")[0] for m in keyless_modules if m.startswith("sigstore")})
    if top:
        code = "import " + ", ".join(m for m in tried["modules"] if m.startswith("sigstore"))
        timed = interleaved_medians({"bare": ([PYTHON, "-c", "pass"], env),
                                     "sigstore": ([PYTHON, "-c", code], env)}, runs=5, warmup=1)
        rows.append(["sigstore import cost (cpu over bare python)",
                     ms(timed["sigstore"].cpu - timed["bare"].cpu), ""])
    else:
        rows.append(["sigstore import cost", "n/a (keyless path does not import sigstore)", ""])
    return rows


def main() -> int:
    started = time.perf_counter()
    print(f"safe-docker verify benchmark; python {sys.version.split()[0]}, {RUNS} runs per "
          f"CLI figure; {load_note()}")
    with bench_world() as bench:
        image, _ = prepare(bench)
        print(f"image: {image} (signed with a generated key, policy REGISTRY/bench/* -> bench)")
        rows = cold_verify(bench, image)
        table(rows, header=HEADER)
        warm = warm_path(bench, image)
        if warm:
            table(warm, header=HEADER)
        pull = pull_ratio(bench, image)
        table(pull, header=HEADER)
        policy = policy_scale(bench, image)
        table(policy, header=HEADER)
        keyless_rows = keyless(bench, image)
        if keyless_rows:
            table(keyless_rows, header=HEADER)
        section("summary")
        table(rows[:1] + warm + pull[-1:] + [r for r in policy if "added" in r[2]]
              + keyless_rows, header=HEADER)
    print(f"\n(verify benchmark took {time.perf_counter() - started:.0f} s; {load_note()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
