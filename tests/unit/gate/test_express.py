"""The express path's plan: keyed by everything it is a function of, trusted only as the
verdict records are (the user's own file in the user's own dirs), read only for the exact
command line it was written for, never under a locked system policy, and a damaged one
is a miss. (Its replay against a real dockerd and registry: tests/e2e/test_express_path.py.)
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

import pytest

from safedocker._internal import environment
from safedocker.cache.verdicts import Unkeyable
from safedocker.gate import express
from safedocker.oci.probe import PARALLEL_MAX
from tests.plans import DIGEST, NAME, plan, private_env, private_where

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.cache.verdicts import Where
    from safedocker.gate.express import Plan

ARGV = ["run", "--rm", f"{NAME}:v1", "true"]


def _plan() -> Plan:
    return plan(ARGV)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return private_env(tmp_path)


@pytest.fixture
def where(env: dict[str, str]) -> Where:
    return private_where(env)


def _kept(where: Where, env: dict[str, str]) -> str:
    express.keep(where, ARGV, env, _plan())
    return express.plan_path(where.cache_dir, express.plan_key(ARGV, env))


def test_a_kept_plan_reads_back_as_it_was_written(where: Where, env: dict[str, str]) -> None:
    path = _kept(where, env)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert express._plan(where, ARGV, env) == _plan()


@pytest.mark.parametrize("change", [
    lambda argv, env: (argv + ["x"], env),
    lambda argv, env: (["run", "--rm", "--privileged", *argv[2:]], env),
    lambda argv, env: (argv, {**env, "DOCKER_HOST": "unix:///other.sock"}),
    lambda argv, env: (argv, {**env, "ANY_VARIABLE_AT_ALL": ""}),
    lambda argv, env: (argv, {k: v for k, v in env.items() if k != "HOME"}),
])
def test_any_other_argument_or_variable_has_another_key(change: object,
                                                        env: dict[str, str]) -> None:
    argv, changed = change(list(ARGV), dict(env))  # type: ignore[operator]
    assert express.plan_key(argv, changed) != express.plan_key(ARGV, env)


def test_another_working_directory_or_user_has_another_key(
        env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = express.plan_key(ARGV, env)
    monkeypatch.chdir(tmp_path)
    there = express.plan_key(ARGV, env)
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    assert len({here, there, express.plan_key(ARGV, env)}) == 3


def test_a_plan_moved_under_another_command_lines_key_is_not_read(
        where: Where, env: dict[str, str]) -> None:
    path = _kept(where, env)
    other = ["run", "--rm", "--privileged", f"{NAME}:v1", "true"]
    os.replace(path, express.plan_path(where.cache_dir, express.plan_key(other, env)))
    with pytest.raises(express._Miss, match="not a plan for this command line"):
        express._plan(where, other, env)


@pytest.mark.parametrize("spoil", ["group-writable", "symlink", "fifo", "too large",
                                   "dir writable by others"])
def test_a_plan_not_the_users_own_regular_file_is_never_read(
        where: Where, env: dict[str, str], spoil: str) -> None:
    path = _kept(where, env)
    if spoil == "group-writable":
        os.chmod(path, 0o620)
    elif spoil == "symlink":
        os.replace(path, path + ".real")
        os.symlink(path + ".real", path)
    elif spoil == "fifo":
        os.unlink(path)
        os.mkfifo(path, 0o600)  # opened without blocking: no writer is awaited
    elif spoil == "too large":
        with open(path, "ab") as f:
            f.write(b" " * express.PLAN_MAX)
    else:
        os.chmod(os.path.dirname(path), 0o777)  # noqa: S103 - the point of the test
    with pytest.raises((express._Miss, Unkeyable)):
        express._plan(where, ARGV, env)


@pytest.mark.parametrize("text", [
    b"", b"{", b"[]", b"[" * 50_000,
    json.dumps({"v": 1, "argv": ARGV}).encode(),  # no fields
    json.dumps({"v": 2, "argv": ARGV, **_plan().to_json()}).encode(),  # another version
    json.dumps({"v": 1, "argv": ARGV, **{**_plan().to_json(), "records": "x"}}).encode(),
    json.dumps({"v": 1, "argv": ARGV, **{**_plan().to_json(), "command": [1]}}).encode(),
    json.dumps({"v": 1, "argv": ARGV, **{**_plan().to_json(), "record": []}}).encode(),
])
def test_a_damaged_plan_is_a_miss_never_an_error(where: Where, env: dict[str, str],
                                                 text: bytes) -> None:
    path = _kept(where, env)
    with open(path, "wb") as f:
        f.write(text)
    express.answer(ARGV, env)  # returns (a miss: the warm path decides), never raises


def test_under_a_locked_system_policy_no_plan_is_even_read(
        where: Where, env: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _kept(where, env)
    system = tmp_path / "etc-safe-docker"
    system.mkdir()
    (system / "config.toml").write_text("locked = true\n")
    monkeypatch.setattr(environment, "DEFAULT_SYSTEM_CONFIG_DIR", str(system))
    read: list[str] = []
    monkeypatch.setattr(express, "_plan", lambda *a: read.append("plan"))
    with pytest.raises(express._Miss, match="locked"):
        express._replay(ARGV, env)
    assert read == []


@pytest.mark.parametrize(("command", "handed"), [
    (["run", "--rm", f"{NAME}@{DIGEST}", "true"], True),
    (["run", "--rm", f"{NAME}@{DIGEST}", "sh"], False),  # two words changed
    (["run", "--privileged", f"{NAME}@{DIGEST}", "true"], False),
    (["run", "--rm", f"{NAME}:v1", "true"], False),  # nothing pinned
    (["run", "--rm", f"{NAME}@{DIGEST}", "true", "x"], False),
    (None, False),
])
def test_only_the_command_line_with_its_image_pinned_is_handed_to_docker(
        command: list[str] | None, handed: bool) -> None:
    if handed:
        assert express._handed(ARGV, command, f"{NAME}@{DIGEST}", (NAME, "v1")) == command
    else:
        with pytest.raises(express._Miss):
            express._handed(ARGV, command, f"{NAME}@{DIGEST}", (NAME, "v1"))


def test_only_argv_with_run_create_or_pull_reaches_the_express_module() -> None:
    from safedocker import shim

    assert shim._EXPRESS_WORDS == express.WORDS


def test_a_changed_config_is_a_miss_before_any_question_to_the_registry(
        where: Where, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _kept(where, env)  # its inputs digest is not this config's
    asked: list[object] = []
    monkeypatch.setattr(express, "_RegistryQuestions", lambda *a: asked.append(a))
    with pytest.raises(express._Miss, match="config"):
        express._replay(ARGV, env)
    assert asked == []  # a config switched to offline never waits on the network


def test_a_miss_found_while_the_registry_answers_closes_every_connection_to_it(
        where: Where, env: dict[str, str]) -> None:
    from safedocker.cache.verdicts import SignatureListing, inputs_digest
    from tests.threaded_http import Server, answer

    server = Server(lambda head: answer(404))
    name = f"{server.host}/team/app"
    kept = _plan()._replace(
        name=name, target=f"{name}@{DIGEST}", inputs=inputs_digest(where, env),
        record=_plan().record._replace(signatures=(SignatureListing(name, DIGEST, None),)))
    express.keep(where, ARGV, env, kept)
    # The miss is held on to (its traceback keeps _replay's locals alive): the connections
    # must be closed by _replay itself, not by the garbage collector.
    with pytest.raises(express._Miss, match="verdict records") as miss:  # no records file
        express._replay(ARGV, env)
    deadline = time.monotonic() + 5  # the server counts in its own threads
    while server.closed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.connections == 2  # the tag and its .sig listing, side by side
    assert server.closed == server.connections
    assert miss.traceback


SIGNED_BY = 2 * PARALLEL_MAX + 1  # listings: with the tag, over PARALLEL_MAX twice over


def _listed(where: Where, tmp_path: Path, *, token: bool, changed: int | None,
            tag_moved: bool) -> express._RegistryQuestions:
    """The registry questions of a plan judged on SIGNED_BY ``.sig`` listings in several
    repositories of one registry, each naming a manifest of its own (one that ``changed``
    names no longer), the registry asking for a token per repository when ``token``."""
    import hashlib

    from safedocker.cache.verdicts import SignatureListing
    from tests.threaded_http import Server, answer, path_of

    def named(path: str) -> str:
        return hashlib.sha256(path.encode()).hexdigest()

    def respond(head: bytes) -> bytes:
        path = path_of(head)
        if path.startswith("/token?"):
            return answer(200, {}, json.dumps({"token": "T1"}).encode())
        if token and b"bearer t1" not in head.lower():
            realm = f"http://{server.host}/token"
            return answer(401, {"Www-Authenticate": f'Bearer realm="{realm}"'})
        if path == "/v2/team/app/manifests/v1":
            return answer(200, {"Docker-Content-Digest": "sha256:" + "e" * 64 if tag_moved
                                else DIGEST})
        return answer(200, {"Docker-Content-Digest": "sha256:" + named(path)})

    server = Server(respond)
    listings = []
    for i in range(SIGNED_BY):
        name, digest = f"{server.host}/team/sig{i % 3}", "sha256:" + f"{i:x}" * 64
        path = f"/v2/team/sig{i % 3}/manifests/sha256-{f'{i:x}' * 64}.sig"
        listings.append(SignatureListing(name, digest, "0" * 64 if i == changed else named(path)))
    name = f"{server.host}/team/app"
    kept = _plan()._replace(
        name=name, target=f"{name}@{DIGEST}", config=str(tmp_path / "docker-config"),
        record=_plan().record._replace(signatures=tuple(listings)))
    return express._RegistryQuestions(where, kept)


@pytest.mark.parametrize("token", [False, True])
def test_every_listing_past_parallel_max_is_compared_with_its_own_answer(
        where: Where, tmp_path: Path, token: bool) -> None:
    questions = _listed(where, tmp_path, token=token, changed=None, tag_moved=False)
    try:
        questions.agrees()  # each listing's own answer: no miss
    finally:
        questions.close()


@pytest.mark.parametrize(("changed", "tag_moved", "miss"), [
    *((changed, False, "signature listing") for changed in range(SIGNED_BY)),
    (None, True, "another digest"),
], ids=[*(f"listing {i} changed" for i in range(SIGNED_BY)), "the tag moved"])
def test_any_one_changed_listing_or_a_moved_tag_is_a_miss_whichever_batch_asks_it(
        where: Where, tmp_path: Path, changed: int | None, tag_moved: bool,
        miss: str) -> None:
    questions = _listed(where, tmp_path, token=True, changed=changed, tag_moved=tag_moved)
    try:
        with pytest.raises(express._Miss, match=miss):
            questions.agrees()
    finally:
        questions.close()
