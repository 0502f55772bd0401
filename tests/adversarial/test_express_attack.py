"""Attack round 8 on the express path (gate/express.py): a plan keeps no secret of the
command line, and a damaged plan or record is a miss, never a traceback."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from safedocker.cache.verdicts import WarmRecord
from safedocker.gate import express
from tests.plans import NAME, plan, private_env, private_where, record
from tests.threaded_http import Server, answer

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.cache.verdicts import Where

SECRET_ARGV = ["run", "--rm", "-e", "DB_PASSWORD=hunter2", f"{NAME}:v1",
               "sh", "-c", "curl -H 'token: s3cretT0ken' x"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return private_env(tmp_path)


@pytest.fixture
def where(env: dict[str, str]) -> Where:
    return private_where(env)


def test_a_kept_plan_holds_no_value_of_the_command_line_yet_replays_it(
        where: Where, env: dict[str, str]) -> None:
    # The audit log keeps `--env K=***` and masks the container's arguments (summarize_argv,
    # attack N11); the plan must not keep on disk what the audit line is careful to drop.
    kept_plan = plan(SECRET_ARGV)
    express.keep(where, SECRET_ARGV, env, kept_plan)
    path = express.plan_path(where.cache_dir, express.plan_key(SECRET_ARGV, env))
    with open(path, "rb") as f:
        kept = f.read()
    assert b"hunter2" not in kept
    assert b"s3cretT0ken" not in kept
    assert express._plan(where, SECRET_ARGV, env) == kept_plan


def test_a_plan_with_a_number_too_large_for_a_float_is_a_miss_never_an_error(
        where: Where, env: dict[str, str]) -> None:
    argv = ["run", "--rm", f"{NAME}:v1", "true"]
    express.keep(where, argv, env, plan(argv))
    path = express.plan_path(where.cache_dir, express.plan_key(argv, env))
    with open(path, "rb") as f:
        document = json.loads(f.read())
    document["record"]["valid_until"] = 10 ** 400  # an integer: json reads it, float() cannot
    with open(path, "w") as f:
        json.dump(document, f)
    express.answer(argv, env)  # returns (a miss), never raises OverflowError


def test_a_record_with_a_number_too_large_for_a_float_is_no_record() -> None:
    # The warm path reads records with the same from_json: a damaged records file is a miss.
    data = {**record().to_json(), "material_time": 10 ** 400}
    assert WarmRecord.from_json(data) is None


@pytest.mark.parametrize("where_nested", ["config.json", "context meta"])
def test_a_deeply_nested_docker_config_is_a_miss_never_a_traceback(
        tmp_path: Path, where_nested: str) -> None:
    # docker (Go's encoding/json nests up to 10000) reads such a file; the warm path's
    # socket lookup must give up on it (the full path decides), not raise RecursionError.
    from safedocker._docker.engine_api import unix_socket
    from safedocker._internal.lean import sha256

    nested = '{"x":' + "[" * 5000 + "]" * 5000 + "}"
    config = tmp_path / "docker"
    config.mkdir()
    if where_nested == "config.json":
        (config / "config.json").write_text(nested)
    else:
        (config / "config.json").write_text('{"currentContext":"c"}')
        meta = config / "contexts" / "meta" / sha256(b"c").hexdigest()
        meta.mkdir(parents=True)
        (meta / "meta.json").write_text(nested)
    assert unix_socket(["run", "alpine:3"], {"DOCKER_CONFIG": str(config)}) is None


def test_a_deeply_nested_token_cache_is_an_empty_one(tmp_path: Path) -> None:
    from safedocker.oci.probe import TOKENS_NAME, TokenCache

    (tmp_path / TOKENS_NAME).write_text("[" * 5000 + "]" * 5000)
    os.chmod(tmp_path / TOKENS_NAME, 0o600)
    assert TokenCache(tmp_path).get("k", 0.0) is None


def test_a_token_service_answering_deep_nesting_fails_the_probe_never_a_traceback() -> None:
    # The realm is the registry's to name: a hostile one must cost a miss, not a crash.
    from safedocker.oci.probe import ProbeFailed, RegistryProbe

    nested = b"[" * 5000 + b"]" * 5000
    server = Server(lambda head: answer(200, {"Content-Type": "application/json"}, nested))
    host = server.host
    probe = RegistryProbe(host, "http")
    try:
        with pytest.raises(ProbeFailed):
            probe._fetch_token({"realm": f"http://{host}/token"}, "repository:a:pull",
                               None, 0.0)
    finally:
        probe.close()
        server.close()


def test_an_audit_line_of_a_long_user_name_is_never_past_what_a_reader_keeps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A directory service may give a user a long (or non-ASCII, \u-escaped) name; a line
    # past MAX_LINE_BYTES is skipped as corrupt on read, so the decision would vanish from
    # `safe-docker audit` — body() must leave room for the real stamp, not a guess of it.
    from safedocker import audit
    from safedocker._internal import logfile

    monkeypatch.setattr(logfile, "user_name", lambda: "\u00e9" * 120)  # 720 bytes escaped
    log = audit.AuditLog(tmp_path)
    for filler in range(1500, 2000, 50):
        event: dict[str, object] = {f"k{i}": "x" * 1000 for i in range(63)}
        event["last"] = "x" * filler
        log.record(event)
    with open(tmp_path / audit.AUDIT_NAME, "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) == 10
    assert all(len(line) + 1 <= audit.MAX_LINE_BYTES for line in lines)
    assert len(list(log.read())) == 10


def test_a_token_with_a_line_break_never_reaches_the_registry_as_a_header() -> None:
    # The token service is the registry's to name. A token carrying CR LF written into the
    # Authorization line would add headers or a whole second request on the kept-alive
    # connection, whose answer the next HEAD (a .sig listing) would then read as its own.
    from safedocker.oci.probe import ProbeFailed, RegistryProbe

    token = json.dumps({"token": "t\r\nX-Injected: 1"}).encode()

    def respond(head: bytes) -> bytes:
        if head.startswith(b"GET /token"):
            return answer(200, {}, token)
        if b"Authorization" not in head:
            return answer(401, {"WWW-Authenticate": f'Bearer realm="http://{server.host}/token"'})
        return answer(404)

    server = Server(respond)
    host = server.host
    probe = RegistryProbe(host, "http")
    try:
        with pytest.raises(ProbeFailed):
            probe.manifest_digest("team/app", "v1")
    finally:
        probe.close()
        server.close()
    assert not any(b"X-Injected" in head for head in server.heads), server.heads


def test_plans_for_ever_new_environments_stay_bounded_in_number(
        where: Where, env: dict[str, str]) -> None:
    # A CI job's environment differs every run (a build id): each warm hit keeps a plan
    # that no later run reads, and `cache prune` is run by hand if ever.
    argv = ["run", "--rm", f"{NAME}:v1", "true"]
    for run in range(express.PLANS_MAX + 20):
        express.keep(where, argv, {**env, "BUILD_ID": str(run)}, plan(argv))
    kept = os.listdir(os.path.join(where.cache_dir, "express"))
    assert len(kept) <= express.PLANS_MAX
    # the newest is kept
    newest = express.plan_key(argv, {**env, "BUILD_ID": str(express.PLANS_MAX + 19)})
    assert newest + ".json" in kept


_PINNED = "docker.io/library/alpine@sha256:" + "a" * 64


@pytest.mark.parametrize(("argv", "command"), [
    # the image left as written, a container argument pinned
    (["run", "--rm", "evil:1", "sh"], ["run", "--rm", "evil:1", _PINNED]),
    # an option's value pinned
    (["run", "--name", "x", "evil:1"], ["run", "--name", _PINNED, "evil:1"]),
])
def test_a_plan_pinning_any_word_but_a_reference_to_its_image_is_a_miss(
        argv: list[str], command: list[str]) -> None:
    """A plan (a file in the user's own cache) whose command changes one word of argv to
    its target, but not the word naming its image: docker would run ``evil:1`` unverified
    under an audit line naming alpine. A miss: the warm path parses argv itself."""
    from safedocker.gate import express

    with pytest.raises(express._Miss):
        express._handed(argv, command, _PINNED, ("docker.io/library/alpine", "latest"))


@pytest.mark.parametrize("word", [
    "alpine", "alpine:3", "library/alpine:3", "docker.io/alpine", "index.docker.io/alpine:3",
    "docker.io/library/alpine:latest", "team/app:v1", "localhost/app", "localhost:5000/a/b:c",
    "registry.test:5000/team/app:v1", "Registry/app:v1", "[::1]:5000/app:v1",
    "ghcr.io/o/r/s:1.2.3-rc_1", "a.b/c"])
def test_the_express_paths_reading_of_an_image_word_is_the_reference_parsers(word: str) -> None:
    from safedocker.gate.express import tagged
    from safedocker.reference import parse_reference

    ref = parse_reference(word)
    assert tagged(word) == (ref.name, ref.tag_or_default)
