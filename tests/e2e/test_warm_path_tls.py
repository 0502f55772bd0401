"""The warm and express paths against a real HTTPS registry (docker-registry serving TLS
with a certificate from a private CA), the real dockerd and the docker CLI: a run of a
signed tag is verified, then answered by the warm path, then by its plan, each time asking
the registry over TLS through ``_ssl`` without importing ``ssl``; and a registry whose
certificate chains to no CA OpenSSL trusts is never answered from the caches.

safe-docker speaks plain HTTP to loopback addresses, so the registry is named by a host
name that resolves to loopback (the machine's own name, as /etc/hosts has it): safe-docker
then asks it over https, while dockerd, which looks the name up and finds 127.0.0.0/8,
treats it as an insecure registry (TLS without verifying) and can push and pull.

Both paths trust what dockerd trusts: the system's CAs as OpenSSL finds them (SSL_CERT_FILE
here) and the registry's certs.d CAs; the full path's ``requests`` also the file in
REQUESTS_CA_BUNDLE. Each variable names a file whose *contents* the tests swap for another
CA's, so that the command line and environment stay those of the plan: the plan is found,
and only the TLS handshake can turn it down.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.certs import CERTS_D
from safedocker.oci.hosts import registry_scheme
from tests.e2e.conftest import Warm, _audit, _command, logging_docker, trust_new_key_and_sign
from tests.e2e.test_express_path import NOT_ON_EXPRESS
from tests.e2e.test_warm_path import HEAVY
from tests.tls_world import Authority
from tests.world import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Result, SafeDocker
    from tests.world import World

MARK = "ran-the-image"  # what the container prints: its absence shows docker never ran it


def _loopback_alias() -> str:
    """A host name other than ``localhost`` that resolves to loopback addresses only."""
    for name in dict.fromkeys((socket.gethostname(), socket.getfqdn())):
        if not name or name.lower() == "localhost":
            continue
        with contextlib.suppress(OSError):
            addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
            if addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses):
                return name
    pytest.skip("no host name but localhost resolves to loopback (see /etc/hosts)")


@dataclass(frozen=True)
class TlsRegistry:
    host: str  # name:port, reached over https by safe-docker
    ca: Authority  # the CA that signed its certificate
    log: Path


@pytest.fixture(scope="module")
def tls_registry(world: World) -> Iterator[TlsRegistry]:
    """A second docker-registry, serving TLS only, stopped when the module is done."""
    name = _loopback_alias()
    address = socket.gethostbyname(name)
    host = f"{name}:{free_port()}"
    root = world.root / f"tls-registry-{host.replace(':', '-')}"
    ca = Authority("safe-docker e2e registry ca")
    ca.server_context(root / "tls", name)
    config = root / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {address}:{host.rsplit(':', 1)[1]}\n"
        f"  tls:\n    certificate: {root / 'tls' / 'server.pem'}\n"
        f"    key: {root / 'tls' / 'server.key'}\n")
    log = root / "registry.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out,
                                stderr=out, start_new_session=True)
    try:
        _wait_until_serving(proc, host, ca, log)
        yield TlsRegistry(host, ca, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _wait_until_serving(proc: subprocess.Popen[bytes], host: str, ca: Authority,
                        log: Path) -> None:
    context = ssl.create_default_context(cadata=ca.pem().decode())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the TLS registry exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"https://{host}/v2/", timeout=1,  # noqa: S310
                                        context=context):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("timed out waiting for the TLS registry")


@dataclass(frozen=True)
class Trust:
    """The files the two CA variables name; ``distrust`` puts another CA in one."""

    openssl: Path  # SSL_CERT_FILE: the system's CAs, to both paths
    requests: Path  # REQUESTS_CA_BUNDLE: CAs the full path adds

    @staticmethod
    def distrust(path: Path) -> None:
        path.write_bytes(Authority("some other ca").pem())


@pytest.fixture
def tls_warm(world: World, safe_docker: SafeDocker, tls_registry: TlsRegistry,
             tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Warm, Trust]:
    """A signed image in the TLS registry, its key trusted for its repository, and
    safe-docker's environment: both CA variables name files holding the registry's CA,
    SAFE_DOCKER_LOG=debug (each path says why it did not answer), docker logged."""
    trust = Trust(tmp_path / "openssl-ca.pem", tmp_path / "requests-ca.pem")
    for path in (trust.openssl, trust.requests):
        path.write_bytes(tls_registry.ca.pem())
    tls = {"SSL_CERT_FILE": str(trust.openssl), "REQUESTS_CA_BUNDLE": str(trust.requests),
           "SAFE_DOCKER_LOG": "debug"}
    space = f"tls-{abs(hash(request.node.name)) % 10**8}"
    image = world.push_image(f"{space}/app", registry=tls_registry.host)

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return safe_docker(*args, env={**tls, **(env or {})})

    trust_new_key_and_sign(run, tmp_path, f"{tls_registry.host}/{space}/*", image)
    wrapper, log = logging_docker(world, tmp_path)
    env = safe_docker.env(SAFE_DOCKER_REAL_DOCKER=str(wrapper), **tls)
    env.pop("SAFE_DOCKER_DRY_RUN", None)
    for variable in ("SSL_CERT_DIR", "CURL_CA_BUNDLE"):  # only the files above decide
        env.pop(variable, None)
    return Warm(safe_docker, image, tmp_path / "demo.key", log, env), trust


def _argv(w: Warm) -> list[str]:
    return ["run", "--rm", "--network", "none", w.image.tagged, "echo", MARK]


def _traced(w: Warm) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the command line under -X importtime: the process and the modules it imported."""
    w.log.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-X", "importtime", *_command()[1:], *_argv(w)],
                          env=w.env, capture_output=True, text=True, timeout=120,
                          check=False)
    names = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    return done, names


