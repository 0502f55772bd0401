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
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

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
WARM_REQUESTS_GOAL = 1
PULL_GOAL = 1.5
POLICY_GOAL_MS = 5.0
PASSWORD = "pw"  # noqa: S105 - a throw-away key made for the benchmark
HEADER = ("figure", "value (wall / cpu)", "goal")

# Counts registry requests of one verification in a fresh process (the CLI's situation).
COUNT_SNIPPET = """
import json, sys, time
from safedocker.policy.config import load_config
from safedocker.reference import parse_reference
from safedocker.verify.verifier import Verifier
start = time.perf_counter()
kwargs = {}
if "cache" in getattr(Verifier, "__dataclass_fields__", {}):  # as the CLI opens it
    from safedocker.cache.store import Cache
    from safedocker.policy.paths import paths
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


def count_in_subprocess(image: str, env: dict[str, str]) -> dict[str, Any]:
    result = run([PYTHON, "-c", COUNT_SNIPPET, image], env)
    counts: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return counts


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
    from safedocker.cache.store import Cache
    from safedocker.policy.config import load_config
    from safedocker.policy.paths import paths
    from safedocker.reference import parse_reference
    from safedocker.verify.verifier import Verifier

    verifier = Verifier(load_config(), cache=Cache.open(paths().cache_dir))  # as the CLI does
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
    if not warm.get("accepted"):
        why = warm.get("error") or "; ".join(warm.get("reasons", []))
        print(f"warm path: a second verify with the same cache was refused ({why[:200]})")
        return []
    timing = interleaved_medians({"warm": ([SAFE_DOCKER, "verify", image], env)}, runs=RUNS)["warm"]
    return [
        ["warm verify: registry requests", str(warm["requests"]),
         f"<= {WARM_REQUESTS_GOAL} {verdict(warm['requests'], WARM_REQUESTS_GOAL)} "
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


def _rules(count: int, registry: str, globs: float) -> list[dict[str, Any]]:
    """``count`` distinct scopes (a share ``globs`` of them globs); the real one last."""
    rules: list[dict[str, Any]] = []
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


def _write_config(base: Path, target: Path, rules: list[dict[str, Any]]) -> None:
    """The base config's keys and settings with ``rules`` as its policy."""
    shutil.copytree(base, target)
    import tomli_w  # a dependency of safe-docker

    document = tomllib.loads((base / "config.toml").read_text())
    document["policy"] = rules
    (target / "config.toml").write_text(tomli_w.dumps(document))


def _in_process(config_dir: str, image: str, iterations: int = 30) -> tuple[float, float, str]:
    """Median seconds of load_config() + decide(), and of decide() alone."""
    from safedocker.policy.config import load_config
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
        shown = ms(both) if label == "1 rule" else f"{ms(both)} (+{added:.1f} ms)"
        rows.append([f"{label}: load_config()+decide() in-process", shown, goal])
        rows.append([f"{label}: decide() alone (-> {action})", ms(alone), ""])
        added_cli = (cli[label].wall - cli["1 rule"].wall) * 1000
        rows.append([f"{label}: safe-docker policy check CLI", ms2(cli[label]),
                     "" if label == "1 rule" else f"(+{added_cli:.1f} ms wall)"])
    return rows


# --- keyless -----------------------------------------------------------------------------

KEYLESS_ROOT = "bench-sigstore"
KEYLESS_ISSUER = "https://issuer.example"
KEYLESS_SUBJECT = "dev@example.com"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _attach_sig_layer(client: object, repository: str, digest: str,
                      layer: tuple[dict[str, str], str, bytes]) -> None:
    """The cosign ``sha256-<hex>.sig`` manifest with one signature layer (as
    tests/e2e/test_keyless.py attaches it)."""
    from safedocker.reference import Digest

    annotations, media_type, blob = layer
    config = b"{}"
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": str(client.push_blob(repository, config)),  # type: ignore[attr-defined]
                   "size": len(config)},
        "layers": [{"mediaType": media_type,
                    "digest": str(client.push_blob(repository, blob)),  # type: ignore[attr-defined]
                    "size": len(blob), "annotations": annotations}],
    }
    client.push_manifest(repository, Digest.parse(digest).tag_prefix + ".sig",  # type: ignore[attr-defined]
                         json.dumps(manifest).encode(), OCI_MANIFEST)


