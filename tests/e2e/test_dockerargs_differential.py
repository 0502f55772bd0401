"""Differential test of safedocker._docker.argv against the real docker CLI and dockerd.

Seeded random ``create`` lines (global flags, every value flag the daemon accepts at
create time in every spelling, combined shorts, ``--``, odd image names). For each line:
the IMAGE we find is the ``.Config.Image`` docker records, and ``docker create`` of
``rebuild(<another name of the same image>)`` yields the same Config and HostConfig.
Flags the daemon refuses at create time (``--ip``, ``--link``, ``--gpus``...) are covered by
the unit tests only.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.argv import Invocation, parse
from safedocker.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import World

LINES = 520
SEED = 20250528

# (long, short, values, bool). Values are valid for dockerd 20.10 with --bridge=none and
# for combination with each other (conflicting pairs are kept out of the pool).
Spec = tuple[str, str | None, tuple[str, ...], bool]
POOL: tuple[Spec, ...] = (
    ("attach", "a", ("stdout", "stderr", "STDIN"), False),
    ("device-cgroup-rule", None, ("c 1:3 mr", "b 7:* rmw"), False),
    ("env", "e", ("A=1", "B=two words", "C=", "D=x=y", "-E=1"), False),
    ("entrypoint", None, ("/bin/sh", ""), False),
    ("group-add", None, ("123", "audio"), False),
    ("hostname", "h", ("box", "h-1.example"), False),
    ("domainname", None, ("example.org",), False),
    ("interactive", "i", (), True),
    ("label", "l", ("a=b", "com.example.x=1", "empty"), False),
    ("read-only", None, (), True),
    ("stop-signal", None, ("SIGUSR1", "9"), False),
    ("stop-timeout", None, ("5", "0"), False),
    ("sysctl", None, ("kernel.msgmax=65536", "kernel.shmmni=4096"), False),
    ("tty", "t", (), True),
    ("ulimit", None, ("nofile=1024:2048", "nproc=512"), False),
    ("user", "u", ("1000", "1000:1000", "root"), False),
    ("workdir", "w", ("/tmp", "/x y"), False),
    ("rm", None, (), True),
    ("cap-add", None, ("NET_ADMIN", "SYS_PTRACE"), False),
    ("cap-drop", None, ("MKNOD", "ALL"), False),
    ("privileged", None, (), True),
    ("security-opt", None, ("no-new-privileges", "label=disable"), False),
    ("dns-option", None, ("ndots:2",), False),
    ("dns-opt", None, ("timeout:3",), False),
    ("dns-search", None, ("example.org",), False),
    ("log-driver", None, ("json-file",), False),
    ("volume-driver", None, ("local",), False),
    ("tmpfs", None, ("/run", "/scratch:size=64k"), False),
    ("volume", "v", ("/tmp:/mnt:ro", "/tmp:/opt/x"), False),
    ("mount", None, ("type=tmpfs,dst=/m1", "type=bind,src=/tmp,dst=/m2,readonly"), False),
    ("health-cmd", None, ("true", "sh -c 'exit 0'"), False),
    ("health-interval", None, ("30s", "1m"), False),
    ("health-retries", None, ("3",), False),
    ("health-timeout", None, ("5s",), False),
    ("health-start-period", None, ("1s",), False),
    ("blkio-weight", None, ("500",), False),
    ("cpuset-cpus", None, ("0",), False),
    ("cpuset-mems", None, ("0",), False),
    ("cpu-period", None, ("100000",), False),
    ("cpu-quota", None, ("50000",), False),
    ("cpu-shares", "c", ("512", "1024"), False),
    ("memory", "m", ("64m", "100000000"), False),
    ("memory-reservation", None, ("32m",), False),
    ("memory-swappiness", None, ("10",), False),
    ("oom-kill-disable", None, (), True),
    ("oom-score-adj", None, ("100", "-5"), False),
    ("pids-limit", None, ("100",), False),
    ("cgroup-parent", None, ("sdargs",), False),
    ("ipc", None, ("private", "none", "shareable"), False),
    ("pid", None, ("host",), False),
    ("shm-size", None, ("64m",), False),
    ("runtime", None, ("runc",), False),
    ("init", None, (), True),
    ("pull", None, ("missing", "never"), False),
    ("quiet", "q", (), True),
    ("platform", None, ("linux",), False),
    ("disable-content-trust", None, (), True),
    ("publish-all", "P", (), True),
    ("gpus", None, ("all", "count=1"), False),
    ("ip", None, ("10.0.0.2",), False),
    ("link-local-ip", None, ("169.254.1.1",), False),
    ("publish", "p", ("80", "127.0.0.1:8080:80/udp"), False),
    ("expose", None, ("80", "7000-7001/udp"), False),
    ("add-host", None, ("a:1.2.3.4", "b.example:10.0.0.1"), False),
    ("dns", None, ("1.1.1.1",), False),
    ("device", None, ("/dev/null", "/dev/zero:/dev/z:r"), False),
    ("cgroupns", None, ("private", "host"), False),
    ("userns", None, ("host",), False),
    ("kernel-memory", None, ("10m",), False),
    ("blkio-weight-device", None, ("/dev/null:100",), False),
    ("device-read-bps", None, ("/dev/null:1mb",), False),
    ("device-write-bps", None, ("/dev/null:1mb",), False),
    ("device-read-iops", None, ("/dev/null:100",), False),
    ("device-write-iops", None, ("/dev/null:100",), False),
    ("log-opt", None, ("max-size=1m",), False),
    ("isolation", None, ("default",), False),
    ("use-api-socket", None, (), True),
    ("label-file", None, ("/dev/null",), False),
    ("volumes-from", None, ("sdargs-vfrom",), False),
    ("restart", None, ("no",), False),
    ("cpus", None, ("0.5",), False),
    ("no-healthcheck", None, (), True),
)
# Pairs docker refuses together: when the first is drawn, the others are dropped.
EXCLUSIVE = {
    "cpus": ("cpu-period", "cpu-quota"),
    "no-healthcheck": ("health-cmd", "health-interval", "health-retries", "health-timeout",
                       "health-start-period"),
}
# One of these per line (they write the same setting).
NETWORKS = (["--network", "none"], ["--net=none"], ["--network=host"], ["--net", "none"])
COMMANDS = (["sh"], ["sh", "-c", "echo hi"], ["echo", "--rm", "-d", "--", "x"], ["-x", "y"])


@dataclass(frozen=True)
class Images:
    names: tuple[str, ...]  # names of one image (tags and a digest reference)
    other: str  # yet another name of it, for the rebuilt line


@pytest.fixture(scope="module")
def images(world: World) -> Images:
    base = world.make_local_image("sdargs/base:1")
    names = [
        "sdargs/base:1",
        "sdargs/base",  # :latest, tagged below
        "localhost:5000/a/b:t",
        f"{world.registry}/x/y:z",
        "my__img-x.y/sub_a:v1.0-rc",
        "ubuntu",
        "docker.io/library/sdargs-alpine:3",
        "a.b-c_d__e:tag.with-dots_",
    ]
    for name in names[1:]:
        world.run_docker("tag", base, name)
    world.run_docker("push", f"{world.registry}/x/y:z")
    digests = json.loads(
        world.run_docker("image", "inspect", "-f", "{{json .RepoDigests}}", base).stdout
    )
    names.append(digests[0])
    world.run_docker("tag", base, "sdargs/other:1")
    world.run_docker("create", "--network", "none", "--name", "sdargs-vfrom", "-v", "/data",
                     base, "sh")
    return Images(tuple(names), "sdargs/other:1")


def _option(rng: random.Random, spec: Spec) -> list[str]:
    long, short, values, boolean = spec
    if boolean:
        forms = [[f"--{long}"], [f"--{long}=true"], [f"--{long}=1"]]
        if long != "disable-content-trust":  # =false would reach out to notary
            forms.append([f"--{long}=false"])
        if short:
            forms += [[f"-{short}"], [f"-{short}=true"]]
        return rng.choice(forms)
    value = rng.choice(values)
    forms = [[f"--{long}", value], [f"--{long}={value}"]]
    if short:
        forms += [[f"-{short}", value], [f"-{short}{value}"], [f"-{short}={value}"]]
    return rng.choice(forms)


def _combined_shorts(rng: random.Random) -> list[str]:
    bools = [s[1] for s in POOL if s[3] and s[1]]
    valued = [s for s in POOL if not s[3] and s[1]]
    letters = "".join(rng.sample(bools, rng.randint(1, len(bools))))
    if rng.random() < 0.6:
        spec = rng.choice(valued)
        value = rng.choice(spec[2])
        assert spec[1] is not None
        if rng.random() < 0.5:
            return [f"-{letters}{spec[1]}", value]
        return [f"-{letters}{spec[1]}{value}"]
    return [f"-{letters}"]


def _globals(rng: random.Random, world: World) -> list[str]:
    host = world.docker_host
    choices = [
        ["-D"], ["--debug"], ["-l", "error"], ["--log-level=error"], ["-lerror"],
        ["-Dl", "error"], ["--config", str(world.root / "docker-config")], ["--tls=false"],
        ["-v"], ["-h"],
    ]
    parts = rng.sample(choices, rng.randint(0, 3))
    if rng.random() < 0.3:  # docker takes one -H only
        parts.append(rng.choice([["-H", host], [f"--host={host}"], [f"-H{host}"], ["-DH", host]]))
        rng.shuffle(parts)
    if parts and rng.random() < 0.15:
        # docker drops one "--" here; after it cobra's Traverse guesses flag values by
        # shape and rejects "-Dl error" (a unit test covers that), so keep those before.
        at = rng.randint(0, len(parts))
        parts = [*parts[:at], ["--"], *[p for p in parts[at:] if p[0] not in ("-Dl", "-DH")]]
    return [tok for part in parts for tok in part]


def generate(rng: random.Random, world: World, images: Images, i: int, tmp: Path) -> list[str]:
    command = rng.choice(
        [["create"]] * 6 + [["container", "create"]] * 3 + [["container", "--help=false", "create"]]
    )
    options: list[list[str]] = [rng.choice(NETWORKS), ["--name", f"sdargs-{i}"]]
    drawn = rng.sample(POOL, rng.randint(0, 14))
    names = {spec[0] for spec in drawn}
    dropped = {other for name in names for other in EXCLUSIVE.get(name, ())}
    options += [_option(rng, spec) for spec in drawn if spec[0] not in dropped]
    if rng.random() < 0.1:
        options.append(["--memory-swap", "128m", "-m", "64m"])
    if rng.random() < 0.4:
        options.append(_combined_shorts(rng))
    if rng.random() < 0.2:
        options.append(["--cidfile", str(tmp / f"cid-{i}")])
    if rng.random() < 0.2:
        env_file = tmp / "env.list"
        options.append(["--env-file", str(env_file)])
    rng.shuffle(options)
    tail = [rng.choice(images.names), *rng.choice(COMMANDS)]
    if rng.random() < 0.2:
        tail.insert(0, "--")
    return [*_globals(rng, world), *command, *[t for o in options for t in o], *tail]


VARYING_CONFIG = ("Image", "Hostname")


def _config(world: World, argv: list[str]) -> dict[str, object]:
    created = world.run_docker(*argv, check=False)
    if created.returncode != 0:
        raise AssertionError(f"docker {argv} failed: {created.stderr.decode()}")
    cid = created.stdout.decode().split()[-1]
    out = world.run_docker("inspect", cid).stdout
    world.run_docker("rm", "-f", "-v", cid)
    info = json.loads(out)[0]
    host_config = info["HostConfig"]
    # docker's CLI keeps -v binds in a Go map: their order is not deterministic.
    if host_config.get("Binds"):
        host_config["Binds"] = sorted(host_config["Binds"])
    return {"Config": info["Config"], "HostConfig": host_config}


def _shape(inv: Invocation) -> tuple[object, ...]:
    """Options and IMAGE position relative to the end of the command words."""
    base = inv.args_index
    assert inv.image_index is not None
    options = [(o.name, o.value, o.start - base, o.end - base) for o in inv.options]
    return (inv.image_index - base, options)


def _check(world: World, images: Images, argv: list[str], tmp: Path) -> str | None:
    try:
        return _compare(world, images, argv, tmp)
    except (AssertionError, UsageError) as e:
        return f"{argv}: {e}"


def _compare(world: World, images: Images, argv: list[str], tmp: Path) -> str | None:
    inv = parse(argv)
    # The same line under the run grammar (run-only flags aside) parses the same way.
    as_run = parse(
        [*argv[: inv.command_index], "run", *argv[inv.args_index :]]
    )
    if _shape(as_run) != _shape(inv):
        return f"run grammar differs for {argv}"
    first = _config(world, argv)
    config = first["Config"]
    assert isinstance(config, dict)
    if config["Image"] != inv.image:
        return f"{argv}: parser found {inv.image!r}, docker used {config['Image']!r}"
    env = config.get("Env") or []
    missing = [v for v in inv.values("-e") if "=" in v and v not in env]
    if missing:
        return f"{argv}: env {missing} not in {env}"
    for cid in tmp.glob("cid-*"):
        cid.unlink(missing_ok=True)
    second = _config(world, inv.rebuild(images.other))
    second_config = second["Config"]
    assert isinstance(second_config, dict)
    if second_config["Image"] != images.other:
        return f"{argv}: rebuilt line used {second_config['Image']!r}"
    varying = ("Image",) if inv.has("--hostname") else VARYING_CONFIG
    for part in (first, second):
        part_config = part["Config"]
        assert isinstance(part_config, dict)
        for key in varying:
            part_config.pop(key, None)
    if first != second:
        return f"{argv}: rebuilt line gives another container:\n{first}\n{second}"
    return None


def test_parser_agrees_with_real_docker(world: World, images: Images, tmp_path: Path) -> None:
    (tmp_path / "env.list").write_text("FROM_FILE=1\n")
    rng = random.Random(SEED)  # noqa: S311 - reproducible test data
    lines = [generate(rng, world, images, i, tmp_path / f"t{i}") for i in range(LINES)]
    for i in range(LINES):
        (tmp_path / f"t{i}").mkdir()
        (tmp_path / f"t{i}" / "env.list").write_text("FROM_FILE=1\n")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [
            f
            for f in pool.map(
                lambda item: _check(world, images, item[1], tmp_path / f"t{item[0]}"),
                enumerate(lines),
            )
            if f
        ]
    world.run_docker("container", "prune", "-f")
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {LINES} lines differ:\n" + "\n".join(failures[:10])
    print(f"{LINES} lines agreed with docker in {elapsed:.1f}s")


def test_rebuild_runs_the_same_process(world: World, images: Images) -> None:
    """End to end once with `run`: a rebuilt line really runs, with its command intact."""
    argv = ["run", "--rm", "--network", "none", "-e", "X=1", images.names[0],
            "sh", "-c", "echo $X --rm"]
    inv = parse(argv)
    out = subprocess.run(
        [world.docker, *inv.rebuild(images.other, ["-e", "Y=2"])],
        env=world.docker_env(), capture_output=True, text=True, timeout=60, check=True,
    )
    assert out.stdout.strip() == "1 --rm"