def _said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the import-time table."""
    return [line for line in done.stderr.splitlines() if not line.startswith("import time:")]


def _asked(w: Warm, registry: TlsRegistry) -> int:
    """How many times the TLS registry was asked for the tag's manifest (it logs each
    request; docker asks nothing when it runs an image it has by digest)."""
    path = f"/v2/{w.image.repo.split('/', 1)[1]}/manifests/{w.image.tag}"
    return sum(path in line for line in registry.log.read_text().splitlines())


def _three_runs(w: Warm, registry: TlsRegistry) -> tuple[set[str], set[str]]:
    """The full path, then a warm hit, then an express hit of the same command line, each
    checked to have run the image by its digest after asking the TLS registry for the
    tag; the hits' imported modules."""
    pinned = [*_argv(w)[:4], f"{w.image.repo}@{w.image.digest}", *_argv(w)[5:]]
    cold = w.run(*_argv(w))
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout == f"{MARK}\n"
    assert [c[0] for c in w.docker_calls()][-1:] == ["run"]
    asked = _asked(w, registry)
    warm, warm_names = _traced(w)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == f"{MARK}\n"
    assert w.docker_calls() == [pinned]
    assert "safedocker.gate.warm" in warm_names  # the plan was not there yet
    assert "safedocker.gate.dispatch" not in warm_names  # nor did the full path decide
    assert _asked(w, registry) > asked
    asked = _asked(w, registry)
    express, express_names = _traced(w)
    assert express.returncode == 0, express.stderr
    assert express.stdout == f"{MARK}\n"
    assert w.docker_calls() == [pinned]
    assert express_names & set(NOT_ON_EXPRESS) == set(), express_names & set(NOT_ON_EXPRESS)
    assert _asked(w, registry) > asked
    return warm_names, express_names


def test_over_https_the_second_run_is_a_warm_hit_and_the_third_an_express_hit_without_ssl(
        tls_warm: tuple[Warm, Trust], tls_registry: TlsRegistry) -> None:
    w, _ = tls_warm
    registry = w.image.repo.split("/", 1)[0]
    assert registry_scheme(registry) == "https"  # not loopback to safe-docker
    warm_names, express_names = _three_runs(w, tls_registry)
    for names in (warm_names, express_names):
        assert "_ssl" in names  # the registry was asked over TLS...
        assert "ssl" not in names  # ...through the C module alone
        assert {n.split(".")[0] for n in names} & set(HEAVY) == set()
    events = _audit(w.sd)
    assert [e["outcome"] for e in events[-3:]] == ["accepted"] * 3
    assert {e["target"] for e in events[-3:]} == {f"{w.image.repo}@{w.image.digest}"}
    assert {k: v for k, v in events[-1].items() if k not in ("time", "pid")} == \
        {k: v for k, v in events[-2].items() if k not in ("time", "pid")}


