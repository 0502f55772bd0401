"""Flag values: safedocker._docker.argv refuses what the real docker CLI's flag parsing refuses.

The docker CLI is run against a daemon socket that does not exist, so its stderr says where
it stopped: ``invalid argument`` (a flag's Set refused the value), a later check of its
own, or ``Cannot connect`` (the line was fine and docker would now talk to the daemon).

* Every value in AGREED is judged the same by docker 20.10 and 28 (go-units and
  docker/cli changed their size and add-host rules in between); for those, docker's flag
  parsing and ours refuse exactly the same values.
* For every value (AGREED and NEWER), a value we refuse never reaches docker's daemon
  connection: we refuse nothing that the installed docker would run with.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.argv import parse
from safedocker.errors import UsageError

if TYPE_CHECKING:
    from tests.world import World

AGREED: dict[str, tuple[str, ...]] = {
    "attach": ("stdin", "STDOUT", "StdErr", "in", "", "stdin ", "all"),
    "memory": ("1G", "1g", "1gb", "1gib", "1 g", "1.5m", "-1", "0", "invalid", "a128m", "128m",
               "1b", "1bb", "1kib", "1kbb", "1x", ".", " ", "1e", "inf", "nan", "0b1"),
    "memory-swap": ("-1", "-2", "1g", "-1g", ""),
    "shm-size": ("", "64m", "a128m"),
    "kernel-memory": ("10m", "x"),
    "stop-timeout": ("0", "10", "-1", "0x10", "0o17", "0b101", "017", "08", "1_000", "1__0",
                     "_1", "+5", "-0x10", "9223372036854775807", "9223372036854775808",
                     "-9223372036854775808", "-9223372036854775809", "", "1.5", " 1", "0x"),
    "blkio-weight": ("0", "500", "65535", "65536", "-1", "+1", "0x10", "1_0"),
    "cpu-shares": ("512", "x"),
    "memory-swappiness": ("-1", "10", "x"),
    "oom-score-adj": ("-1000", "x"),
    "pids-limit": ("-1", "x"),
    "health-retries": ("3", "x"),
    "health-interval": ("0", "1s", "1.5s", "1.s", ".5s", ".s", "s", "1", "00", "+1s", "1h2m3s",
                        "1us", "1\u00b5s", "1\u03bcs", "1ns", "1ms", "1d", "1sm", "", "-",
                        "+0", "9223372036s", "9223372037s", "1S"),
    "dns": ("", "1.1.1.1", "::1", " 8.8.8.8", "x"),
    "env": ("A=1", "=x", "=", "A", ""),
    "label": ("a=b", "a", "=b", "", "  =b", "a b=c", "a\tb", " a=b", "a=b c"),
    "link": ("a", "a:b", "a:b:c", "", ":"),
    "sysctl": ("net.x=1", "net.x", "kernel.sem=1", "kernel.foo=1", "fs.mqueue.x=1", "=1",
               "kernel.msgmax=", "vm.x=1"),
    "add-host": ("a:1.2.3.4", "a:::1", "a:host-gateway", ":1.2.3.4", "a", "a:b:1.2.3.4"),
    "device-cgroup-rule": ("c 1:3 mr", "b 7:* rmw", "a *:* r", "c 1:3 mrwm", "c 1:3",
                           "d 1:3 r", "c  1:3 r", "c 1:3 r ", "c x:3 r", "c :3 r"),
    "blkio-weight-device": ("/dev/sda:100", "/dev/sda:0", "/dev/sda:5", "/dev/sda:1001",
                            "/tmp:100", "/dev/sda", "/dev/sda:x", ":100", "/dev/sda:0x10"),
    "device-read-bps": ("/dev/sda:1mb", "/dev/sda:1", "/dev/sda:-1", "/dev/sda:x", "/x:1"),
    "device-write-iops": ("/dev/sda:100", "/dev/sda:-1", "/dev/sda:1k"),
}
# Judged differently by docker 20.10 and 28, or checked only after connecting (--ip).
NEWER: dict[str, tuple[str, ...]] = {
    "memory": ("1e3k", "0x1p3", "1_000", "1.", ".5m", "-0"),
    "add-host": ("a=1.2.3.4", "a=[::1]", "a=x", "a=[]"),
    "ip": ("", "1.2.3.4", " 1.2.3.4 ", "::1", "[::1]", "fe80::1%eth0", "01.2.3.4", "1.2.3", "x"),
    "ip6": ("", "::1", "x"),
}


def _cases(table: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    return [(flag, value) for flag, values in table.items() for value in values]


def _docker_says(world: World, flag: str, value: str) -> str:
    env = world.docker_env()
    env["DOCKER_HOST"] = f"unix://{world.root}/no-such-daemon.sock"
    proc = subprocess.run([world.docker, "create", f"--{flag}={value}", "sdargs-img"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    if "invalid argument" in proc.stderr:
        return "flag refused"
    if "Cannot connect" in proc.stderr or "Is the docker daemon running" in proc.stderr:
        return "would run"
    return "refused later"


def _we_refuse(flag: str, value: str) -> bool:
    try:
        parse(["create", f"--{flag}={value}", "sdargs-img"])
    except UsageError:
        return True
    return False


@pytest.fixture(scope="module")
def verdicts(world: World) -> dict[tuple[str, str], str]:
    cases = _cases(AGREED) + _cases(NEWER)
    with ThreadPoolExecutor(max_workers=4) as pool:
        said = list(pool.map(lambda case: _docker_says(world, *case), cases))
    return dict(zip(cases, said, strict=True))


def test_values_docker_parsing_refuses_are_refused_by_parse(
        verdicts: dict[tuple[str, str], str]) -> None:
    differ = [f"--{flag}={value!r}: docker {verdicts[flag, value]}, parse "
              f"{'refuses' if _we_refuse(flag, value) else 'accepts'}"
              for flag, value in _cases(AGREED)
              if (verdicts[flag, value] == "flag refused") != _we_refuse(flag, value)]
    assert not differ, "\n".join(differ)


def test_parse_refuses_no_value_docker_would_run_with(
        verdicts: dict[tuple[str, str], str]) -> None:
    wrong = [f"--{flag}={value!r}" for (flag, value), said in verdicts.items()
             if said == "would run" and _we_refuse(flag, value)]
    assert not wrong, wrong
