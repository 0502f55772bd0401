from __future__ import annotations

import pytest

from safedocker._docker.route import Route, classify


@pytest.mark.parametrize(
    ("argv", "route"),
    [
        ([], Route.HELP),
        (["--help"], Route.HELP),
        (["--version"], Route.HELP),
        (["run", "ubuntu"], Route.INTERCEPT),
        (["create", "ubuntu"], Route.INTERCEPT),
        (["pull", "ubuntu"], Route.INTERCEPT),
        (["container", "run", "ubuntu"], Route.INTERCEPT),
        (["container", "create", "ubuntu"], Route.INTERCEPT),
        (["image", "pull", "ubuntu"], Route.INTERCEPT),
        (["-H", "unix:///x.sock", "run", "ubuntu"], Route.INTERCEPT),
        (["--context=prod", "--tlsverify", "pull", "x"], Route.INTERCEPT),
        (["-l", "debug", "-D", "container", "run", "x"], Route.INTERCEPT),
        (["ps"], Route.PASSTHROUGH),
        (["images"], Route.PASSTHROUGH),
        (["image", "ls"], Route.PASSTHROUGH),
        (["container", "ls"], Route.PASSTHROUGH),
        (["exec", "-it", "c", "run"], Route.PASSTHROUGH),
        (["help", "run"], Route.PASSTHROUGH),
        (["-v"], Route.PASSTHROUGH),  # docker's --version
        (["-H", "tcp://h:2375"], Route.PASSTHROUGH),
        (["compose", "ps"], Route.OWN),
        (["verify", "x"], Route.OWN),
        (["keys", "list"], Route.OWN),
        (["-v", "verify", "x"], Route.OWN),  # our --verbose before our own command
        # docker's namespace, where `verify` is no docker command: the gate refuses it.
        (["-H", "unix:///x.sock", "verify", "x"], Route.INTERCEPT),
        (["-H", "unix:///x.sock", "compose", "up"], Route.OWN),  # never an unverified bypass
        # docker skips help flags and `--` values between the command words: still ours.
        (["container", "--help=false", "create", "x"], Route.INTERCEPT),
        (["container", "-h", "run", "x"], Route.INTERCEPT),
        (["container", "--", "x", "create", "img"], Route.INTERCEPT),
        (["--", "--", "x", "create", "img"], Route.INTERCEPT),
        (["image", "--help=false", "pull", "x"], Route.INTERCEPT),
        # docker's save and load are docker's, however they are spelled (attack N10).
        (["save", "x"], Route.PASSTHROUGH),
        (["save", "-o", "f.tar", "x"], Route.PASSTHROUGH),
        (["load"], Route.PASSTHROUGH),
        (["load", "-i", "f.tar"], Route.PASSTHROUGH),
        (["-D", "load", "-i", "f.tar"], Route.PASSTHROUGH),
        (["-v", "load", "-i", "f.tar"], Route.PASSTHROUGH),
        (["-H", "unix:///x.sock", "save", "x"], Route.PASSTHROUGH),
        (["image", "load", "-i", "f.tar"], Route.PASSTHROUGH),
        (["image", "save", "x"], Route.PASSTHROUGH),
        (["airgap", "load", "-i", "f.tar"], Route.OWN),
        (["airgap", "save", "x", "-o", "f.tar"], Route.OWN),
        (["-v", "airgap", "load", "-i", "f.tar"], Route.OWN),
    ],
)
def test_classify(argv: list[str], route: Route) -> None:
    assert classify(argv) is route


# `docker --help` of docker CLI 28: every top-level command word docker has.
DOCKER_COMMANDS = frozenset(
    "run exec ps build pull push images login logout search version info builder checkpoint "
    "container context image manifest network plugin system trust volume config node secret "
    "service stack swarm attach commit cp create diff events export history import inspect "
    "kill load logs pause port rename restart rm rmi save start stats stop tag top unpause "
    "update wait".split()
)


def test_no_own_command_takes_a_word_docker_uses() -> None:
    from safedocker._docker.route import OWN_COMMANDS

    # compose is docker's word too, and keeps docker compose's meaning (verified first).
    assert OWN_COMMANDS & DOCKER_COMMANDS == set()
