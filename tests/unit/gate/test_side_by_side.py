"""A command's images (a build's bases, compose services) are verified side by side through
the one verifier: one challenge and one token per scope for a registry, at most
VERIFY_WORKERS in flight, decisions in the command's order, the first refusal refuses all.

The verifier is the real one, with a real cache, over a fake registry served on
127.0.0.1 (tests/unit/oci/test_client.py's); the daemon and the docker CLI are fakes.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.engine import LocalImage
from safedocker.cache.store import Cache
from safedocker.errors import Refused, RegistryUnavailable, SafeDockerError
from safedocker.gate.build import plan_build
from safedocker.gate.decide import VERIFY_WORKERS, Gate, ImageRequest, Origin
from safedocker.oci.media import OCI_MANIFEST
from safedocker.policy.config import Config, KeyEntry
from safedocker.policy.model import Action, Mode, Policy, Rule
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.cosignkey import generate_key_pair, load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import load_public_key
from safedocker.verify.verifier import Verifier
from tests.unit.gate.fakes import CONFIG, INDEX, FakeEngine, FakeVerifier, ListAudit, verdict
from tests.unit.gate.test_build import FakeClient
from tests.unit.oci.test_client import FakeRegistry, Reply, image_manifest, serve

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from safedocker.gate.handoff import Plan
    from safedocker.oci.platform import PlatformChoice
    from safedocker.reference import ImageRef
    from safedocker.verify.verdict import Verdict

LEGACY = {"DOCKER_BUILDKIT": "0"}


@dataclass
class Registry:
    """The fake registry, what it answered, and how many requests it held at once."""

    fake: FakeRegistry
    delays: dict[str, float] = field(default_factory=dict)  # tag -> seconds, manifest GETs
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    now: int = 0
    peak: int = 0

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.fake.port}"

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            tag = target.rpartition("/manifests/")[2]
            time.sleep(self.delays.get(tag, 0.0) if "/manifests/" in target else 0.0)
            reply = self.fake.handle(method, target, headers, body)
            with self.lock:
                self.statuses.append(reply.status)
            return reply
        finally:
            with self.lock:
                self.now -= 1

    @property
    def challenges(self) -> int:
        return self.statuses.count(401)


@functools.cache
def _key_pair() -> tuple[bytes, bytes]:
    return generate_key_pair(b"pw")  # slow (an encrypted key): once for the module


@dataclass
class Signer:
    """A cosign key pair; ``push`` puts an image (signed unless told) in the registry."""

    registry: Registry
    tmp_path: Path

    def __post_init__(self) -> None:
        private_pem, public_pem = _key_pair()
        self.private = load_private_key(private_pem, b"pw")
        path = self.tmp_path / "alice.pub"
        path.write_bytes(public_pem)
        self.entry = KeyEntry("alice", load_public_key(public_pem, "alice").fingerprint, path)

    def push(self, repo: str, tag: str, *, signed: bool = True,
             onbuild: tuple[str, ...] = ()) -> str:
        fake = self.registry.fake
        config = json.dumps({"architecture": "amd64", "os": "linux",  # one image per tag
                             "config": {"Labels": {"pushed": f"{repo}:{tag}"},
                                        **({"OnBuild": list(onbuild)} if onbuild else {})},
                             }).encode()
        digest = fake.put_manifest(repo, tag, image_manifest(fake.put_blob(config),
                                                             len(config)))
        name = f"{self.registry.name}/{repo}"
        if signed:
            payload = make_payload(name, digest, None)
            layer = {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "size": len(payload),
                     "digest": str(fake.put_blob(payload)),
                     "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(
                         sign(self.private, payload)).decode()}}
            empty = fake.put_blob(b"{}")
            fake.put_manifest(repo, f"sha256-{digest.hex}.sig", {
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "size": 2, "digest": str(empty)},
                "layers": [layer]})
        return f"{name}:{tag}"

    def gate(self, *, mode: Mode = Mode.ENFORCE) -> tuple[Gate, ListAudit, io.StringIO]:
        rule = Rule(scope=f"{self.registry.name}/*", action=Action.VERIFY, keys=("alice",))
        config = Config(mode=mode, keys={"alice": self.entry},
                        policy=Policy(user_rules=(rule,)))
        verifier = Verifier(config, cache=Cache.open(self.tmp_path / "cache"))
        audit, stderr = ListAudit(), io.StringIO()
        return Gate(config, FakeEngine(), verifier, audit, stderr=stderr), audit, stderr


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))  # no credentials of the user's
    found = Registry(FakeRegistry(auth="bearer"))
    server, port = serve(found.handle)
    found.fake.port = port
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def signer(registry: Registry, tmp_path: Path) -> Signer:
    return Signer(registry, tmp_path)


def build(gate: Gate, tmp_path: Path, images: list[str]) -> Plan:
    """A legacy build of a Dockerfile with one stage per image."""
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    stages = "".join(f"FROM {image} AS s{n}\nRUN true\n" for n, image in enumerate(images))
    (context / "Dockerfile").write_text(stages)
    return plan_build(["build", "-t", "out", str(context)], gate=gate, client=FakeClient(),
                      stdin=io.BytesIO(), environ=LEGACY)


# --- one registry session, one token ----------------------------------------------------


def test_ten_bases_of_one_repository_cost_one_challenge_and_one_token_request(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    images = [signer.push("team/base", f"t{n}") for n in range(10)]
    gate, audit, _ = signer.gate()
    plan = build(gate, tmp_path, images)
    assert [e["outcome"] for e in audit.entries] == ["accepted"] * 10
    assert len(registry.fake.token_requests) == 1
    assert registry.challenges == 1
    (command,) = plan.commands
    assert command[0] == "build"


def test_bases_of_ten_repositories_cost_one_challenge_and_one_token_per_repository(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    images = [signer.push(f"team/base{n}", "v1") for n in range(10)]
    gate, audit, _ = signer.gate()
    build(gate, tmp_path, images)
    assert [e["outcome"] for e in audit.entries] == ["accepted"] * 10
    scopes = [r["query"]["scope"] for r in registry.fake.token_requests]
    assert sorted(scopes) == sorted([f"repository:team/base{n}:pull"] for n in range(10))
    assert registry.challenges == 1


# --- bounded, ordered, all or nothing ---------------------------------------------------


def test_no_more_than_the_bound_of_registry_requests_is_ever_in_flight(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    images = [signer.push("team/base", f"t{n}") for n in range(12)]
    registry.delays = {f"t{n}": 0.05 for n in range(12)}
    gate, _, _ = signer.gate()
    build(gate, tmp_path, images)
    assert 2 <= registry.peak <= VERIFY_WORKERS


def test_a_refused_base_refuses_the_whole_build_before_docker_is_handed_anything(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    images = [signer.push("team/base", f"t{n}", signed=n != 6) for n in range(10)]
    gate, audit, _ = signer.gate()
    with pytest.raises(Refused) as info:
        build(gate, tmp_path, images)
    line = info.value.line()
    assert line.count("\n") == 0 and line.startswith("safe-docker: ")
    assert "team/base:t6" in line and "Dockerfile line 13" in line
    assert info.value.exit_code == 77
    outcomes = [e["outcome"] for e in audit.entries]
    assert outcomes == ["accepted"] * 6 + ["refused"] + ["accepted"] * 3


def test_the_first_refusal_in_dockerfile_order_is_the_one_raised(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    images = [signer.push("team/base", f"t{n}", signed=n not in (2, 7)) for n in range(8)]
    registry.delays = {"t7": 0.0, "t2": 0.3}  # the later refusal is known first
    gate, _, _ = signer.gate()
    with pytest.raises(Refused, match="team/base:t2"):
        build(gate, tmp_path, images)


def test_lines_and_audit_records_follow_the_dockerfile_whatever_answers_first(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    images = [signer.push("team/base", f"t{n}", signed=n % 2 == 0) for n in range(8)]
    registry.delays = {f"t{n}": 0.02 * (8 - n) for n in range(8)}  # the last answer first
    gate, audit, stderr = signer.gate(mode=Mode.WARN)
    build(gate, tmp_path, images)
    assert [e["reference"] for e in audit.entries] == images
    warned = [line for line in stderr.getvalue().splitlines() if "warning" in line]
    assert [next(f"t{n}" for n in range(8) if f"base:t{n} " in line) for line in warned] == [
        "t1", "t3", "t5", "t7"]


# --- one deadline for the set -----------------------------------------------------------


@dataclass
class StuckVerifier(FakeVerifier):
    """A verifier whose registry never answers (nor honours its own deadline)."""

    stuck: threading.Event = field(default_factory=threading.Event)

    def verify(self, ref: ImageRef, platform: PlatformChoice | None = None) -> Verdict:
        self.stuck.wait(60)
        raise AssertionError("released only after the test")


STUCK = [ImageRequest.parse(f"127.0.0.1:5000/team/app{n}:v1", command=("compose",),
                            origin=Origin.COMPOSE) for n in range(VERIFY_WORKERS)]


def test_the_whole_set_has_one_deadline_even_if_a_verification_never_ends() -> None:
    verifier = StuckVerifier()  # and no cached material to decide from
    gate = Gate(Config(registry_timeout=1.0), FakeEngine(), verifier, ListAudit(),
                stderr=io.StringIO())
    started = time.monotonic()
    try:
        with pytest.raises(RegistryUnavailable) as info:
            gate.admit_all(STUCK)
    finally:
        verifier.stuck.set()
    assert time.monotonic() - started < 5
    assert info.value.exit_code == 69
    assert "no complete answer" in info.value.line()
    assert "registry_timeout" in info.value.line()  # the timeout's hint


def test_one_image_alone_has_the_same_deadline_even_if_its_verification_never_ends() -> None:
    # The transport bounds its own requests; the gate's deadline must hold for one image
    # whatever the verifier does, as it holds for a set.
    verifier = StuckVerifier()
    gate = Gate(Config(registry_timeout=1.0), FakeEngine(), verifier, ListAudit(),
                stderr=io.StringIO())
    started = time.monotonic()
    try:
        with pytest.raises(RegistryUnavailable) as info:
            gate.admit_all(STUCK[:1])
    finally:
        verifier.stuck.set()
    assert time.monotonic() - started < 5
    assert info.value.exit_code == 69
    assert "registry_timeout" in info.value.line()


def test_one_image_cut_short_is_told_as_the_one_images_registry_timeout() -> None:
    # The set's wording ("registry_timeout, 2 images") read "1 images" for one alone.
    verifier = StuckVerifier()
    gate = Gate(Config(registry_timeout=1.0), FakeEngine(), verifier, ListAudit(),
                stderr=io.StringIO())
    try:
        with pytest.raises(RegistryUnavailable) as info:
            gate.admit_all(STUCK[:1])
    finally:
        verifier.stuck.set()
    assert "within 1 s (registry_timeout);" in info.value.line()


def test_one_image_its_deadline_cut_short_is_decided_from_cached_material() -> None:
    request = STUCK[0]
    assert request.ref is not None
    verifier = StuckVerifier(cached={str(request.ref): verdict(request.ref, offline=True)})
    engine = FakeEngine(images={f"{request.ref.name}@{INDEX}": LocalImage(str(CONFIG))})
    gate = Gate(Config(registry_timeout=1.0), engine, verifier, ListAudit(),
                stderr=io.StringIO())
    started = time.monotonic()
    try:
        admissions = gate.admit_all([request])
    finally:
        verifier.stuck.set()
    assert time.monotonic() - started < 5
    assert [a.target for a in admissions] == [f"127.0.0.1:5000/team/app0@{INDEX}"]
    assert admissions[0].offline


def test_images_the_sets_deadline_cut_short_are_decided_from_cached_material() -> None:
    verifier = StuckVerifier(cached={str(r.ref): verdict(r.ref, offline=True)
                                     for r in STUCK if r.ref is not None})
    engine = FakeEngine(images={f"{r.ref.name}@{INDEX}": LocalImage(str(CONFIG))
                                for r in STUCK if r.ref is not None})  # offline needs it
    gate = Gate(Config(registry_timeout=1.0), engine, verifier, ListAudit(),
                stderr=io.StringIO())
    started = time.monotonic()
    try:
        admissions = gate.admit_all(STUCK)
    finally:
        verifier.stuck.set()
    assert time.monotonic() - started < 5
    assert [a.target for a in admissions] == [
        f"127.0.0.1:5000/team/app{n}@{INDEX}" for n in range(VERIFY_WORKERS)]
    assert all(a.offline for a in admissions)
    assert sorted(q for q, _ in verifier.asked if q.startswith("cached ")) == sorted(
        f"cached {r.ref}" for r in STUCK)


def test_one_image_is_verified_on_a_worker_under_the_deadline(registry: Registry, signer: Signer,
                                                     tmp_path: Path) -> None:
    image = signer.push("team/base", "only")
    gate, audit, _ = signer.gate()
    seen: list[threading.Thread] = []
    verify = gate.verifier.verify

    def spy(ref: ImageRef, platform: PlatformChoice | None = None) -> Verdict:
        seen.append(threading.current_thread())
        return verify(ref, platform)

    gate.verifier.verify = spy  # type: ignore[method-assign]
    build(gate, tmp_path, [image])
    assert len(seen) == 1 and seen[0] is not threading.current_thread()
    assert [e["outcome"] for e in audit.entries] == ["accepted"]


def test_a_refusal_is_never_a_python_class_name(registry: Registry, signer: Signer,
                                                tmp_path: Path) -> None:
    images = [signer.push("team/base", f"t{n}", signed=False) for n in range(3)]
    gate, _, _ = signer.gate()
    with pytest.raises(SafeDockerError) as info:
        build(gate, tmp_path, images)
    assert "Error" not in info.value.line() and "Exception" not in info.value.line()


def test_an_image_named_twice_is_verified_once_and_each_refusal_names_its_own_service() -> None:
    down = RegistryUnavailable("cannot reach 127.0.0.1:5000", why="connection refused")
    verifier = FakeVerifier(verdicts={"127.0.0.1:5000/team/app:v1": down,
                                      "127.0.0.1:5000/team/db:v1": verdict(
                                          "127.0.0.1:5000/team/db:v1")})
    audit = ListAudit()
    gate = Gate(Config(), FakeEngine(), verifier, audit, stderr=io.StringIO())
    requests = [ImageRequest.parse(f"127.0.0.1:5000/team/{image}:v1", command=("compose",),
                                   origin=Origin.COMPOSE, label=f"service '{name}'")
                for name, image in (("web", "app"), ("db", "db"), ("worker", "app"))]
    with pytest.raises(RegistryUnavailable) as info:
        gate.admit_all(requests)
    assert info.value.line() == ("safe-docker: cannot reach 127.0.0.1:5000 (service 'web') "
                                 "\u2014 connection refused")
    assert [e["error"] for e in audit.entries] == [
        "safe-docker: cannot reach 127.0.0.1:5000 (service 'web') \u2014 connection refused",
        None,
        "safe-docker: cannot reach 127.0.0.1:5000 (service 'worker') \u2014 connection refused"]
    assert sorted(ref for ref, _ in verifier.asked) == [
        "127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/db:v1"]


def test_one_image_named_by_every_service_is_verified_once() -> None:
    image = "127.0.0.1:5000/team/app:v1"
    verifier = FakeVerifier(verdicts={image: verdict(image)})
    audit = ListAudit()
    gate = Gate(Config(), FakeEngine(), verifier, audit, stderr=io.StringIO())
    gate.admit_all([ImageRequest.parse(image, command=("compose",), origin=Origin.COMPOSE,
                                       label=f"service 's{n}'") for n in range(5)])
    assert [ref for ref, _ in verifier.asked] == [image]
    assert [e["outcome"] for e in audit.entries] == ["accepted"] * 5


def test_a_slow_registry_in_a_set_falls_back_to_what_was_verified_here_only_where_docker_has_it(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    # The real verifier and cache end to end: what was verified online before is what a
    # slow registry's set is decided from, and only an image docker holds is admitted.
    images = [signer.push("team/base", f"t{n}") for n in range(2)]
    requests = [ImageRequest.parse(i, command=("compose",), origin=Origin.COMPOSE)
                for i in images]
    online, _, _ = signer.gate()
    pinned = [a.target for a in online.admit_all(requests)]
    assert not any(a.offline for a in online.admit_all(requests))
    registry.delays = {"t0": 5.0, "t1": 5.0}
    slow, audit, _ = signer.gate()
    slow.config = replace(slow.config, registry_timeout=1.0)
    assert isinstance(slow.verifier, Verifier)
    slow.verifier.config = slow.config
    slow.engine = FakeEngine(images={pinned[0]: LocalImage(str(CONFIG))})
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as info:
        slow.admit_all(requests)
    assert time.monotonic() - started < 4
    assert "no local copy" in info.value.line()
    assert [e["outcome"] for e in audit.entries] == ["accepted", "refused"]
    assert audit.entries[0]["target"] == pinned[0]


def test_bases_decided_from_the_cache_without_their_config_refuse_the_build(
        registry: Registry, signer: Signer, tmp_path: Path) -> None:
    # A base a set's deadline cut short is decided from the cache; its ONBUILD triggers
    # (which may use other images) are in its config, which the cache may not hold (it was
    # verified by a compose run, never read). Triggers that cannot be read are not "none".
    evil = f"{registry.name}/team/evil:v1"
    images = [signer.push("team/base", f"t{n}", onbuild=(f"COPY --from={evil} /x /x",))
              for n in range(2)]
    requests = [ImageRequest.parse(i, command=("compose",), origin=Origin.COMPOSE)
                for i in images]
    online, _, _ = signer.gate()
    pinned = [a.target for a in online.admit_all(requests)]
    registry.delays = {"t0": 5.0, "t1": 5.0}
    slow, _, _ = signer.gate()
    slow.config = replace(slow.config, registry_timeout=1.0)
    assert isinstance(slow.verifier, Verifier)
    slow.verifier.config = slow.config
    slow.engine = FakeEngine(images={p: LocalImage(str(CONFIG)) for p in pinned})
    with pytest.raises(SafeDockerError) as info:
        build(slow, tmp_path, images)
    assert "ONBUILD" in info.value.line()
