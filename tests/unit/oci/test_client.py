"""The registry client against a fake registry served over real HTTP on 127.0.0.1.

The fake speaks just enough of the distribution API (manifests, blobs, uploads, tags,
referrers, Bearer token service, Basic auth) to drive the client through the same bytes a
real registry would send. Nothing here mocks requests or the client's internals, except
the back-off sleep.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from safedocker.errors import ExitCode, RegistryError, RegistryUnavailable
from safedocker.oci import transport
from safedocker.oci.auth import AuthCache
from safedocker.oci.client import BlobNotFound, ManifestNotFound, RegistryClient
from safedocker.oci.manifest import Descriptor
from safedocker.oci.media import (
    CONFIG_MAX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from safedocker.reference import Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = "team/app"
PASSWORD = "pa55-w0rd-never-logged"
USER = "alice"


# --- a fake registry ---------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class FakeRegistry:
    auth: str = "none"  # none | bearer | basic
    require_login: bool = False  # bearer: anonymous tokens grant nothing
    token_key: str = "token"
    referrers_api: bool = False
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    scripted: dict[str, list[Reply]] = field(default_factory=dict)  # path -> one-shot replies
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, tuple[set[str], str | None]] = field(default_factory=dict)
    blob_redirect: str | None = None  # base URL to redirect blob GETs to
    port: int = 0
    session: AuthCache = field(default_factory=AuthCache)  # the clients' shared auth cache

    # -- content --

    def put_manifest(self, repo: str, tag: str | None, doc: dict[str, Any] | bytes,
                     content_type: str | None = None) -> Digest:
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        ctype = content_type or (doc.get("mediaType", "") if isinstance(doc, dict) else "")
        digest = Digest.of(raw)
        self.manifests[(repo, str(digest))] = (ctype, raw)
        if tag:
            self.manifests[(repo, tag)] = (ctype, raw)
        return digest

    def put_blob(self, data: bytes) -> Digest:
        digest = Digest.of(data)
        self.blobs[str(digest)] = data
        return digest

    @property
    def paths(self) -> list[str]:
        return [path for _, path, _ in self.log]

    # -- auth --

    def _authorized(self, headers: dict[str, str], scope: str) -> bool:
        value = headers.get("Authorization", "")
        if self.auth == "none":
            return True
        if self.auth == "basic":
            return value == "Basic " + _b64(f"{USER}:{PASSWORD}")
        if not value.startswith("Bearer "):
            return False
        granted = self.tokens.get(value[len("Bearer "):])
        if granted is None:
            return False
        scopes, user = granted
        if self.require_login and user is None:
            return False
        repo, _, action = scope.rpartition(":")
        return any(
            s.rpartition(":")[0] == repo and action in s.rpartition(":")[2].split(",")
            for s in scopes
        )

    def challenge(self, scope: str) -> dict[str, str]:
        if self.auth == "basic":
            return {"WWW-Authenticate": 'Basic realm="fake"'}
        return {
            "WWW-Authenticate": f'Bearer realm="http://127.0.0.1:{self.port}/token",'
            f'service="fake-registry",scope="{scope}"'
        }

    def token(self, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        basic = headers.get("Authorization", "")
        user = None
        if basic:
            if basic != "Basic " + _b64(f"{USER}:{PASSWORD}"):
                return Reply(401, body=b'{"details":"incorrect username or password"}')
            user = USER
        self.token_requests.append({"query": query, "user": user})
        value = "tok-" + secrets.token_hex(16)
        self.tokens[value] = (set(query.get("scope", [])), user)
        body = {self.token_key: value, "expires_in": 300}
        return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    # -- dispatch --

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        self.log.append((method, target, headers))
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        if path in self.scripted and self.scripted[path]:
            return self.scripted[path].pop(0)
        if path == "/token":
            return self.token(query, headers)
        if not path.startswith("/v2/"):
            return Reply(404)
        rest = path[len("/v2/"):]
        for kind in ("/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/", "/tags/list"):
            if kind in rest:
                repo, _, ref = rest.partition(kind)
                break
        else:
            return Reply(404)
        push = method in ("PUT", "POST")
        scope = f"repository:{repo}:{'push' if push else 'pull'}"
        if not self._authorized(headers, scope):
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            return Reply(401, self.challenge(scope), body)
        if kind == "/manifests/":
            if method == "PUT":
                digest = self.put_manifest(repo, None if ":" in ref else ref, body,
                                           headers.get("Content-Type", ""))
                return Reply(201, {"Docker-Content-Digest": str(digest)})
            found = self.manifests.get((repo, ref))
            if found is None:
                return Reply(404, {"Content-Type": "application/json"},
                             b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')
            ctype, raw = found
            return Reply(200, {"Content-Type": ctype,
                               "Docker-Content-Digest": str(Digest.of(raw))}, raw)
        if kind == "/blobs/uploads/":
            if method == "POST":
                return Reply(202, {"Location": f"/v2/{repo}/blobs/uploads/u1?_state=abc"})
            claimed = query["digest"][0]
            if hashlib.sha256(body).hexdigest() != claimed.partition(":")[2]:
                return Reply(400)
            self.blobs[claimed] = body
            return Reply(201, {"Docker-Content-Digest": claimed})
        if kind == "/blobs/":
            data = self.blobs.get(ref)
            if data is None:
                return Reply(404)
            if self.blob_redirect and method == "GET":
                return Reply(307, {"Location": f"{self.blob_redirect}/cdn/{ref}"})
            return Reply(200, {"Content-Type": "application/octet-stream"},
                         data if method == "GET" else b"")
        if kind == "/referrers/":
            if not self.referrers_api:
                return Reply(404, {"Content-Type": "text/plain"}, b"404 page not found")
            wanted = query.get("artifactType", [None])[0]
            found_descriptors = []
            for (_repo, _ref), (_ctype, raw) in self.manifests.items():
                doc = json.loads(raw)
                if _repo != repo or ":" not in _ref or doc.get("subject", {}).get("digest") != ref:
                    continue
                artifact = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
                if wanted and artifact != wanted:
                    continue
                found_descriptors.append({"mediaType": _ctype, "digest": _ref,
                                          "size": len(raw), "artifactType": artifact})
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found_descriptors}
            headers_out = {"Content-Type": OCI_INDEX}
            if wanted:
                headers_out["OCI-Filters-Applied"] = "artifactType"
            return Reply(200, headers_out, json.dumps(index).encode())
        return Reply(404, body=b'{"errors":[{"code":"UNSUPPORTED"}]}')


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def serve(handle: Callable[[str, str, dict[str, str], bytes], Reply],
           host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if "Content-Length" not in reply.headers and reply.headers.get("X-Stream") is None:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server, int(server.server_address[1])


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real docker config, no real sleeping."""
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    yield


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(transport, "_sleep", slept.append)
    return slept


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    registry = FakeRegistry()
    server, port = serve(registry.handle)
    registry.port = port
    yield registry
    server.shutdown()
    server.server_close()


