"""Every wait on a registry has an end, and a referrers listing has a size.

A registry that drips a byte every few seconds never trips a socket's read timeout; these
tests serve exactly that on 127.0.0.1 (headers dripped, body dripped, an answer that
never comes) and check that the client gives up by the deadline with exit 69 "timed out".
The referrers tests serve many or large pages and check the listing's bounds.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from typing import TYPE_CHECKING

import pytest

from safedocker._internal.deadline import Deadline
from safedocker.errors import ExitCode, RegistryError, RegistryUnavailable
from safedocker.oci import transport
from safedocker.oci.client import RegistryClient
from safedocker.oci.media import (
    OCI_INDEX,
    OCI_MANIFEST,
    REFERRERS_ENTRIES_MAX,
    REFERRERS_KEPT_MAX,
    REFERRERS_PAGES_MAX,
)
from safedocker.reference import Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from safedocker.oci.manifest import Descriptor

REPO = "team/app"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + "a" * 64, "size": 2},
                       "layers": []}).encode()


# --- a registry that answers as slowly as it likes --------------------------------------


class SlowServer:
    """Raw sockets on loopback: ``answer(conn, request)`` writes whatever, however slowly."""

    def __init__(self, answer: Callable[[socket.socket, bytes], None]) -> None:
        self._answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.stopped = threading.Event()
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            self.requests.append(request)
            try:
                self._answer(conn, request)
            except OSError:
                pass  # the client gave up and shut its side

    def drip(self, conn: socket.socket, data: bytes, every: float) -> None:
        for i in range(len(data)):
            if self.stopped.wait(every):
                return
            conn.sendall(data[i:i + 1])

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()


def _head(status: str = "200 OK", length: int = len(MANIFEST), **extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {OCI_MANIFEST}", f"Content-Length: {length}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def servers() -> Iterator[list[SlowServer]]:
    made: list[SlowServer] = []
    yield made
    for server in made:
        server.close()


def _serve(servers: list[SlowServer], answer: Callable[[SlowServer, socket.socket, bytes], None]
           ) -> SlowServer:
    holder: list[SlowServer] = []
    server = SlowServer(lambda conn, request: answer(holder[0], conn, request))
    holder.append(server)
    servers.append(server)
    return server


def _timed_out_within(client: RegistryClient, seconds: float) -> RegistryUnavailable:
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as err:
        client.get_manifest(REPO, "v1")
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"gave up after {elapsed:.1f} s"
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert "timed out" in err.value.line()
    assert err.value.hint
    return err.value


# --- the deadline ---------------------------------------------------------------------------


def test_a_body_dripped_a_byte_at_a_time_ends_at_the_deadline(servers: list[SlowServer]
                                                              ) -> None:
    # Each byte comes well within any read timeout; only a deadline ends this.
    def answer(server: SlowServer, conn: socket.socket, _: bytes) -> None:
        conn.sendall(_head())
        server.drip(conn, MANIFEST, 0.2)

    server = _serve(servers, answer)
    with RegistryClient(f"127.0.0.1:{server.port}", timeout=30) as client:
        client.deadline = Deadline.after(1.5, setting="registry_timeout")
        error = _timed_out_within(client, 3.0)
    assert "within 1.5 s (registry_timeout)" in error.why


def test_headers_dripped_a_byte_at_a_time_end_at_the_deadline(servers: list[SlowServer]
                                                                ) -> None:
    server = _serve(servers, lambda s, conn, _: s.drip(conn, _head() + MANIFEST, 0.2))
    with RegistryClient(f"127.0.0.1:{server.port}", timeout=30) as client:
        client.deadline = Deadline.after(1.5)
        _timed_out_within(client, 3.0)


def test_each_request_has_its_own_cap_without_a_deadline(servers: list[SlowServer]) -> None:
    server = _serve(servers, lambda s, conn, _: s.drip(conn, _head() + MANIFEST, 0.2))
    with RegistryClient(f"127.0.0.1:{server.port}", timeout=1.0) as client:
        assert client.deadline is None
        error = _timed_out_within(client, 2.5)
    assert "within 1 s" in error.why


def test_an_expired_deadline_sends_nothing(servers: list[SlowServer]) -> None:
    server = _serve(servers, lambda s, conn, _: conn.sendall(_head() + MANIFEST))
    with RegistryClient(f"127.0.0.1:{server.port}") as client:
        client.deadline = Deadline.after(0)
        _timed_out_within(client, 0.5)
    assert server.requests == []


def test_a_retry_that_would_outlast_the_deadline_is_not_waited_for(
        servers: list[SlowServer], monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(transport, "_sleep", slept.append)
    busy = _head("503 Service Unavailable", 0, Retry_After="10")
    server = _serve(servers, lambda s, conn, _: conn.sendall(busy))
    with RegistryClient(f"127.0.0.1:{server.port}") as client:
        client.deadline = Deadline.after(2.0)
        _timed_out_within(client, 1.0)
    assert slept == [] and len(server.requests) == 1


def test_a_quick_answer_is_unaffected_by_the_deadline(servers: list[SlowServer]) -> None:
    server = _serve(servers, lambda s, conn, _: conn.sendall(
        _head(Docker_Content_Digest=str(Digest.of(MANIFEST))) + MANIFEST))
    with RegistryClient(f"127.0.0.1:{server.port}") as client:
        client.deadline = Deadline.after(5)
        assert client.get_manifest(REPO, "v1").raw == MANIFEST


# --- the referrers listing -------------------------------------------------------------------


SUBJECT = Digest.of(b"subject")


def _descriptor(i: int, artifact_type: str = "application/x") -> dict[str, object]:
    return {"mediaType": OCI_MANIFEST, "size": 1, "artifactType": artifact_type,
            "digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()}


def _referrers_server(servers: list[SlowServer], page: Callable[[int], list[dict[str, object]]],
                      *, endless: bool = False) -> SlowServer:
    def answer(server: SlowServer, conn: socket.socket, request: bytes) -> None:
        target = request.split(b" ", 2)[1].decode()
        number = int(target.rpartition("page=")[2]) if "page=" in target else 0
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": page(number)}).encode()
        link = f'</v2/{REPO}/referrers/{SUBJECT}?page={number + 1}>; rel="next"'
        head = ["HTTP/1.1 200 OK", f"Content-Type: {OCI_INDEX}",
                f"Content-Length: {len(body)}", "Connection: close"]
        if endless:
            head.append(f"Link: {link}")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    return _serve(servers, answer)


def test_endless_referrers_pages_are_refused_after_the_page_bound(servers: list[SlowServer]
                                                                   ) -> None:
    server = _referrers_server(servers, lambda n: [_descriptor(n)], endless=True)
    with RegistryClient(f"127.0.0.1:{server.port}") as client, \
            pytest.raises(RegistryError, match="too many referrers") as err:
        client.referrers(REPO, SUBJECT)
    assert f"more than {REFERRERS_PAGES_MAX} pages" in err.value.why
    assert len(server.requests) == REFERRERS_PAGES_MAX


def test_referrers_pages_full_of_entries_are_refused_at_the_entry_bound(
        servers: list[SlowServer]) -> None:
    per_page = 3000  # ~0.5 MiB of descriptors: within one page's cap
    server = _referrers_server(
        servers, lambda n: [_descriptor(n * per_page + i) for i in range(per_page)],
        endless=True)
    with RegistryClient(f"127.0.0.1:{server.port}") as client, \
            pytest.raises(RegistryError, match="too many referrers") as err:
        client.referrers(REPO, SUBJECT)
    assert "more than" in err.value.why
    assert len(server.requests) <= REFERRERS_ENTRIES_MAX // per_page + 1


def test_only_the_referrers_the_caller_wants_are_kept(servers: list[SlowServer]) -> None:
    wanted = "application/vnd.dev.sigstore.bundle.v0.3+json"
    server = _referrers_server(
        servers, lambda n: [_descriptor(i, wanted if i % 100 == 0 else "application/x")
                            for i in range(1000)])
    with RegistryClient(f"127.0.0.1:{server.port}") as client:
        found = client.referrers(REPO, SUBJECT,
                                 keep=lambda d: d.artifact_type == wanted)
    assert len(found.descriptors) == 10
    assert {d.artifact_type for d in found.descriptors} == {wanted}


def test_too_many_wanted_referrers_are_refused(servers: list[SlowServer]) -> None:
    server = _referrers_server(servers, lambda n: [_descriptor(i)
                                                   for i in range(REFERRERS_KEPT_MAX + 1)])
    keep: Callable[[Descriptor], bool] = lambda d: True  # noqa: E731
    with RegistryClient(f"127.0.0.1:{server.port}") as client, \
            pytest.raises(RegistryError, match="too many referrers"):
        client.referrers(REPO, SUBJECT, keep=keep)


def test_an_oversized_referrers_page_is_refused(servers: list[SlowServer]) -> None:
    server = _referrers_server(servers, lambda n: [_descriptor(i) for i in range(6000)])
    with RegistryClient(f"127.0.0.1:{server.port}") as client, \
            pytest.raises(RegistryError, match="oversized"):
        client.referrers(REPO, SUBJECT)


# --- one deadline per verification -----------------------------------------------------------


def test_one_verification_ends_at_registry_timeout_and_leaves_no_deadline_behind(
        servers: list[SlowServer]) -> None:
    from pathlib import Path

    from safedocker.policy.config import Config, KeyEntry
    from safedocker.policy.model import Action, Policy, Rule
    from safedocker.reference import parse_reference
    from safedocker.verify.verifier import Verifier

    server = _serve(servers, lambda s, conn, _: s.drip(conn, _head() + MANIFEST, 0.2))
    registry = f"127.0.0.1:{server.port}"
    key = KeyEntry("k", "sha256:" + "0" * 64, Path("/nonexistent/k.pub"))
    config = Config(registry_timeout=1.5, keys={"k": key},
                    policy=Policy(user_rules=(Rule(f"{registry}/*", Action.VERIFY, keys=("k",)),)))
    verifier = Verifier(config)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as err:
        verifier.verify(parse_reference(f"{registry}/{REPO}:v1"))
    assert time.monotonic() - started < 3.0
    assert "timed out" in err.value.line() and "registry_timeout" in err.value.line()
    assert verifier.client(registry).deadline is None  # only inside a verification
