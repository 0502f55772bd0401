"""docker CLI grammar: table tests of tricky lines, checked against docker/cli v28 rules."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from safedocker._docker.argv import (
    _CREATE,
    _PULL,
    _RUN,
    find_command,
    parse,
    split_globals,
)
from safedocker.errors import UsageError

# argv -> (IMAGE, container command)
IMAGE_CASES = [
    (["run", "busy"], "busy", ()),
    (["run", "-it", "busy", "sh"], "busy", ("sh",)),
    (["run", "-itv", "/a:/b", "busy"], "busy", ()),
    (["run", "-itv/a:/b", "busy"], "busy", ()),
    (["run", "-v=/a:/b", "busy"], "busy", ()),
    (["run", "--rm", "busy", "--rm", "-d"], "busy", ("--rm", "-d")),
    (["run", "--rm=false", "busy"], "busy", ()),
    (["run", "--rm", "false", "x"], "false", ("x",)),  # a bool never takes the next word
    (["run", "-d", "--name", "busy", "img"], "img", ()),
    (["run", "--name=x", "-e", "A=1", "-eB=2", "-e=C", "img"], "img", ()),
    (["run", "-e", "-x", "img"], "img", ()),  # a value may look like a flag
    (["run", "--entrypoint", "", "img", "a"], "img", ("a",)),
    (["run", "--", "img", "-x"], "img", ("-x",)),
    (["run", "-d", "--", "--", "x"], "--", ("x",)),
    (["run", "-h", "host", "img"], "img", ()),  # -h is --hostname on run/create
    (["run", "-c", "2", "-l", "a=b", "img"], "img", ()),  # -c cpu-shares, -l label
    (["run", "--net", "none", "--net-alias", "a", "--dns-opt", "x", "img"], "img", ()),
    (["run", "--gpus", "all", "--platform", "linux/amd64", "--pull", "always", "img"], "img", ()),
    (["run", "--init", "--privileged", "-P", "--oom-kill-disable", "--no-healthcheck", "img"],
     "img", ()),
    (["run", "--use-api-socket", "--detach-keys", "ctrl-x", "--sig-proxy=false", "img"], "img", ()),
    (["run", "-itest.v", "img"], "img", ()),  # pflag ignores a "test." shorthand run
    (["run", "-", "x"], "-", ("x",)),
    (["run", "", "x"], "", ("x",)),
    (["create", "--rm", "img", "sh"], "img", ("sh",)),
    (["container", "run", "img"], "img", ()),
    (["container", "create", "-q", "img"], "img", ()),
    (["pull", "img"], "img", ()),
    (["pull", "img", "-q"], "img", ()),  # pull is interspersed
    (["pull", "-q", "--platform", "linux/arm64", "img", "--disable-content-trust"], "img", ()),
    (["pull", "--", "img"], "img", ()),
    (["image", "pull", "-a", "img"], "img", ()),
    (["-D", "-l", "error", "run", "img"], "img", ()),
    (["-Dl", "debug", "run", "img"], "img", ()),
    (["-Dldebug", "-Hunix:///x.sock", "--config=/c", "run", "img"], "img", ()),
    (["--context", "run", "pull", "img"], "img", ()),  # "run" is the context's name
    (["-c", "ctx", "--tls", "--tlsverify=false", "--tlscacert", "ca", "run", "img"], "img", ()),
    (["--help", "run", "img"], "img", ()),  # global help/version do not stop the command
    (["-v", "-h", "create", "img"], "img", ()),
    (["--", "run", "img"], "img", ()),  # docker drops one "--" among the globals...
    (["--", "-D", "-H", "unix:///s", "run", "img"], "img", ()),  # ...and reads globals again
    (["--", "--", "x", "run", "img"], "img", ()),  # Traverse: "--" swallows "x"
    (["container", "--help=false", "run", "img"], "img", ()),  # help between words: ignored
    (["container", "-h", "-hh=1", "--help", "create", "img"], "img", ()),
    (["container", "--", "x", "run", "img"], "img", ()),
    (["image", "--help=0", "pull", "img"], "img", ()),
]


@pytest.mark.parametrize(("argv", "image", "command"), IMAGE_CASES)
def test_image_and_container_command(argv: list[str], image: str, command: tuple[str, ...]) -> None:
    inv = parse(argv)
    assert inv.image == image
    assert inv.container_command == command
    assert inv.argv[inv.image_index or 0] == image


COMMAND_CASES = [
    (["run", "x"], ("run",), 0),
    (["-D", "container", "run", "x"], ("container", "run"), 1),
    (["image", "pull", "x"], ("image", "pull"), 0),
    (["container", "--help=false", "create", "x"], ("container", "create"), 0),
]


@pytest.mark.parametrize(("argv", "command", "index"), COMMAND_CASES)
def test_command_words(argv: list[str], command: tuple[str, ...], index: int) -> None:
    inv = parse(argv)
    assert (inv.command, inv.command_index) == (command, index)


# Lines that run nothing under docker: parse refuses them and find_command finds nothing.
NOT_INTERCEPTED = [
    ["ps"], ["image", "ls"], ["container", "ls"], ["image", "run", "x"],
    ["container", "pull", "x"], ["--", "--", "run", "x"], ["container", "--", "run", "x"],
    ["container", "-D", "run", "x"], ["container", "--help=maybe", "run", "x"],
    ["--", "-Dl", "error", "run", "x"],  # cobra's Traverse does not know -Dl takes a value
    ["-H"], [], ["-D"], ["--bogus", "run", "x"], ["-Dx", "run", "x"], ["---x", "run", "x"],
]


@pytest.mark.parametrize("argv", NOT_INTERCEPTED)
def test_not_intercepted(argv: list[str]) -> None:
    assert find_command(argv) is None
    with pytest.raises(UsageError):
        parse(argv)


ERRORS = [
    (["run", "--bogus", "x"], "unknown flag: --bogus"),
    (["run", "-Z", "x"], "unknown shorthand flag: 'Z'"),
    (["create", "-d", "x"], "unknown shorthand flag: 'd'"),  # -d is run-only
    (["create", "--detach-keys", "a", "x"], "unknown flag: --detach-keys"),
    (["create", "--sig-proxy", "x"], "unknown flag: --sig-proxy"),
    (["run", "--name"], "flag needs an argument"),
    (["run", "-e"], "flag needs an argument"),
    (["run", "-ite"], "flag needs an argument"),
    (["run", "--rm=yes", "x"], 'invalid argument "yes"'),
    (["run", "-d=", "x"], "unknown shorthand flag: '='"),  # pflag reads "-d" then "="
    (["run", "--=x", "x"], "bad flag syntax"),
    (["run", "---x", "x"], "bad flag syntax"),
    (["run", "--rm"], "no IMAGE"),
    (["run", "--rm", "--"], "no IMAGE"),
    (["pull"], "no IMAGE"),
    (["pull", "a", "b"], "exactly 1 argument"),
    (["pull", "-h=x", "a"], 'invalid argument "x"'),
    (["pull", "--all-tags=2", "a"], 'invalid argument "2"'),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse(argv)


def test_help_needs_no_image_and_is_reported() -> None:
    assert parse(["run", "--help"]).help
    assert parse(["pull", "-h"]).help
    assert parse(["pull", "--help", "a", "b"]).help  # usage wins over argument count
    assert not parse(["run", "--help=false", "x"]).help
    assert not parse(["run", "x", "--help"]).help  # after IMAGE: the container's argument
    with pytest.raises(UsageError):
        _ = parse(["run", "--help"]).image


def test_options_are_canonical_with_token_ranges() -> None:
    argv = ["run", "-itv", "/a:/b", "--net=none", "-eA=1", "-e=B", "--env", "C", "-w=", "x"]
    inv = parse(argv)
    got = [(o.name, o.value, o.start, o.end) for o in inv.options]
    assert got == [
        ("--interactive", None, 1, 2),
        ("--tty", None, 1, 2),
        ("--volume", "/a:/b", 1, 3),
        ("--network", "none", 3, 4),
        ("--env", "A=1", 4, 5),
        ("--env", "B", 5, 6),  # "-x=v": the "=" is dropped
        ("--env", "C", 6, 8),
        ("--workdir", "=", 8, 9),  # "-w=" is value "=" (pflag's length check)
    ]
    assert inv.values("-e") == inv.values("--env") == ["A=1", "B", "C"]
    assert inv.values("--net") == inv.values("network") == ["none"]
    assert inv.has("-t") and not inv.has("--rm")
    with pytest.raises(ValueError, match="not a flag"):
        inv.values("--nope")


def test_bool_values_last_one_wins() -> None:
    inv = parse(["pull", "-a", "--all-tags=false", "img"])
    assert inv.values("-a") == ["true", "false"]
    assert not inv.flag("--all-tags")
    assert parse(["pull", "--all-tags=0", "-a", "img"]).flag("-a")
    assert parse(["run", "-i=T", "img"]).flag("--interactive")


def test_global_split() -> None:
    assert split_globals(["-D", "-l", "error", "run", "x"]).command_index == 3
    assert split_globals(["-Dlerror", "ps"]).globals == ("-Dlerror",)
    assert split_globals(["-D", "--", "-l", "x", "run"]).command_index == 4
    assert split_globals(["-D"]).command_index == 1
    assert split_globals(["-H"]).command_index == 0  # missing value: docker fails on this token
    assert split_globals(["--nope", "run"]).command_index == 0
    assert split_globals([]).command_index == 0


EXTRA = ["--platform", "linux/amd64"]  # valid for pull, run and create
REBUILD_CASES = [
    (["run", "--rm", "busy", "sh"], ["run", "--rm", *EXTRA, "NEW", "sh"]),
    (["-D", "container", "run", "-itv", "a:/b", "busy"],
     ["-D", "container", "run", "-itv", "a:/b", *EXTRA, "NEW"]),
    (["run", "-d", "--", "busy", "--", "x"], ["run", "-d", *EXTRA, "--", "NEW", "--", "x"]),
    (["pull", "busy", "-q"], ["pull", *EXTRA, "NEW", "-q"]),
    (["pull", "-q", "--", "busy"], ["pull", "-q", *EXTRA, "--", "NEW"]),
    (["create", "--name", "busy", "busy", "busy"], ["create", "--name", "busy", *EXTRA,
                                                    "NEW", "busy"]),
]


@pytest.mark.parametrize(("argv", "expected"), REBUILD_CASES)
def test_rebuild_replaces_only_image(argv: list[str], expected: list[str]) -> None:
    inv = parse(argv)
    assert inv.rebuild("NEW", EXTRA) == expected
    assert inv.rebuild(inv.image) == argv  # byte-identical round trip
    assert parse(inv.rebuild("NEW", EXTRA)).image == "NEW"


HELP_LINE = re.compile(r"^\s+(?:-(\S), )?\s*--([a-z0-9-]+)(?: ([a-z0-9-]+))?(?:\s{2,}|$)")


def _help_flags(*command: str) -> dict[str, tuple[str | None, bool]]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    out = subprocess.run([docker, *command, "--help"], capture_output=True, text=True,
                         timeout=30, check=False).stdout
    flags: dict[str, tuple[str | None, bool]] = {}
    for line in out.splitlines():
        m = HELP_LINE.match(line)
        if m:
            flags[m.group(2)] = (m.group(1), m.group(3) is None)
    return flags


HIDDEN = {"net", "net-alias", "dns-opt"}


@pytest.mark.parametrize(("command", "flags"), [(("run",), _RUN), (("create",), _CREATE),
                                                 (("pull",), _PULL)])
def test_flag_table_matches_docker_help(command: tuple[str, ...], flags: object) -> None:
    """Every flag `docker X --help` lists (hidden ones aside) with its shorthand and kind."""
    from safedocker._docker.argv import FlagSet

    assert isinstance(flags, FlagSet)
    shown = _help_flags(*command)
    ours = {
        name: (flag.short, flag.boolean)
        for name, flag in flags.longs.items()
        if name not in HIDDEN
    }
    if command == ("pull",):
        ours.pop("help")  # the root's persistent -h/--help is hidden in pull's usage
    assert shown == ours