def client_for(fake: FakeRegistry, **kwargs: Any) -> RegistryClient:
    """A client of the run whose challenges and tokens ``fake.session`` holds."""
    return RegistryClient(f"127.0.0.1:{fake.port}", auth_cache=fake.session, **kwargs)


def login(fake: FakeRegistry) -> None:
    """Write an ``auths`` entry for the fake into $DOCKER_CONFIG, as `docker login` does."""
    config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    config.write_text(json.dumps(
        {"auths": {f"127.0.0.1:{fake.port}": {"auth": _b64(f"{USER}:{PASSWORD}")}}}
    ))


def image_manifest(config: Digest, config_size: int, layers: int = 1,
                   media_type: str = OCI_MANIFEST) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": str(config), "size": config_size},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "digest": str(Digest.of(bytes([i]))), "size": 1}
            for i in range(layers)
        ],
    }


def push_image(fake: FakeRegistry, tag: str = "v1", repo: str = REPO) -> tuple[Digest, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    config_digest = fake.put_blob(config)
    return fake.put_manifest(repo, tag, image_manifest(config_digest, len(config))), config


# --- anonymous reads, hashing, strict parsing ----------------------------------------------


def test_tag_resolves_to_our_hash_of_the_bytes_in_one_request(fake: FakeRegistry) -> None:
    digest, _ = push_image(fake)
    with client_for(fake) as client:
        manifest = client.get_manifest(REPO, "v1")
        assert manifest.digest == digest
        assert manifest.media_type == OCI_MANIFEST
        assert not manifest.is_index
        assert manifest.config is not None and len(manifest.layers) == 1
        assert client.requests_made == 1
    method, path, headers = fake.log[0]
    assert (method, path) == ("GET", f"/v2/{REPO}/manifests/v1")  # no /v2/ ping, no HEAD
    for media_type in (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST):
        assert media_type in headers["Accept"]
    assert "Authorization" not in headers


def test_fetch_by_digest_checks_the_bytes(fake: FakeRegistry) -> None:
    digest, _ = push_image(fake)
    with client_for(fake) as client:
        assert client.get_manifest(REPO, digest).digest == digest
        assert client.get_manifest(REPO, str(digest)).digest == digest
        other = Digest.of(b"something else")
        fake.manifests[(REPO, str(other))] = fake.manifests[(REPO, str(digest))]
        with pytest.raises(RegistryError, match="do not match the digest") as err:
            client.get_manifest(REPO, other)
    assert err.value.exit_code == ExitCode.REFUSED


def test_tag_with_disagreeing_docker_content_digest_is_refused(fake: FakeRegistry) -> None:
    digest, _ = push_image(fake)
    ctype, raw = fake.manifests[(REPO, "v1")]
    fake.scripted[f"/v2/{REPO}/manifests/v1"] = [Reply(200, {
        "Content-Type": ctype, "Docker-Content-Digest": str(Digest.of(b"not these bytes"))
    }, raw)]
    with client_for(fake) as client, pytest.raises(RegistryError, match="do not match"):
        client.get_manifest(REPO, "v1")


def test_missing_manifest_is_manifest_not_found(fake: FakeRegistry) -> None:
    with client_for(fake) as client, pytest.raises(ManifestNotFound) as err:
        client.get_manifest(REPO, "nope")
    assert isinstance(err.value, RegistryError)
    assert "MANIFEST_UNKNOWN" in err.value.why


def test_schema1_is_refused_clearly(fake: FakeRegistry) -> None:
    raw = json.dumps({"schemaVersion": 1, "name": REPO, "tag": "old", "fsLayers": []}).encode()
    fake.put_manifest(REPO, "old", raw,
                      "application/vnd.docker.distribution.manifest.v1+prettyjws")
    fake.put_manifest(REPO, "old-json", raw, "application/json")
    with client_for(fake) as client:
        for tag in ("old", "old-json"):
            with pytest.raises(RegistryError, match="schema 1") as err:
                client.get_manifest(REPO, tag)
            assert "re-push" in err.value.hint


def test_oversized_manifest_is_refused_while_streaming(fake: FakeRegistry) -> None:
    huge = b'{"schemaVersion":2,"x":"' + b"a" * (5 * 1024 * 1024) + b'"}'
    # No Content-Length: the cap must hold on the bytes actually read.
    fake.scripted[f"/v2/{REPO}/manifests/big"] = [
        Reply(200, {"Content-Type": OCI_MANIFEST, "X-Stream": "1"}, huge)
    ]
    with client_for(fake) as client, pytest.raises(RegistryError, match="oversized"):
        client.get_manifest(REPO, "big")


@pytest.mark.parametrize(
    ("raw", "content_type", "why"),
    [
        (b"{not json", OCI_MANIFEST, "invalid JSON"),
        (b'{"schemaVersion":2,"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'"}',
         OCI_MANIFEST, "invalid JSON"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(),
         OCI_MANIFEST, "disagrees"),
        (json.dumps({"schemaVersion": 3, "mediaType": OCI_INDEX, "manifests": []}).encode(),
         OCI_INDEX, "schemaVersion"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
         OCI_MANIFEST, "descriptor"),
        (json.dumps({"schemaVersion": 2, "manifests": []}).encode(), "application/json",
         "names a manifest type"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                     "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:abc",
                                    "size": 1}]}).encode(), OCI_INDEX, "digest is invalid"),
    ],
)
def test_malformed_manifests_are_refused(fake: FakeRegistry, raw: bytes, content_type: str,
                                         why: str) -> None:
    fake.put_manifest(REPO, "bad", raw, content_type)
    with client_for(fake) as client, pytest.raises(RegistryError, match="malformed") as err:
        client.get_manifest(REPO, "bad")
    assert why in err.value.why


