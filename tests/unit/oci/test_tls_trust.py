"""Both paths trust, for a registry's TLS, what dockerd trusts: the system's CAs and the
registry's own ``*.crt`` files in docker's certs.d (``/etc/docker/certs.d/<host:port>/``),
for that registry alone. The full path's requests would otherwise trust certifi's bundle
only, so a registry docker reaches with a private CA was unreachable to safe-docker.

Real TLS servers on 127.0.0.1 (tests/threaded_http.py) with certificates from
tests/tls_world.py; the full path's transport is made to speak https to loopback (it
speaks http there, as docker's default insecure registries)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from safedocker._internal import minihttp
from safedocker.errors import RegistryUnavailable
from safedocker.oci import certs, transport
from safedocker.oci.certs import CAS_MAX, registry_cas
from safedocker.oci.probe import ProbeFailed, RegistryProbe
from tests.threaded_http import Server, answer, path_of
from tests.tls_world import Authority

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DIGEST = "sha256:" + "c" * 64


def _respond(head: bytes) -> bytes:
    if path_of(head).startswith("/v2/team/app/manifests/"):
        return answer(200, {"Docker-Content-Digest": DIGEST})
    return answer(200, {}, b"{}")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A TLS registry whose CA no system store holds; certs.d under tmp_path; no CA from
    the environment; fresh process-wide warm-path contexts."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(minihttp, "_TLS", {})
    monkeypatch.setattr(certs, "CERTS_D", str(tmp_path / "certs.d"))
    monkeypatch.setattr(transport, "registry_scheme", lambda host, insecure=(): "https")
    authority = Authority("private registry ca")
    server = Server(_respond, tls=authority.server_context(tmp_path / "server", "127.0.0.1"))
    yield World(tmp_path, authority, server)


class World:
    def __init__(self, root: Path, authority: Authority, server: Server) -> None:
        self.root, self.authority, self.server = root, authority, server

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def place_ca(self, registry: str | None = None, name: str = "ca.crt") -> Path:
        directory = self.root / "certs.d" / (registry or self.registry)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(self.authority.pem())
        return directory / name


def _warm(world: World) -> tuple[str, str] | None:
    probe = RegistryProbe(world.registry, "https")
    try:
        return probe.manifest_digest("team/app", "v1")
    finally:
        probe.close()


def _full(world: World) -> int:
    sender = transport.Transport(world.registry, world.registry)
    try:
        return sender.send("GET", f"https://{world.registry}/v2/", None, None, None,
                           cap=1024).status_code
    finally:
        sender.close()


def _reached_by_neither(world: World) -> None:
    with pytest.raises(ProbeFailed):
        _warm(world)
    with pytest.raises(RegistryUnavailable):
        _full(world)


def test_a_ca_in_docker_certs_d_for_the_registry_is_trusted_by_both_paths(world: World) -> None:
    world.place_ca()
    assert _warm(world) == (DIGEST, "")
    assert _full(world) == 200


def test_without_it_neither_path_reaches_the_registry(world: World) -> None:
    with pytest.raises(ProbeFailed, match="certificate verify failed"):
        _warm(world)
    with pytest.raises(RegistryUnavailable) as info:
        _full(world)
    assert info.value.exit_code == 69


def test_a_ca_placed_for_another_registry_is_not_trusted_for_this_one(world: World) -> None:
    world.place_ca("registry.other.test:5000")
    world.place_ca(f"127.0.0.1:{world.server.port + 1}")
    _reached_by_neither(world)


def test_the_system_store_is_trusted_by_the_full_path_as_by_the_warm_path(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests alone trusts certifi's bundle, not the CAs installed on the system, which
    # docker and the warm path trust: a registry with a company CA failed cold.
    (world.root / "system.pem").write_bytes(world.authority.pem())
    monkeypatch.setenv("SSL_CERT_FILE", str(world.root / "system.pem"))
    assert _warm(world) == (DIGEST, "")
    assert _full(world) == 200


def test_a_ca_file_that_cannot_be_read_makes_the_registry_unreachable(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # As docker fails a registry whose certs.d it cannot read: never a silent fallback. A
    # file listed and then gone (or not readable: root reads every file) cannot be read.
    gone = (str(world.root / "certs.d" / world.registry / "gone.crt"),)
    monkeypatch.setattr(certs, "registry_cas", lambda registry: gone)  # both paths' source
    with pytest.raises(ProbeFailed):
        _warm(world)
    with pytest.raises(RegistryUnavailable) as info:
        _full(world)
    assert info.value.exit_code == 69
    assert "certs.d" in info.value.line()


def test_a_ca_file_holding_no_certificate_is_skipped_as_docker_skips_it(world: World) -> None:
    # docker's AppendCertsFromPEM takes what parses and ignores the rest: a stray file adds
    # no trust and takes none away.
    world.place_ca(name="zz-junk.crt").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    world.place_ca(name="empty.crt").write_bytes(b"")
    with pytest.raises(ProbeFailed):
        _warm(world)  # the junk alone: nothing trusted
    with pytest.raises(RegistryUnavailable):
        _full(world)
    world.place_ca()  # and beside the registry's CA: still reached
    assert _warm(world) == (DIGEST, "")
    assert _full(world) == 200


# --- which files ------------------------------------------------------------------------


def test_only_crt_files_in_the_registrys_own_directory_are_read_in_name_order(
        tmp_path: Path) -> None:
    directory = tmp_path / "registry.corp:5000"
    (directory / "sub.crt").mkdir(parents=True)  # a directory, not a file
    for name in ("b.crt", "a.crt", "client.cert", "client.key", "notes.txt"):
        (directory / name).write_text("x")
    os.symlink(directory / "a.crt", directory / "c.crt")  # followed, as docker reads it
    assert registry_cas("registry.corp:5000", str(tmp_path)) == tuple(
        str(directory / n) for n in ("a.crt", "b.crt", "c.crt"))
    assert registry_cas("registry.corp", str(tmp_path)) == ()  # the port is the name's


@pytest.mark.parametrize("name", ["", ".", "..", "../etc", "a/b", "a\0b"])
def test_a_registry_name_never_leads_out_of_the_certs_directory(
        tmp_path: Path, name: str) -> None:
    (tmp_path / "certs.d").mkdir()
    (tmp_path / "x.crt").write_text("x")
    (tmp_path / "certs.d" / "y.crt").write_text("y")
    assert registry_cas(name, str(tmp_path / "certs.d")) == ()


def test_at_most_cas_max_files_are_read_for_one_registry(tmp_path: Path) -> None:
    directory = tmp_path / "r"
    directory.mkdir()
    for n in range(CAS_MAX + 5):
        (directory / f"{n:03}.crt").write_text("x")
    found = registry_cas("r", str(tmp_path))
    assert len(found) == CAS_MAX and found[0].endswith("000.crt")


def test_where_openssl_finds_no_system_cas_the_full_path_trusts_requests_bundle(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # python.org's Python on macOS finds none until its Install Certificates step: requests
    # trusted certifi's bundle there, and still does (the warm path then misses).
    import ssl

    import requests.utils

    nowhere = ssl.DefaultVerifyPaths(None, None,  # type: ignore[arg-type]
                                     "SSL_CERT_FILE", "/nonexistent/cert.pem",
                                     "SSL_CERT_DIR", "/nonexistent/certs")
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: nowhere)
    monkeypatch.setattr(minihttp, "_system_ca_dir", lambda: None)
    context = transport.docker_trust(world.registry)
    bundle = ssl.create_default_context(cafile=requests.utils.DEFAULT_CA_BUNDLE_PATH)
    assert context.cert_store_stats()["x509_ca"] >= bundle.cert_store_stats()["x509_ca"] > 0


def test_where_openssl_finds_system_cas_requests_bundle_is_not_added(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    (world.root / "system.pem").write_bytes(world.authority.pem())
    monkeypatch.setenv("SSL_CERT_FILE", str(world.root / "system.pem"))
    monkeypatch.setattr(minihttp, "_system_ca_dir", lambda: None)
    context = transport.docker_trust(world.registry)
    # the file's one CA; a CA directory is read only as chains need it, certifi not at all
    assert context.cert_store_stats()["x509_ca"] == 1


def test_the_full_path_does_not_trust_certifis_bundle_which_docker_does_not_read(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests points every verified connection's pool at certifi's bundle (cert_verify
    # sets ca_certs), which urllib3 loads into the context it is given: the full path then
    # trusted certifi's CAs on top of the system's, a CA docker and the warm path refuse
    # (one the system's store distrusts, say). Here the bundle holds the test CA alone.
    import requests.adapters

    bundle = world.root / "certifi.pem"
    bundle.write_bytes(world.authority.pem())
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", str(bundle))
    _reached_by_neither(world)


def test_a_requests_ca_bundle_that_does_not_exist_makes_the_registry_unreachable(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests raises a bare OSError for it (not one of its own errors): it escaped the
    # transport, an internal error (77) past the verifier's fallback to its cache.
    world.place_ca()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(world.root / "missing.pem"))
    with pytest.raises(RegistryUnavailable) as info:
        _full(world)
    assert info.value.exit_code == 69 and "missing.pem" in info.value.line()


# --- what urllib3 makes of the context the full path hands it ---------------------------


def _full_to(world: World, server: Server, host: str = "127.0.0.1") -> int:
    registry = f"{host}:{server.port}"
    world.place_ca(registry)
    sender = transport.Transport(registry, registry)
    try:
        return sender.send("GET", f"https://{registry}/v2/", None, None, None,
                           cap=1024).status_code
    finally:
        sender.close()


def test_the_full_path_refuses_a_certificate_naming_the_host_as_its_common_name_only(
        world: World) -> None:
    # urllib3 keeps ssl's check_hostname on the context it is given: the SAN-only flag holds.
    cn_only = world.authority.server_context(world.root / "cn", "localhost",
                                             common_name_only=True)
    with pytest.raises(RegistryUnavailable, match="TLS"):
        _full_to(world, Server(_respond, tls=cn_only), "localhost")


def test_the_full_path_refuses_a_certificate_for_another_name(world: World) -> None:
    other = world.authority.server_context(world.root / "other", "registry.other.test")
    with pytest.raises(RegistryUnavailable, match="TLS"):
        _full_to(world, Server(_respond, tls=other))


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_the_full_path_refuses_a_server_that_speaks_only_tls_1_0_or_1_1(
        world: World, version: str) -> None:
    import ssl

    old = world.authority.server_context(world.root / "old", "127.0.0.1")
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 speaks TLS 1.0 and 1.1 only so
    old.minimum_version = old.maximum_version = getattr(ssl.TLSVersion, version)
    with pytest.raises(RegistryUnavailable, match="TLS"):
        _full_to(world, Server(_respond, tls=old))


@pytest.mark.parametrize("hub", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_gets_the_systems_cas_alone_as_dockerd_gives_it(
        tmp_path: Path, hub: str) -> None:
    (tmp_path / hub).mkdir()
    (tmp_path / hub / "ca.crt").write_text("x")
    assert registry_cas(hub, str(tmp_path)) == ()
