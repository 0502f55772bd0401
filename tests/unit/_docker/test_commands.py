"""docker's command tree (docker CLI 28, buildx 0.29): what each command is to safe-docker.

The expected classes are written out here, from docker's own reference (`docker COMMAND
--help` of 28.x), not read back from the table: a word the table drops or moves fails.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.commands import DOCKER, Kind, builder_alias, lookup

if TYPE_CHECKING:
    from pathlib import Path

P, V, R, U = Kind.PASS, Kind.VERIFY, Kind.REFUSE, Kind.UNKNOWN

# Every command path of docker CLI 28 (aliases included) and the class it must have.
DOCKER_28: dict[str, Kind] = {
    # top level
    **dict.fromkeys(
        "attach commit cp diff events exec export history images import info inspect kill "
        "load login logout logs pause port ps push rename restart rm rmi save search start "
        "stats stop tag top unpause update version wait".split(), P),
    "run": V, "create": V, "pull": V, "build": V,
    # container
    **{f"container {w}": P for w in (
        "attach commit cp diff exec export inspect kill logs ls ps list pause port prune "
        "rename restart rm remove start stats stop top unpause update wait").split()},
    "container run": V, "container create": V,
    # image
    **{f"image {w}": P for w in
       "history import inspect load ls list prune push rm rmi remove save tag".split()},
    "image pull": V, "image build": V,
    "builder build": V, "builder prune": P,
    **{f"checkpoint {w}": P for w in "create ls list rm remove".split()},
    **{f"context {w}": P for w in
       "create export import inspect ls list rm remove show update use".split()},
    **{f"manifest {w}": P for w in "annotate create inspect push rm".split()},
    **{f"network {w}": P for w in
       "connect create disconnect inspect ls list prune rm remove".split()},
    **{f"plugin {w}": P for w in
       "disable enable inspect ls list push rm remove set".split()},
    "plugin install": V, "plugin upgrade": V,
    "plugin create": R,  # a local rootfs that `plugin enable` runs as root (attack round 4)
    **{f"system {w}": P for w in "df events info prune".split()},
    "system dial-stdio": R, "buildx dial-stdio": R,  # raw pipes to the daemon, BuildKit
    **{f"trust {w}": P for w in "inspect key revoke sign signer".split()},
    **{f"volume {w}": P for w in "create inspect ls list prune rm remove update".split()},
    **{f"config {w}": P for w in "create inspect ls list rm remove".split()},
    **{f"secret {w}": P for w in "create inspect ls list rm remove".split()},
    **{f"node {w}": P for w in "demote inspect ls list promote ps rm remove update".split()},
    **{f"service {w}": P for w in "inspect logs ls list ps rm remove rollback scale".split()},
    "service create": V, "service update": V,
    **{f"stack {w}": P for w in "config ls list ps rm remove down services".split()},
    "stack deploy": V, "stack up": V,
    **{f"swarm {w}": P for w in
       "ca init join join-token leave unlock unlock-key update".split()},
    # buildx 0.29 (a CLI plugin safe-docker knows)
    "buildx build": V, "buildx b": V, "buildx create": V,
    "buildx bake": R, "buildx f": R, "buildx debug": R, "buildx dap": R,
    **{f"buildx {w}": P for w in (
        "rm ls use inspect stop install uninstall version prune du imagetools "
        "history").split()},
    "bake": R,
    "compose up": V,
}


@pytest.mark.parametrize(("command", "kind"), sorted(DOCKER_28.items()))
def test_every_docker_28_command_has_its_class(command: str, kind: Kind) -> None:
    assert lookup(command.split(), environ={"DOCKER_CONFIG": "/nonexistent"}).kind is kind


def test_the_table_has_no_command_the_expected_list_lacks() -> None:
    paths = set()
    for word, node in DOCKER.items():
        if isinstance(node, dict):
            paths |= {f"{word} {sub}" for sub in node}
        elif not word.startswith("__") and word not in ("help", "completion", "compose"):
            paths.add(word)
    assert paths - set(DOCKER_28) == set()


@pytest.mark.parametrize("argv", [
    ["scout", "cves", "x"],  # a CLI plugin
    ["sbom", "x"],
    ["container", "frobnicate"],  # a subcommand of a newer docker
    ["service", "deploy", "x"],
    ["image", "x"],  # a positional where a subcommand goes: not one docker knows
])
def test_a_word_safe_docker_does_not_know_is_unknown(argv: list[str]) -> None:
    assert lookup(argv).kind is U


def test_an_unknown_top_level_word_names_the_plugin_docker_would_run() -> None:
    found = lookup(["-D", "scout", "cves"])
    assert (found.kind, found.plugin, found.words) == (U, "scout", ("scout",))


@pytest.mark.parametrize("argv", [
    ["load"], ["-D", "load"], ["image", "load"], ["-H", "unix:///x", "image", "load", "-i", "f"],
    ["--log-level=debug", "load", "-q"], ["image", "--help=false", "load"],
])
def test_every_spelling_of_load_passes(argv: list[str]) -> None:
    # attack N10: `docker -D load` and `docker image load` are docker's load, like `load`.
    assert lookup(argv).kind is P


@pytest.mark.parametrize(("argv", "words"), [
    (["service", "-h", "create", "x"], ("service", "create")),
    # cobra's Traverse reads `--` as a flag taking the next word as its value.
    (["service", "--", "x", "create", "y"], ("service", "create")),
    (["--context", "c", "plugin", "install", "x"], ("plugin", "install")),
    (["buildx", "--builder", "b", "create"], ("buildx", "create")),
    (["stack", "--orchestrator", "swarm", "deploy"], ("stack", "deploy")),
])
def test_subcommands_are_found_as_cobra_traverses(argv: list[str], words: tuple[str, ...]
                                                  ) -> None:
    found = lookup(argv)
    assert (found.words, found.kind) == (words, V)


@pytest.mark.parametrize("argv", [["service"], ["plugin", "--help"], ["buildx"], ["-D"], []])
def test_a_group_without_a_subcommand_prints_help_and_passes(argv: list[str]) -> None:
    assert lookup(argv).kind is P


def _config(tmp_path: Path, document: object) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(document))
    return {"DOCKER_CONFIG": str(tmp_path)}


@pytest.mark.parametrize("argv", [["builder", "prune"], ["builder", "ls"], ["build", "."],
                                  ["image", "build", "."], ["bake"]])
def test_an_alias_that_sends_builder_words_to_another_plugin_is_unknown(
        tmp_path: Path, argv: list[str]) -> None:
    env = _config(tmp_path, {"aliases": {"builder": "evil"}})
    found = lookup(argv, environ=env)
    assert found.kind is U
    assert "aliases builder to 'evil'" in found.note


def test_an_alias_key_is_read_as_go_reads_it_case_folded_and_last_wins(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        '{"aliases": {"builder": "buildx"}, "ALIASES": {"builder": "evil"}}')
    assert builder_alias([], {"DOCKER_CONFIG": str(tmp_path)}) == "evil"


def test_builder_runs_as_buildx_so_its_subcommands_are_buildxs(tmp_path: Path) -> None:
    env = _config(tmp_path, {})
    assert lookup(["builder", "create"], environ=env).kind is V  # buildx create
    assert lookup(["builder", "bake"], environ=env).kind is R
    assert lookup(["builder", "ls"], environ=env).kind is P


@pytest.mark.parametrize(("argv", "words", "kind"), [
    (["builder", "--builder", "default", "dial-stdio"], ("buildx", "dial-stdio"), R),
    (["builder", "--builder=default", "build", "."], ("buildx", "build"), V),
    (["builder", "-D", "build", "."], ("buildx", "build"), V),
    (["builder", "--debug", "bake"], ("buildx", "bake"), R),
    (["builder", "--builder", "b", "create"], ("buildx", "create"), V),
])
def test_builder_reads_buildxs_root_flags_before_its_subcommand(
        tmp_path: Path, argv: list[str], words: tuple[str, ...], kind: Kind) -> None:
    # docker hands `builder …` to buildx as `buildx …`, whose root flags (--builder, -D)
    # may sit before the subcommand: `docker builder --builder default dial-stdio` is
    # buildx's raw pipe, `docker builder -D build .` a build (attack round 5).
    found = lookup(argv, environ=_config(tmp_path, {}))
    assert (found.words, found.kind) == (words, kind)


def test_builder_with_flags_it_cannot_follow_is_unknown_never_pass(tmp_path: Path) -> None:
    env = _config(tmp_path, {})
    assert lookup(["builder", "-x", "build", "."], environ=env).kind is U
    assert lookup(["builder", "--builder"], environ=env).kind is U
    assert lookup(["builder", "--help"], environ=env).kind is P
    assert lookup(["builder"], environ=env).kind is P


def test_with_buildkit_off_builder_is_the_built_in_group(tmp_path: Path) -> None:
    env = {**_config(tmp_path, {}), "DOCKER_BUILDKIT": "0"}
    assert lookup(["builder", "prune"], environ=env).kind is P
    assert lookup(["builder", "create"], environ=env).kind is U
    assert lookup(["build", "."], environ=env).kind is V


def test_an_unreadable_alias_is_unknown_never_pass(tmp_path: Path) -> None:
    env = _config(tmp_path, {"aliases": {"builder": 7}})
    assert lookup(["builder", "prune"], environ=env).kind is U