# --- retries and unreachable registries ------------------------------------------------


def test_429_then_success_retries_honouring_retry_after(fake: FakeRegistry,
                                                        sleeps: list[float]) -> None:
    digest, _ = push_image(fake)
    fake.scripted[f"/v2/{REPO}/manifests/v1"] = [Reply(429, {"Retry-After": "2"})]
    with client_for(fake) as client:
        assert client.get_manifest(REPO, "v1").digest == digest
        assert client.requests_made == 2
    assert sleeps == [2.0]


def test_5xx_exhaustion_backs_off_then_is_unavailable(fake: FakeRegistry,
                                                     sleeps: list[float]) -> None:
    push_image(fake)
    fake.scripted[f"/v2/{REPO}/manifests/v1"] = [Reply(503), Reply(502), Reply(500), Reply(500)]
    with client_for(fake) as client, pytest.raises(RegistryUnavailable) as err:
        client.get_manifest(REPO, "v1")
    assert client.requests_made == 3
    assert sleeps == [0.5, 1.0]
    assert err.value.exit_code == ExitCode.UNAVAILABLE


def test_huge_retry_after_is_cut_down(fake: FakeRegistry, sleeps: list[float]) -> None:
    push_image(fake)
    fake.scripted[f"/v2/{REPO}/manifests/v1"] = [Reply(503, {"Retry-After": "3600"})]
    with client_for(fake) as client:
        client.get_manifest(REPO, "v1")
    assert sleeps == [transport.RETRY_WAIT_MAX]


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with RegistryClient(f"127.0.0.1:{port}") as client, \
            pytest.raises(RegistryUnavailable) as err:
        client.get_manifest(REPO, "v1")
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert "refused" in err.value.why
    assert "SAFE_DOCKER_OFFLINE=1" in err.value.hint
    assert isinstance(err.value.__cause__, Exception)