def _attach_bundle(client: object, repository: str, digest: str, bundle: bytes) -> None:
    """One referrer artifact holding ``bundle``, listed in the tag-schema index
    ``sha256-<hex>`` (distribution 2.8 has no referrers API)."""
    from safedocker.oci.media import OCI_INDEX
    from safedocker.reference import Digest
    from tests.sigstore_world import BUNDLE_V03, SigstoreWorld

    subject = client.get_manifest(repository, Digest.parse(digest))  # type: ignore[attr-defined]
    raw, config = SigstoreWorld.referrer_manifest(bundle, digest, len(subject.raw),
                                                  subject.media_type)
    client.push_blob(repository, config)  # type: ignore[attr-defined]
    client.push_blob(repository, bundle)  # type: ignore[attr-defined]
    pushed = client.push_manifest(repository, Digest.of(raw), raw, OCI_MANIFEST)  # type: ignore[attr-defined]
    entry = {"mediaType": OCI_MANIFEST, "digest": str(pushed), "size": len(raw),
             "artifactType": BUNDLE_V03, "annotations": json.loads(raw)["annotations"]}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    client.push_manifest(repository, Digest.parse(digest).tag_prefix,  # type: ignore[attr-defined]
                         json.dumps(index).encode(), OCI_INDEX)


def prepare_keyless(bench: Bench) -> tuple[dict[str, str], str]:
    """Two keyless-signed images (classic ``.sig`` with certificate; referrer bundle) and a
    config dir with the private Sigstore's trusted root imported and an identities rule."""
    from safedocker.oci.client import RegistryClient
    from tests.sigstore_world import SigstoreWorld

    world = bench.world
    registry = world.registry  # type: ignore[attr-defined]
    sigstore = SigstoreWorld()
    config_dir = Path(bench.fresh_dir("keyless")) / "config"
    config_dir.mkdir()
    root_file = config_dir.parent / "trusted_root.json"
    root_file.write_bytes(sigstore.trusted_root_json())
    env = bench.safe_env(SAFE_DOCKER_CONFIG_DIR=str(config_dir))
    run([SAFE_DOCKER, "trust-root", "import", str(root_file), "--name", KEYLESS_ROOT], env)
    (config_dir / "config.toml").write_text("\n".join([
        "[[policy]]",
        f'scope = "{registry}/keyless/*"',
        'action = "verify"',
        f'identities = [{{ issuer = "{KEYLESS_ISSUER}", subject = "{KEYLESS_SUBJECT}" }}]',
        'tlog = "required"',
        f'trust_root = "{KEYLESS_ROOT}"',
    ]) + "\n")
    images = {"classic": world.push_image("keyless/classic", "v1"),  # type: ignore[attr-defined]
              "bundle": world.push_image("keyless/bundle", "v1")}  # type: ignore[attr-defined]
    with RegistryClient(registry) as client:
        leaf = sigstore.issue(email=KEYLESS_SUBJECT, issuer=KEYLESS_ISSUER)
        image = images["classic"]
        payload = sigstore.simple_signing(image.digest, image.repo)
        _attach_sig_layer(client, "keyless/classic", image.digest,
                          sigstore.cosign_layer(leaf, payload, with_chain=True, with_set=True))
        image = images["bundle"]
        _attach_bundle(client, "keyless/bundle", image.digest,
                       sigstore.bundle(leaf, image.digest))
    tagged = {kind: image.tagged for kind, image in images.items()}
    for image in tagged.values():  # must pass before anything is timed
        run([SAFE_DOCKER, "verify", image],
            bench.safe_env(SAFE_DOCKER_CONFIG_DIR=str(config_dir),
                           SAFE_DOCKER_CACHE_DIR=bench.fresh_dir("cache-keyless")))
    return tagged, str(config_dir)


