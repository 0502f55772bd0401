"""The shim's precomputed passthrough words are exactly what the command table says, and
every command line they let through is one the full router passes through too."""

from __future__ import annotations

import pytest

from safedocker._docker import fastpass
from safedocker._docker.route import Route, classify, plain_passthrough

# What may follow the command words: flags that look like globals, a `--`, words that
# are commands elsewhere. None of it may change the route.
TAILS: tuple[list[str], ...] = (
    [], ["-H", "tcp://x:2375"], ["--", "run", "img"], ["run", "img"], ["--help"],
    ["build", "."], ["compose", "up"], ["verify", "x"], ["-v"])


def test_the_precomputed_copy_is_the_table_s() -> None:
    words, groups = plain_passthrough()
    assert fastpass.WORDS == words
    assert fastpass.GROUPS == groups


@pytest.mark.parametrize("tail", TAILS)
def test_every_word_it_passes_the_router_passes_too(tail: list[str]) -> None:
    lines = [[w, *tail] for w in fastpass.WORDS]
    lines += [[g, s, *tail] for g, subs in fastpass.GROUPS.items() for s in subs]
    for argv in lines:
        assert fastpass.passthrough(argv), argv
        assert classify(argv) is Route.PASSTHROUGH, argv


@pytest.mark.parametrize("argv", [
    [], ["run", "x"], ["create", "x"], ["pull", "x"], ["build", "."], ["bake"],
    ["builder", "prune"], ["image", "build", "."], ["image", "pull", "x"],
    ["container", "run", "x"], ["compose", "ps"], ["verify", "x"], ["policy", "list"],
    ["-H", "x", "ps"], ["--config", "d", "ps"], ["container", "--help", "ls"],
    ["container"], ["image"], ["system", "dial-stdio"], ["buildx", "bake"],
    ["sandbox", "ls"], ["", "ps"], ["Ps"], ["container", "-"],
])
def test_anything_else_is_left_to_the_router(argv: list[str]) -> None:
    assert not fastpass.passthrough(argv)