def test_timeout_is_unavailable() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts (kernel backlog) and never answers
    port = listener.getsockname()[1]
    try:
        with RegistryClient(f"127.0.0.1:{port}", timeout=0.5) as client, \
                pytest.raises(RegistryUnavailable) as err:
            client.get_manifest(REPO, "v1")
        assert "timed out" in err.value.line()
    finally:
        listener.close()


# --- schemes and hosts (no network) ------------------------------------------------------


@pytest.mark.parametrize(
    ("registry", "insecure", "base_url"),
    [
        ("example.com", (), "https://example.com"),
        ("example.com:5000", (), "https://example.com:5000"),
        ("docker.io", (), "https://registry-1.docker.io"),
        ("index.docker.io", (), "https://registry-1.docker.io"),
        ("ghcr.io", ("example.com",), "https://ghcr.io"),
        ("example.com", ("example.com",), "http://example.com"),
        ("example.com:5000", ("example.com:5000",), "http://example.com:5000"),
        ("example.com:5000", ("example.com",), "http://example.com:5000"),
        ("example.com:5000", ("example.com:6000",), "https://example.com:5000"),
        ("10.1.2.3:5000", ("10.0.0.0/8",), "http://10.1.2.3:5000"),
        ("localhost", (), "http://localhost"),
        ("localhost:5000", (), "http://localhost:5000"),
        ("127.0.0.1:5000", (), "http://127.0.0.1:5000"),
        ("127.1.2.3", (), "http://127.1.2.3"),
        ("[::1]:5000", (), "http://[::1]:5000"),
        ("localhost.example.com", (), "https://localhost.example.com"),
        ("128.0.0.1", (), "https://128.0.0.1"),
    ],
)
def test_https_unless_loopback_or_listed_insecure(registry: str, insecure: tuple[str, ...],
                                                  base_url: str) -> None:
    with RegistryClient(registry, insecure_registries=insecure) as client:
        assert client.base_url == base_url
        assert client.requests_made == 0


