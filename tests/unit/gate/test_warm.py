"""The warm path answers only the commands it was built for: anything else is a miss
before any cache or registry is read (the full path decides)."""

from __future__ import annotations

import pytest

from safedocker.errors import SafeDockerError
from safedocker.gate import warm

IMAGE = "registry.example:5000/ns/app:v1"


@pytest.mark.parametrize("argv", [
    ["service", "create", "--name", "x", IMAGE],
    ["buildx", "create", IMAGE],
    ["plugin", "install", IMAGE],
    ["run", "--mount", f"type=image,source={IMAGE},target=/x", IMAGE],
    ["container", "create", "--mount", "type=bind,source=/tmp,target=/x", IMAGE],
    ["pull", "--all-tags", "registry.example:5000/ns/app"],
    ["pull", "--platform", "linux/arm64", IMAGE],
    ["run", "0123abcd"],
    ["run", f"registry.example:5000/ns/app@sha256:{'a' * 64}"],
])
def test_commands_the_warm_path_was_not_built_for_are_misses(argv: list[str]) -> None:
    with pytest.raises((warm._Miss, SafeDockerError)):
        warm._request(argv)


@pytest.mark.parametrize(("argv", "command"), [
    (["run", "--rm", IMAGE], "run"), (["container", "run", IMAGE], "run"),
    (["create", IMAGE], "create"), (["container", "create", IMAGE], "create"),
    (["pull", IMAGE], "pull"), (["image", "pull", IMAGE], "pull"),
])
def test_plain_run_create_and_pull_of_a_tag_are_answerable(argv: list[str],
                                                            command: str) -> None:
    _invocation, found, ref = warm._request(argv)
    assert found == command
    assert str(ref) == IMAGE
