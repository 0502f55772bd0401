"""The warm and express paths' registry probe: several manifests asked side by side give
exactly what asking them one by one gives, each on a connection of its own (over https,
in turn on one) — against a real socket server (tests/threaded_http.py), the registry
faked at its HTTP boundary."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING

import pytest

from safedocker._internal import minihttp
from safedocker._internal.minihttp import tcp
from safedocker.oci.probe import PARALLEL_MAX, ProbeFailed, RegistryProbe, TokenCache
from tests.threaded_http import Server, answer, path_of
from tests.tls_world import Authority

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable
    from pathlib import Path

    from safedocker._internal.minihttp import Socket

DIGESTS = {"/v2/team/app/manifests/v1": "sha256:" + "a" * 64,
           "/v2/team/app/manifests/sha256-" + "a" * 64 + ".sig": "sha256:" + "b" * 64}


class Registry:
    """Manifests by path, answered to HEAD (404 for anything else; ``status_of`` overrides).
    With ``token`` (one item: the token it takes now) it asks for ``Bearer`` as Docker Hub
    does, and serves /token."""

    def __init__(self, status_of: dict[str, int] | None = None, *,
                 token: list[str] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.status_of = status_of or {}
        self.token = token
        self.asked: list[str] = []  # each path, with " (token)" when the token came along
        self.server = Server(self.respond, tls=tls)

    def respond(self, head: bytes) -> bytes:
        path = path_of(head)
        sent = self.token is not None and (
            f"authorization: bearer {self.token[0]}".lower().encode() in head.lower())
        self.asked.append(path + (" (token)" if sent else ""))
        if self.token is not None and path.startswith("/token?"):
            return answer(200, {}, json.dumps({"token": self.token[0], "expires_in": 300})
                          .encode())
        if self.token is not None and not sent:
            realm = f"http://{self.server.host}/token"
            return answer(401, {"Www-Authenticate": f'Bearer realm="{realm}",service="reg"'})
        status = self.status_of.get(path, 200 if path in DIGESTS else 404)
        return answer(status, {"Docker-Content-Digest": DIGESTS[path]} if status == 200 else {})


WANTED = [("team/app", "v1"), ("team/app", "sha256-" + "a" * 64 + ".sig"),
          ("team/app", "missing")]


def test_side_by_side_answers_are_the_one_by_one_answers_each_on_its_own_connection() -> None:
    registry = Registry()
    one_by_one = RegistryProbe(registry.server.host, "http")
    expected = [one_by_one.manifest_digest(r, t) for r, t in WANTED]
    one_by_one.close()
    assert registry.server.connections == 1
    probe = RegistryProbe(registry.server.host, "http")
    assert probe.manifest_digests(WANTED) == expected
    probe.close()
    assert expected[0] is not None and expected[0][0] == DIGESTS["/v2/team/app/manifests/v1"]
    assert expected[2] is None
    assert registry.server.connections == 1 + len(WANTED)
    assert sorted(registry.asked[len(WANTED):]) == sorted(registry.asked[:len(WANTED)])


def _within(seconds: float, done: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_asked_questions_are_all_sent_before_the_caller_reads_any_answer() -> None:
    gate = threading.Event()
    registry = Registry()
    respond = registry.respond
    # Held back until the gate opens: a probe that read an answer inside ask() would wait
    # out the gate and get a 500 (ProbeFailed) instead.
    registry.server.respond = lambda head: respond(head) if gate.wait(3) else answer(500)
    probe = RegistryProbe(registry.server.host, "http")
    asked = probe.ask(WANTED)  # returns with every answer still held back by the registry
    heads = registry.server.heads  # each request's head as it arrives, before its answer
    assert _within(5, lambda: len(heads) == len(WANTED))
    assert sorted(map(path_of, heads)) == sorted(f"/v2/{r}/manifests/{t}" for r, t in WANTED)
    gate.set()
    answers = asked.answers()
    probe.close()
    assert answers[0] == ("sha256:" + "a" * 64, "")
    assert answers[2] is None


def test_a_probe_closed_before_its_answers_are_read_closes_every_connection() -> None:
    registry = Registry()
    probe = RegistryProbe(registry.server.host, "http")
    probe.ask(WANTED)
    probe.close()
    server = registry.server
    assert _within(5, lambda: server.connections == len(WANTED) == server.closed)


def test_over_https_the_questions_are_asked_in_turn_on_one_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    authority = Authority("safedocker test ca")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(authority.hashed_dir(tmp_path / "certs")))
    monkeypatch.setattr(minihttp, "_TLS", {})
    registry = Registry(tls=authority.server_context(tmp_path / "server", "127.0.0.1"))
    plain = Registry()
    expected = RegistryProbe(plain.server.host, "http").manifest_digests(WANTED)
    probe = RegistryProbe(registry.server.host, "https")
    asked = probe.ask(WANTED)
    answers = asked.answers()
    probe.close()
    assert answers == expected
    assert registry.asked == [f"/v2/{r}/manifests/{t}" for r, t in WANTED]  # in turn
    assert registry.server.connections == 1  # one handshake, not one per question


def test_an_odd_answer_side_by_side_fails_the_probe_as_one_by_one_does() -> None:
    registry = Registry({"/v2/team/app/manifests/v1": 500})
    probe = RegistryProbe(registry.server.host, "http")
    with pytest.raises(ProbeFailed):
        probe.manifest_digests(WANTED)
    probe.close()


def test_a_token_is_fetched_once_kept_and_sent_first_by_the_next_run(tmp_path: Path) -> None:
    registry = Registry(token=["T1"])
    asked = registry.asked
    tokens = TokenCache(tmp_path)
    config = str(tmp_path / "docker-config")  # no credentials: an anonymous token
    first = RegistryProbe(registry.server.host, "http", tokens=tokens, docker_config=config)
    found = first.manifest_digest(*WANTED[0])
    first.close()
    assert found is not None
    assert [a.split("?")[0] for a in asked] == [
        "/v2/team/app/manifests/v1", "/token", "/v2/team/app/manifests/v1 (token)"]
    assert os.stat(tokens.path).st_mode & 0o777 == 0o600
    asked.clear()
    later = RegistryProbe(registry.server.host, "http", tokens=tokens, docker_config=config)
    assert later.manifest_digests(WANTED[:2]) == [found, later.manifest_digest(*WANTED[1])]
    later.close()
    # the batch's two on connections of their own arrive in either order
    assert sorted(asked[:2]) == sorted(f"/v2/{r}/manifests/{t} (token)" for r, t in WANTED[:2])
    assert asked[2:] == [f"/v2/{WANTED[1][0]}/manifests/{WANTED[1][1]} (token)"]


def test_a_kept_token_the_registry_no_longer_takes_fails_the_probe(tmp_path: Path) -> None:
    taken = ["T1"]
    registry = Registry(token=taken)
    tokens = TokenCache(tmp_path)
    config = str(tmp_path / "docker-config")
    first = RegistryProbe(registry.server.host, "http", tokens=tokens, docker_config=config)
    assert first.manifest_digest(*WANTED[0]) is not None
    first.close()
    taken[0] = "T2"  # revoked: the kept T1 is refused now
    later = RegistryProbe(registry.server.host, "http", tokens=tokens, docker_config=config)
    with pytest.raises(ProbeFailed):
        later.manifest_digest(*WANTED[0])
    with pytest.raises(ProbeFailed):
        later.manifest_digests(WANTED[:2])
    later.close()


class Named:
    """A registry naming a digest of its own for every path (so an answer read as another
    question's never passes for it); with ``token`` it asks for that Bearer token on every
    HEAD first, whatever the repository (one scope each: a 401 and a token per scope)."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.server = Server(self.respond)

    @staticmethod
    def digest(path: str) -> str:
        import hashlib

        return "sha256:" + hashlib.sha256(path.encode()).hexdigest()

    def respond(self, head: bytes) -> bytes:
        path = path_of(head)
        if self.token is not None and path.startswith("/token?"):
            return answer(200, {}, json.dumps({"token": self.token}).encode())
        if self.token is not None and f"bearer {self.token}".lower().encode() not in head.lower():
            realm = f"http://{self.server.host}/token"
            return answer(401, {"Www-Authenticate": f'Bearer realm="{realm}"'})
        return answer(200, {"Docker-Content-Digest": self.digest(path)})


MANY = [(f"team/app{i % 3}", f"t{i}") for i in range(2 * PARALLEL_MAX + 1)]


@pytest.mark.parametrize("token", [None, "T1"])
def test_questions_past_parallel_max_each_get_their_own_answer_even_after_a_401(
        token: str | None, tmp_path: Path) -> None:
    registry = Named(token)
    probe = RegistryProbe(registry.server.host, "http", tokens=TokenCache(tmp_path),
                          docker_config=str(tmp_path / "docker-config"))
    asked = probe.ask(MANY)
    answers = asked.answers()
    probe.close()
    assert answers == [(Named.digest(f"/v2/{r}/manifests/{t}"), "") for r, t in MANY]


class Sockets:
    """Every connection the probe opens, and the most open at once (``tcp`` counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from safedocker.oci import probe as module

        self.made: list[Socket] = []
        self.most = 0
        monkeypatch.setattr(module, "tcp", self.tcp)

    def tcp(self, host: str, port: int, timeout: float, *, tls: bool,
            cas: tuple[str, ...] = ()) -> Callable[[], Socket]:
        connect = tcp(host, port, timeout, tls=tls, cas=cas)

        def each() -> Socket:
            sock = connect()
            self.made.append(sock)
            self.most = max(self.most, sum(s.fileno() != -1 for s in self.made))
            return sock
        return each


def test_never_more_than_parallel_max_connections_to_the_registry_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sockets = Sockets(monkeypatch)
    registry = Named()
    probe = RegistryProbe(registry.server.host, "http")
    answers = probe.ask(MANY).answers()
    probe.close()
    assert len(answers) == len(MANY)
    batches = -(-len(MANY) // PARALLEL_MAX)
    assert len(sockets.made) == 1 + len(MANY) - batches  # the kept-alive one, one per other
    assert sockets.most == PARALLEL_MAX
    assert all(s.fileno() == -1 for s in sockets.made)


def test_a_401_in_a_batch_fetches_its_token_only_after_the_batch_is_closed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The token service is asked on a connection of its own: fetched while the batch's
    # other connections were still open, that made PARALLEL_MAX + 1 to one registry.
    sockets = Sockets(monkeypatch)
    registry = Named("T1")
    probe = RegistryProbe(registry.server.host, "http", tokens=TokenCache(tmp_path),
                          docker_config=str(tmp_path / "docker-config"))
    answers = probe.ask(MANY).answers()
    probe.close()
    assert answers == [(Named.digest(f"/v2/{r}/manifests/{t}"), "") for r, t in MANY]
    assert sockets.most <= PARALLEL_MAX
    assert all(s.fileno() == -1 for s in sockets.made)


@pytest.mark.parametrize(("netloc", "host", "port"), [
    ("127.0.0.1:5000", "127.0.0.1", 5000), ("[::1]:5000", "::1", 5000), ("[::1]", "::1", 80),
    ("registry.test", "registry.test", 80), ("registry.test:8080", "registry.test", 8080)])
def test_a_registry_is_reached_at_the_host_and_port_its_name_says(
        netloc: str, host: str, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from safedocker.oci import probe as module

    asked: list[tuple[str, int]] = []

    def recorded(host: str, port: int, timeout: float, *, tls: bool,
                 cas: tuple[str, ...] = ()) -> Callable[[], Socket]:
        asked.append((host, port))
        return tcp(host, port, timeout, tls=tls, cas=cas)

    monkeypatch.setattr(module, "tcp", recorded)
    RegistryProbe(netloc, "http").close()
    assert asked == [(host, port)]


@pytest.mark.parametrize("netloc", ["[::1]:x", "registry.test:port", "[::1]junk"])
def test_a_registry_name_that_is_not_host_and_port_fails_the_probe(netloc: str) -> None:
    with pytest.raises(ProbeFailed):
        RegistryProbe(netloc, "http")