def test_plain_http_token_realm_for_a_remote_host_is_refused(fake: FakeRegistry) -> None:
    push_image(fake)
    fake.scripted[f"/v2/{REPO}/manifests/v1"] = [Reply(401, {
        "WWW-Authenticate": 'Bearer realm="http://auth.example.com/token",service="x"'
    })]
    with client_for(fake) as client, pytest.raises(RegistryError, match="plain HTTP"):
        client.get_manifest(REPO, "v1")
    assert client.requests_made == 1  # nothing went to auth.example.com


# --- authentication ----------------------------------------------------------------------


def test_bearer_flow_sends_service_and_scope_and_caches_the_token(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    digest, config = push_image(fake)
    with client_for(fake) as client:
        manifest = client.get_manifest(REPO, "v1")
        assert manifest.digest == digest
        assert client.requests_made == 3  # 401, token, retry
        assert manifest.config is not None
        assert client.get_blob(REPO, manifest.config, CONFIG_MAX) == config
        assert client.requests_made == 4  # the token is reused for the same scope
    assert len(fake.token_requests) == 1
    query = fake.token_requests[0]["query"]
    assert query["service"] == ["fake-registry"]
    assert query["scope"] == [f"repository:{REPO}:pull"]
    assert fake.token_requests[0]["user"] is None  # anonymous: no credentials configured

    # A second client of the same run knows the challenge and the token: one request.
    with client_for(fake) as again:
        again.get_manifest(REPO, "v1")
        assert again.requests_made == 1
    # Another repository needs another scope: token first, no 401 round trip.
    push_image(fake, repo="team/other")
    with client_for(fake) as third:
        third.get_manifest("team/other", "v1")
        assert third.requests_made == 2
    assert len(fake.token_requests) == 2


def test_auth_is_remembered_per_cache_not_per_process(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    push_image(fake)
    with client_for(fake) as client:
        client.get_manifest(REPO, "v1")
    other_run = RegistryClient(f"127.0.0.1:{fake.port}", auth_cache=AuthCache())
    with other_run:
        other_run.get_manifest(REPO, "v1")
        assert other_run.requests_made == 3  # 401, token, retry: nothing shared
    assert len(fake.token_requests) == 2


def test_access_token_field_is_accepted(fake: FakeRegistry) -> None:
    fake.auth, fake.token_key = "bearer", "access_token"
    digest, _ = push_image(fake)
    with client_for(fake) as client:
        assert client.get_manifest(REPO, "v1").digest == digest


def test_expired_or_rejected_token_is_renewed_once(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    push_image(fake)
    with client_for(fake) as client:
        client.get_manifest(REPO, "v1")
    fake.tokens.clear()  # the registry forgot every token it issued
    with client_for(fake) as client:
        client.get_manifest(REPO, "v1")
        assert client.requests_made == 3  # stale token → 401 → new token → success
    assert len(fake.token_requests) == 2


def test_bearer_with_credentials_from_docker_config_auths(fake: FakeRegistry) -> None:
    fake.auth, fake.require_login = "bearer", True
    digest, _ = push_image(fake)
    with client_for(fake) as anonymous, pytest.raises(RegistryError) as err:
        anonymous.get_manifest(REPO, "v1")
    assert "docker login" in err.value.hint
    fake.session = AuthCache()  # what a new run knows: nothing
    login(fake)
    with client_for(fake) as client:
        assert client.get_manifest(REPO, "v1").digest == digest
    assert fake.token_requests[-1]["user"] == USER


def test_docker_config_dir_argument_overrides_the_environment(fake: FakeRegistry,
                                                              tmp_path: Path) -> None:
    fake.auth = "basic"
    digest, _ = push_image(fake)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps(
        {"auths": {f"127.0.0.1:{fake.port}": {"auth": _b64(f"{USER}:{PASSWORD}")}}}
    ))
    with client_for(fake, docker_config_dir=str(elsewhere)) as client:
        assert client.get_manifest(REPO, "v1").digest == digest


def test_basic_challenge(fake: FakeRegistry) -> None:
    fake.auth = "basic"
    digest, _ = push_image(fake)
    with client_for(fake) as anonymous, pytest.raises(RegistryError, match="denied"):
        anonymous.get_manifest(REPO, "v1")
    login(fake)
    fake.session = AuthCache()  # what a new run knows: nothing
    with client_for(fake) as client:
        assert client.get_manifest(REPO, "v1").digest == digest
        assert client.requests_made == 2
        client.get_manifest(REPO, digest)
        assert client.requests_made == 3  # Basic sent up front once the challenge is known


def test_wrong_password_is_refused_with_a_login_hint(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    push_image(fake)
    config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    config.write_text(json.dumps(
        {"auths": {f"127.0.0.1:{fake.port}": {"auth": _b64(f"{USER}:wrong-{PASSWORD}")}}}
    ))
    with client_for(fake) as client, pytest.raises(RegistryError) as err:
        client.get_manifest(REPO, "v1")
    assert "docker login" in err.value.hint
    assert PASSWORD not in str(err.value)


def _install_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: str,
                    secret: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "helper.log"
    helper = bindir / "docker-credential-test"
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$1 $server" >> {log}\n'
        f'if [ "$1" = get ] && [ "$server" = "{server}" ]; then\n'
        f"  printf '%s' '{{\"ServerURL\":\"{server}\",\"Username\":\"{USER}\","
        f"\"Secret\":\"{secret}\"}}'\n"
        "  exit 0\nfi\n"
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.mark.parametrize("section", ["credHelpers", "credsStore"])
def test_credentials_from_a_credential_helper(fake: FakeRegistry, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              section: str) -> None:
    fake.auth, fake.require_login = "bearer", True
    digest, _ = push_image(fake)
    server = f"127.0.0.1:{fake.port}"
    log = _install_helper(tmp_path, monkeypatch, server, PASSWORD)
    value: Any = {server: "test"} if section == "credHelpers" else "test"
    (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps({section: value}))
    with client_for(fake) as client:
        assert client.get_manifest(REPO, "v1").digest == digest
    assert fake.token_requests[-1]["user"] == USER
    assert log.read_text().split() == ["get", server]


def test_no_secret_reaches_logs_or_errors(fake: FakeRegistry,
                                          caplog: pytest.LogCaptureFixture) -> None:
    fake.auth, fake.require_login = "bearer", True
    push_image(fake)
    login(fake)
    caplog.set_level(logging.DEBUG)
    with client_for(fake) as client:
        manifest = client.get_manifest(REPO, "v1")
        assert manifest.config is not None
        client.get_blob(REPO, manifest.config, CONFIG_MAX)
        fake.tokens.clear()
        fake.scripted["/token"] = [Reply(401)]
        with pytest.raises(RegistryError) as err:
            client.get_manifest(REPO, "v1")
    issued = [h.get("Authorization", "") for _, _, h in fake.log if h.get("Authorization")]
    assert issued, "the fetch was authenticated"
    secrets_used = {PASSWORD, _b64(f"{USER}:{PASSWORD}"), *fake.tokens}
    secrets_used |= {value.split(" ", 1)[1] for value in issued}
    text = caplog.text + str(err.value) + repr(err.value) + repr(client)
    assert caplog.records, "debug logging was captured"
    for secret in secrets_used:
        assert secret not in text
    assert "Authorization" not in caplog.text


# --- blobs -----------------------------------------------------------------------------------


def test_blob_is_hash_checked_and_capped(fake: FakeRegistry) -> None:
    data = b"x" * 2048
    digest = fake.put_blob(data)
    with client_for(fake) as client:
        assert client.get_blob(REPO, digest, 4096) == data
        with pytest.raises(RegistryError, match="oversized"):
            client.get_blob(REPO, digest, 1024)
        with pytest.raises(RegistryError, match="too large"):
            client.get_blob(REPO, Descriptor("application/octet-stream", digest, 2048), 1024)
        fake.blobs[str(digest)] = b"y" * 2048
        with pytest.raises(RegistryError, match="do not match the digest"):
            client.get_blob(REPO, digest, 4096)
        with pytest.raises(BlobNotFound):
            client.get_blob(REPO, Digest.of(b"absent"), 4096)


def test_blob_redirect_to_another_host_drops_authorization(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    data = b"layer bytes"
    digest = fake.put_blob(data)
    cdn_seen: list[dict[str, str]] = []

    def cdn(method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        cdn_seen.append(headers)
        return Reply(200, {"Content-Type": "application/octet-stream"}, data)

    server, port = serve(cdn)
    fake.blob_redirect = f"http://localhost:{port}"  # another origin than 127.0.0.1:PORT
    try:
        with client_for(fake) as client:
            assert client.get_blob(REPO, digest, 1024) == data
    finally:
        server.shutdown()
        server.server_close()
    assert any("Authorization" in h for _, _, h in fake.log)
    assert len(cdn_seen) == 1 and "Authorization" not in cdn_seen[0]


# --- platforms --------------------------------------------------------------------------


def test_resolve_through_anindex_of(fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    config = b'{"architecture":"arm64","os":"linux"}'
    config_digest = fake.put_blob(config)
    arm = fake.put_manifest(REPO, None, image_manifest(config_digest, len(config)))
    amd = fake.put_manifest(REPO, None, image_manifest(config_digest, len(config), layers=2))
    index = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": str(amd), "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": str(arm), "size": 1,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]}
    index_digest = fake.put_manifest(REPO, "multi", index)
    with client_for(fake) as client:
        top = client.get_manifest(REPO, "multi")
        assert top.is_index and top.digest == index_digest
        resolved = client.resolve(REPO, "multi", "linux/arm64")
        assert resolved.digest == index_digest
        assert resolved.manifest.digest == arm
        assert resolved.index is not None and resolved.index.digest == index_digest
        monkeypatch.setattr("platform.machine", lambda: "x86_64")
        assert client.resolve(REPO, "multi").manifest.digest == amd


# --- referrers ---------------------------------------------------------------------------


def _attach_signature(fake: FakeRegistry, subject: Digest, artifact_type: str) -> Digest:
    blob = fake.put_blob(b"{}")
    doc = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": str(blob),
                   "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": str(subject), "size": 1},
    }
    return fake.put_manifest(REPO, None, doc)


def test_referrers_api(fake: FakeRegistry) -> None:
    fake.referrers_api = True
    subject, _ = push_image(fake)
    bundle = _attach_signature(fake, subject, "application/vnd.dev.sigstore.bundle.v0.3+json")
    _attach_signature(fake, subject, "application/spdx+json")
    with client_for(fake) as client:
        everything = client.referrers(REPO, subject)
        assert everything.source == "api" and len(everything.descriptors) == 2
        only = client.referrers(REPO, subject, "application/vnd.dev.sigstore.bundle.v0.3+json")
        assert only.source == "api"
        assert [d.digest for d in only.descriptors] == [bundle]
        assert client.requests_made == 2


def test_referrers_fall_back_to_the_tag_schema(fake: FakeRegistry) -> None:
    subject, _ = push_image(fake)
    with client_for(fake) as client:
        empty = client.referrers(REPO, subject)
        assert (empty.source, empty.descriptors) == ("tag", ())
        bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json"
        sig = _attach_signature(fake, subject, bundle_type)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": str(sig), "size": 1,
             "artifactType": bundle_type},
            {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(b"sbom")), "size": 1,
             "artifactType": "application/spdx+json"},
        ]}
        fake.put_manifest(REPO, subject.tag_prefix, index)
        found = client.referrers(REPO, subject, bundle_type)
        assert found.source == "tag"
        assert [d.digest for d in found.descriptors] == [sig]
        assert found.index is not None
    assert f"/v2/{REPO}/manifests/{subject.tag_prefix}" in fake.paths