def _imports_sigstore(argv: list[str], env: dict[str, str]) -> bool:
    """Whether ``python -X importtime argv`` imports any sigstore module."""
    stderr = run([PYTHON, "-X", "importtime", *argv], env).stderr.decode()
    names = (line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()
             if line.startswith("import time:"))
    return any(n == "sigstore" or n.startswith(("sigstore.", "sigstore_")) for n in names)


def keyless(bench: Bench, key_image: str) -> list[list[str]]:
    """Keyless cold verify (classic ``.sig`` + certificate, and referrer bundle): registry
    requests and CLI time; the sigstore import cost; that key-only verify skips sigstore."""
    section("keyless (Fulcio-like certificate + identity, private Sigstore) cold verify")
    images, config_dir = prepare_keyless(bench)

    def env(cache: str | None = None) -> dict[str, str]:
        return bench.safe_env(SAFE_DOCKER_CONFIG_DIR=config_dir,
                              SAFE_DOCKER_CACHE_DIR=cache or bench.fresh_dir("cache-keyless"))

    rows: list[list[str]] = []
    for kind, image in images.items():
        cache = bench.fresh_dir("cache-keyless")
        cold = count_in_subprocess(image, env(cache))
        warm = count_in_subprocess(image, env(cache))
        if not cold.get("accepted") or not warm.get("accepted"):
            why = cold.get("error") or "; ".join(cold.get("reasons", []))
            print(f"keyless {kind}: refused ({why[:200]}); not measured")
            return []
        sig = "yes" if any(m.split(".")[0] == "sigstore" for m in cold["modules"]) else "no"
        rows.append([f"keyless {kind}: cold verify registry requests", str(cold["requests"]),
                     f"<= {REQUESTS_GOAL} {verdict(cold['requests'], REQUESTS_GOAL)}"])
        rows.append([f"keyless {kind}: warm verify registry requests", str(warm["requests"]),
                     f"<= 1 {verdict(warm['requests'], 1)}"])
        rows.append([f"keyless {kind}: verify imports sigstore", sig, ""])
    # CLI cold verify, a fresh cache each run, the two kinds interleaved.
    samples: dict[str, list[tuple[float, float]]] = {kind: [] for kind in images}
    for i in range(RUNS + 1):
        for kind, image in images.items():
            measured = time_once([SAFE_DOCKER, "verify", image], env())
            if i:
                samples[kind].append(measured)
    for kind in images:
        cli = Timing(statistics.median(w for w, _ in samples[kind]),
                     statistics.median(c for _, c in samples[kind]))
        rows.append([f"keyless {kind}: cold verify CLI (median of {RUNS})", ms2(cli), ""])
    # What importing sigstore costs, and that a key-only verify does not pay it.
    plain = bench.safe_env()
    timed = interleaved_medians(
        {"bare": ([PYTHON, "-c", "pass"], plain),
         "sigstore": ([PYTHON, "-c", "import sigstore.verify, sigstore.models"], plain)},
        runs=max(5, RUNS // 2), warmup=1)
    rows.append(["import sigstore.verify, sigstore.models (cpu over bare python)",
                 ms(timed["sigstore"].cpu - timed["bare"].cpu),
                 f"(wall +{(timed['sigstore'].wall - timed['bare'].wall) * 1000:.1f} ms)"])
    key_only = _imports_sigstore([SAFE_DOCKER, "verify", key_image],
                                 bench.safe_env(SAFE_DOCKER_CACHE_DIR=bench.fresh_dir("cache")))
    rows.append(["key-only verify imports sigstore (-X importtime)",
                 "yes" if key_only else "no", "no " + ("OVER GOAL" if key_only else "ok")])
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
        table(rows[:1] + warm[:1] + pull[-1:] + [r for r in policy if "added" in r[2]]
              + [r for r in keyless_rows if r[2].startswith(("<", "no"))], header=HEADER)
    print(f"\n(verify benchmark took {time.perf_counter() - started:.0f} s; {load_note()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
