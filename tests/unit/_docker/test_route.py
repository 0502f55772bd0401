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
        (["-H", "unix:///x.sock", "verify", "x"], Route.PASSTHROUGH),  # docker's namespace
        (["-H", "unix:///x.sock", "compose", "up"], Route.OWN),  # never an unverified bypass
        # docker skips help flags and `--` values between the command words: still ours.
        (["container", "--help=false", "create", "x"], Route.INTERCEPT),
        (["container", "-h", "run", "x"], Route.INTERCEPT),
        (["container", "--", "x", "create", "img"], Route.INTERCEPT),
        (["--", "--", "x", "create", "img"], Route.INTERCEPT),
        (["image", "--help=false", "pull", "x"], Route.INTERCEPT),
    ],
)
def test_classify(argv: list[str], route: Route) -> None:
    assert classify(argv) is route