def test_referrers_without_the_api_go_straight_to_the_tag_schema(fake: FakeRegistry) -> None:
    fake.referrers_api = True  # even where it has one: the caller chose
    subject, _ = push_image(fake)
    with client_for(fake) as client:
        listed = client.referrers(REPO, subject, api=False)
        assert listed.source == "tag" and client.requests_made == 1
        assert client.referrers_api is None  # not asked: nothing learned
    assert fake.paths == [f"/v2/{REPO}/manifests/{subject.tag_prefix}"]


@pytest.mark.parametrize(("answer", "learned"), [(404, False), (405, False), (501, False),
                                                 (400, None), (406, None)])
def test_the_client_learns_that_a_registry_has_no_referrers_api_only_when_it_says_so(
        fake: FakeRegistry, answer: int, learned: bool | None) -> None:
    subject, _ = push_image(fake)
    fake.scripted[f"/v2/{REPO}/referrers/{subject}"] = [Reply(answer)]
    with client_for(fake) as client:
        assert client.referrers(REPO, subject).source == "tag"
        assert client.referrers_api is learned


def test_the_client_learns_that_a_registry_lists_referrers(fake: FakeRegistry) -> None:
    fake.referrers_api = True
    subject, _ = push_image(fake)
    with client_for(fake) as client:
        assert client.api_referrers(REPO, subject) is not None
        assert client.referrers_api is True
    fake.referrers_api = False
    with client_for(fake) as client:
        assert client.api_referrers(REPO, subject) is None  # no tag-schema request either
        assert client.referrers_api is False and client.requests_made == 1