def test_a_registry_certificate_from_a_ca_openssl_does_not_trust_is_never_answered_warm(
        tls_warm: tuple[Warm, Trust], tls_registry: TlsRegistry) -> None:
    """SSL_CERT_FILE's file now holds another CA: the plan is found but its registry
    question fails the handshake, the warm path fails it too, and the full path (whose
    REQUESTS_CA_BUNDLE still holds the registry's CA) verifies the image again."""
    w, trust = tls_warm
    _three_runs(w, tls_registry)
    trust.distrust(trust.openssl)
    done, names = _traced(w)
    said = _said(done)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{MARK}\n"
    express_miss = [line for line in said if "debug: express path:" in line]
    warm_miss = [line for line in said if "debug: warm path:" in line]
    assert express_miss and "CERTIFICATE_VERIFY_FAILED" in express_miss[0], said
    assert warm_miss and "CERTIFICATE_VERIFY_FAILED" in warm_miss[0], said
    assert "safedocker.gate.dispatch" in names  # the full path decided, online
    assert not any("decided offline" in line for line in said), said
    assert w.docker_calls()[-1] == [*_argv(w)[:4], f"{w.image.repo}@{w.image.digest}",
                                    *_argv(w)[5:]]


def test_with_neither_ca_source_trusting_the_registry_only_the_cached_verdict_runs_offline(
        tls_warm: tuple[Warm, Trust], tls_registry: TlsRegistry) -> None:
    """Both files hold another CA, while a record and a plan for this very command line
    are there: neither answers, and the full path, finding the registry unreachable,
    decides offline from the signatures it verified before, says so in one line, and
    hands docker the digest verified then (never the tag)."""
    w, trust = tls_warm
    _three_runs(w, tls_registry)
    trust.distrust(trust.openssl)
    trust.distrust(trust.requests)
    done, names = _traced(w)
    said = _said(done)
    assert done.returncode == 0, done.stderr
    assert any("debug: express path:" in line and "CERTIFICATE_VERIFY_FAILED" in line
               for line in said), said
    assert "safedocker.gate.dispatch" in names
    told = [line for line in said if "debug:" not in line and "info:" not in line]
    assert told == [f"safe-docker: decided offline for {w.image.tagged} from signatures "
                    f"cached {told[0].split(' cached ')[1].split(' (')[0]} (registry "
                    f"unreachable: cannot reach {w.image.repo.split('/')[0]}, TLS handshake "
                    "or certificate verification failed)"], said
    ran = [c for c in w.docker_calls() if c[:1] == ["run"]]
    assert ran == [[*_argv(w)[:4], f"{w.image.repo}@{w.image.digest}", *_argv(w)[5:]]]


def test_with_neither_ca_source_trusting_the_registry_an_image_never_verified_fails_closed(
        tls_warm: tuple[Warm, Trust]) -> None:
    """The same, with nothing verified before: exit 69 in one line, docker never runs."""
    w, trust = tls_warm
    trust.distrust(trust.openssl)
    trust.distrust(trust.requests)
    done, _ = _traced(w)
    said = [line for line in _said(done) if "debug:" not in line and "info:" not in line]
    assert done.returncode == 69, done.stderr
    assert MARK not in done.stdout
    assert not any(c[:1] == ["run"] for c in w.docker_calls()), w.docker_calls()
    assert len(said) == 1, said
    assert said[0].startswith(
        f"safe-docker: cannot verify {w.image.tagged}: cannot reach "
        f"{w.image.repo.split('/')[0]} — TLS handshake or certificate verification failed; "
        f"no usable offline record: {w.image.tagged} was never verified here (hint: "), said


def test_a_ca_in_docker_certs_d_alone_is_trusted_cold_warm_and_express(
        tls_warm: tuple[Warm, Trust], tls_registry: TlsRegistry) -> None:
    """What dockerd trusts for this registry, the CA in /etc/docker/certs.d/<host:port>/,
    with neither variable's file holding it: the full path verifies, and the warm and
    express paths answer, all over https."""
    if os.geteuid() != 0:
        pytest.skip("placing a CA in /etc/docker/certs.d needs root")
    w, trust = tls_warm
    trust.distrust(trust.openssl)
    trust.distrust(trust.requests)
    made = [p for p in (Path(CERTS_D), Path(CERTS_D) / tls_registry.host) if not p.exists()]
    (Path(CERTS_D) / tls_registry.host).mkdir(parents=True, exist_ok=True)
    placed = Path(CERTS_D) / tls_registry.host / "ca.crt"
    try:
        placed.write_bytes(tls_registry.ca.pem())
        _three_runs(w, tls_registry)
    finally:
        placed.unlink(missing_ok=True)
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