# --- tags and push -----------------------------------------------------------------------


def test_push_blob_and_manifest_then_read_back(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    subject, _ = push_image(fake)
    payload = b'{"critical":{}}'
    with client_for(fake) as client:
        layer = client.push_blob(REPO, payload)
        assert layer == Digest.of(payload)
        before = client.requests_made
        assert client.push_blob(REPO, payload) == layer  # already there: HEAD only
        assert client.requests_made == before + 1
        manifest = json.dumps(image_manifest(layer, len(payload), layers=0)).encode()
        pushed = client.push_manifest(REPO, f"{subject.tag_prefix}.sig", manifest, OCI_MANIFEST)
        assert pushed == Digest.of(manifest)
        back = client.get_manifest(REPO, f"{subject.tag_prefix}.sig")
        assert back.digest == pushed and back.raw == manifest
        assert client.get_blob(REPO, layer, 1024) == payload
    scopes = {s for t in fake.token_requests for s in t["query"]["scope"]}
    assert f"repository:{REPO}:pull,push" in scopes


def test_unresolvable_host_is_unavailable() -> None:
    with RegistryClient("registry.invalid", timeout=4.0) as client, \
            pytest.raises(RegistryUnavailable) as err:
        client.get_manifest(REPO, "v1")
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert "SAFE_DOCKER_OFFLINE=1" in err.value.hint


def test_netrc_credentials_never_replace_the_registry_token(
    fake: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.auth = "bearer"
    digest, _ = push_image(fake)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login mallory password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with client_for(fake) as client:
        assert client.get_manifest(REPO, "v1").digest == digest
    assert all(
        h.get("Authorization", "").startswith("Bearer ") or "Authorization" not in h
        for _, _, h in fake.log
    )


# --- A2-2: a redirect's Location is the registry's text -----------------------------------


@pytest.mark.parametrize("location", [
    "ftp://x/\x1b]52;c;eA==\x07\x1b[2K",  # not http(s): refused, the text shown escaped
    "ftp://x/\x9b2K",  # not UTF-8 on the wire (requests decodes it as UTF-8)
])
def test_a_hostile_redirect_location_is_a_refusal_in_one_printable_line(
        fake: FakeRegistry, location: str) -> None:
    fake.scripted[f"/v2/{REPO}/manifests/v1"] = [Reply(302, {"Location": location})]
    with client_for(fake) as client, pytest.raises(RegistryError) as refused:
        client.get_manifest(REPO, "v1")
    line = refused.value.line()
    assert all(c.isprintable() for c in line), ascii(line)
    assert refused.value.exit_code == 77
