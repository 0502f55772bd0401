"""The gate, driven directly: mode, what docker gets, IDs, platforms, audit, warnings."""

from __future__ import annotations

import pytest

from safedocker._docker.engine import LocalImage, ServerPlatform
from safedocker.cache.store import TagRecord
from safedocker.errors import ExitCode, Refused, RegistryError, SafeDockerError
from safedocker.gate.decide import Admission, ImageRequest, Origin, Outcome
from safedocker.policy.model import Action, Mode
from safedocker.reference import Digest, ImageRef
from tests.unit.gate.fakes import (
    CHILD,
    CONFIG,
    INDEX,
    OTHER,
    REG,
    UNSIGNED_ID,
    World,
    verdict,
)

APP = f"{REG}/ns/app:v1"


def request(text: str = APP, origin: Origin = Origin.RUN, platform: str | None = None,
            label: str = "") -> ImageRequest:
    return ImageRequest.parse(text, command=("run", text), origin=origin, platform=platform,
                              label=label)


def refused(world: World, req: ImageRequest) -> SafeDockerError:
    with pytest.raises(SafeDockerError) as info:
        world.gate.admit(req)
    return info.value


# --- what docker is handed --------------------------------------------------------------------


def test_an_index_signature_hands_docker_the_index_and_the_tag_to_leave() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, covered=INDEX)
    admission = world.gate.admit(request())
    assert admission.outcome is Outcome.ACCEPTED
    assert admission.target == f"{REG}/ns/app@{INDEX}"
    assert admission.tag == APP and admission.pinned and not admission.present_locally
    assert world.audit.entries == [{"command": ["run", APP], "outcome": "accepted",
                                    "target": admission.target, "reference": APP,
                                    "error": None}]
    assert world.lines == []


def test_a_child_signature_hands_docker_the_child_digest() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, covered=CHILD)
    assert world.gate.admit(request()).target == f"{REG}/ns/app@{CHILD}"


def test_a_digest_the_user_named_leaves_no_tag() -> None:
    world = World()
    text = f"{REG}/ns/app@{INDEX}"
    world.verifier.verdicts[text] = verdict(text)
    admission = world.gate.admit(request(text))
    assert admission.target == text and admission.tag is None


def test_run_asks_whether_docker_has_the_pinned_image_and_pull_does_not() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP)
    world.engine.images[f"{REG}/ns/app@{INDEX}"] = LocalImage(str(CONFIG))
    assert world.gate.admit(request()).present_locally
    world.engine.asked.clear()
    assert not world.gate.admit(request(origin=Origin.PULL)).present_locally
    assert world.engine.asked == []


def test_an_image_allowed_without_a_digest_is_handed_over_by_its_canonical_name() -> None:
    world = World()
    world.verifier.verdicts["docker.io/library/cafe"] = verdict(
        "cafe", covered=None, digest=None, action=Action.ACCEPT, config=None)
    admission = world.gate.admit(request("cafe"))
    assert admission.target == "docker.io/library/cafe:latest" and admission.tag is None
    assert not admission.pinned


# --- refusals and modes -----------------------------------------------------------------------


def test_enforce_raises_the_refusal_and_records_it() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, accepted=False, reasons=("no signature",))
    error = refused(world, request())
    assert error.exit_code == ExitCode.REFUSED and "no signature" in error.line()
    assert [e["outcome"] for e in world.audit.entries] == ["refused"]
    assert world.audit.entries[0]["target"] is None
    assert world.lines == []  # the caller prints the refusal, once


def test_warn_prints_one_line_and_pins_the_digest_it_resolved() -> None:
    world = World(mode=Mode.WARN)
    world.verifier.verdicts[APP] = verdict(APP, accepted=False, reasons=("no signature",))
    admission = world.gate.admit(request())
    assert admission.outcome is Outcome.WARNED
    assert admission.target == f"{REG}/ns/app@{INDEX}" and admission.tag == APP
    assert world.lines == [
        f"safe-docker: warning: refused {APP} \u2014 no signature (continuing: mode = warn)"]
    assert admission.notes == tuple(world.lines)
    assert [e["outcome"] for e in world.audit.entries] == ["warned"]
    assert world.audit.entries[0]["target"] == admission.target


def test_warn_without_a_resolved_digest_hands_the_canonical_name() -> None:
    world = World(mode=Mode.WARN)
    world.verifier.verdicts[APP] = RegistryError("registry served a malformed manifest")
    admission = world.gate.admit(request())
    assert admission.target == APP and admission.outcome is Outcome.WARNED
    assert world.lines == ["safe-docker: warning: registry served a malformed manifest "
                           "(continuing: mode = warn)"]


def test_unmatched_warn_says_so_once() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, covered=None, digest=None, warned=True,
                                           reasons=(f"no policy scope covers {REG}/ns/app",))
    admission = world.gate.admit(request())
    assert admission.outcome is Outcome.WARNED and admission.target == APP
    assert world.lines == [f"safe-docker: warning: {APP} is not verified \u2014 no policy "
                           f"scope covers {REG}/ns/app (continuing: unmatched = warn)"]


def test_off_decides_nothing_and_records_nothing() -> None:
    world = World(mode=Mode.OFF)
    admission = world.gate.admit(request())
    assert admission == Admission(request(), Outcome.UNCHECKED, APP)
    assert world.verifier.asked == [] and world.audit.entries == []


def test_a_label_names_the_image_in_the_refusal() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, accepted=False, reasons=("no signature",))
    error = refused(world, request(label="service 'app'"))
    assert error.what == f"refused {APP} (service 'app')"


def test_a_refusal_without_an_image_is_raised_or_warned_and_recorded() -> None:
    error = Refused("refused pull --all-tags", why="no single digest")
    world = World()
    with pytest.raises(Refused):
        world.gate.refuse(["pull", "-a", "x"], error)
    warned = World(mode=Mode.WARN)
    warned.gate.refuse(["pull", "-a", "x"], error)
    assert warned.lines == ["safe-docker: warning: refused pull --all-tags \u2014 no single "
                            "digest (continuing: mode = warn)"]
    assert [e["outcome"] for e in world.audit.entries + warned.audit.entries] == [
        "refused", "warned"]


def test_all_or_nothing_records_every_image_then_raises_the_first_refusal() -> None:
    world = World()
    first, second, third = (f"{REG}/ns/{n}:v1" for n in ("a", "b", "c"))
    world.verifier.verdicts[first] = verdict(first)
    world.verifier.verdicts[second] = verdict(second, accepted=False, reasons=("unsigned",))
    world.verifier.verdicts[third] = verdict(third, accepted=False, reasons=("expired",))
    with pytest.raises(Refused) as info:
        world.gate.admit_all([request(first), request(second), request(third)])
    assert "unsigned" in info.value.why
    assert [a for a, _ in world.verifier.asked] == [first, second, third]
    assert [(e["reference"], e["outcome"]) for e in world.audit.entries] == [
        (first, "accepted"), (second, "refused"), (third, "refused")]


def test_a_failed_check_is_recorded_and_raised_even_under_warn() -> None:
    world = World(mode=Mode.WARN)
    world.verifier.verdicts[APP] = verdict(APP)

    def no_gpu(admission: Admission) -> None:
        raise SafeDockerError("the image needs a GPU")

    with pytest.raises(SafeDockerError, match="needs a GPU"):
        world.gate.admit(request(), check=no_gpu)
    assert [e["outcome"] for e in world.audit.entries] == ["refused"]


# --- a tag that moved ---------------------------------------------------------------------------


def test_a_refusal_after_the_tag_moved_names_the_verified_digest_and_when() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, accepted=False, digest=OTHER,
                                           reasons=("no signature",))
    world.verifier.verified_tags[APP] = TagRecord(f"{REG}/ns/app", "v1", INDEX, 1_700_000_000)
    error = refused(world, request())
    assert f"{REG}/ns/app:v1 moved: it was {INDEX} when verified 2023-11-14 22:13:20Z" \
        in error.why
    assert f"{REG}/ns/app@{INDEX}" in error.hint


def test_a_refusal_of_the_digest_it_was_verified_at_does_not_say_moved() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, accepted=False, reasons=("no signature",))
    world.verifier.verified_tags[APP] = TagRecord(f"{REG}/ns/app", "v1", INDEX, 1_700_000_000)
    assert "moved" not in refused(world, request()).why


# --- image IDs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [str(UNSIGNED_ID), UNSIGNED_ID.hex])
def test_an_unverified_local_image_by_id_is_refused_with_a_hint(text: str) -> None:
    world = World()
    world.engine.images[str(UNSIGNED_ID)] = LocalImage(str(UNSIGNED_ID), ("evil:latest",))
    error = refused(world, request(text))
    assert error.exit_code == ExitCode.REFUSED
    assert "is not the image of any reference verified" in error.why
    assert "run it by name" in error.hint
    assert world.verifier.asked == []  # a tag never verified here names no candidate


def test_a_short_hex_word_docker_reads_as_an_id_prefix_is_judged_as_that_image() -> None:
    world = World()
    world.engine.images["abc123"] = LocalImage(str(UNSIGNED_ID), ("evil:latest",))
    world.engine.images[str(UNSIGNED_ID)] = LocalImage(str(UNSIGNED_ID), ("evil:latest",))
    error = refused(world, request("abc123"))
    assert f"({UNSIGNED_ID})" in error.what
    assert "docker.io/library/abc123" not in str(world.verifier.asked)


def test_a_hex_word_that_is_a_local_name_is_verified_as_a_name() -> None:
    world = World()
    world.engine.images["abc123"] = LocalImage(str(CONFIG), ("abc123:latest",))
    world.verifier.verdicts["docker.io/library/abc123"] = verdict("abc123")
    admission = world.gate.admit(request("abc123"))
    assert admission.target == f"docker.io/library/abc123@{INDEX}"


def test_a_verified_image_by_id_is_handed_over_by_its_full_id() -> None:
    world = World()
    pinned = f"{REG}/ns/app@{INDEX}"
    world.engine.images[str(CONFIG)] = LocalImage(str(CONFIG), (APP,), (pinned,))
    world.verifier.verdicts[pinned] = verdict(pinned, config=CONFIG)
    admission = world.gate.admit(request(str(CONFIG)))
    assert admission.target == str(CONFIG) and admission.present_locally
    assert admission.local_id and admission.tag is None


def test_a_loaded_image_by_id_is_found_through_its_verified_tag() -> None:
    world = World()
    world.engine.images[str(CONFIG)] = LocalImage(str(CONFIG), (APP,))
    world.verifier.verified_tags[APP] = TagRecord(f"{REG}/ns/app", "v1", INDEX, 1.0)
    world.verifier.verdicts[f"{APP}@{INDEX}"] = verdict(f"{APP}@{INDEX}", config=CONFIG)
    assert world.gate.admit(request(CONFIG.hex)).target == str(CONFIG)


def test_an_id_whose_names_verify_another_config_is_refused() -> None:
    world = World()
    pinned = f"{REG}/ns/app@{INDEX}"
    world.engine.images[str(UNSIGNED_ID)] = LocalImage(str(UNSIGNED_ID), (), (pinned,))
    world.verifier.verdicts[pinned] = verdict(pinned, config=CONFIG)
    assert "is another image" in refused(world, request(str(UNSIGNED_ID))).why


def test_an_id_docker_does_not_have_is_refused() -> None:
    assert "no such local image" in refused(World(), request(str(UNSIGNED_ID))).why


def test_pull_reads_hex_as_a_name_not_an_id() -> None:
    req = request("abc123", origin=Origin.PULL)
    assert req.subject == ImageRef("docker.io", "library/abc123") and not req.may_be_id
    with pytest.raises(SafeDockerError):
        request(UNSIGNED_ID.hex, origin=Origin.PULL)  # docker: no 64-hex repository names


# --- offline ------------------------------------------------------------------------------------


def test_offline_without_a_local_copy_is_unavailable() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, offline=True)
    error = refused(world, request())
    assert error.exit_code == ExitCode.UNAVAILABLE and "offline" in error.what
    assert world.lines == [f"safe-docker: decided offline for {APP} from signatures cached "
                           "2023-11-14 22:13:20Z (registry not contacted)"]


def test_offline_with_a_loaded_image_hands_over_its_id() -> None:
    world = World()
    world.verifier.verdicts[APP] = verdict(APP, offline=True)
    world.engine.images[str(CONFIG)] = LocalImage(str(CONFIG))
    admission = world.gate.admit(request())
    assert admission.target == str(CONFIG) and admission.present_locally


# --- the platform docker will pull --------------------------------------------------------------


def test_the_platform_is_explicit_else_docker_default_platform_else_the_daemons() -> None:
    world = World(environ={"DOCKER_DEFAULT_PLATFORM": "linux/arm64"})
    world.engine.platform = ServerPlatform("linux", "s390x")
    world.verifier.verdicts[APP] = verdict(APP)
    world.gate.admit(request(platform="linux/arm/v6"))
    world.gate.admit(request())
    world.environ.clear()
    gate = world.gate
    gate.admit(request())
    gate.admit(request())
    assert [str(p.wanted) if p else None for _, p in world.verifier.asked] == [
        "linux/arm/v6", "linux/arm64", "linux/s390x", "linux/s390x"]
    assert world.engine.asked.count("platform") == 1  # once per command


def test_parsing_reads_ids_only_where_docker_does() -> None:
    assert request(str(CONFIG)).subject == CONFIG
    assert request(CONFIG.hex).subject == Digest("sha256", CONFIG.hex)
    assert request("sha256:abc").may_be_id and request("abc").may_be_id
    assert not request("ns/abc").may_be_id and not request("abc:v1").may_be_id


# --- the image config GPU decisions read ----------------------------------------------------

CUDA = {"Env": ["PATH=/bin", "CUDA_VERSION=12.2", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"]}


def test_offline_without_a_cached_config_the_verified_images_config_comes_from_docker() -> None:
    world = World()  # the fake verifier's cache holds no image config
    world.engine.images[str(CONFIG)] = LocalImage(str(CONFIG), config=CUDA)
    assert world.gate.image_config(verdict(APP, offline=True)) == {"config": CUDA}
    assert world.engine.asked == [f"inspect {CONFIG}"]  # by ID, never by a name


def test_docker_copy_whose_id_is_not_the_verified_config_is_never_read() -> None:
    world = World()
    world.engine.images[str(CONFIG)] = LocalImage(str(OTHER), config=CUDA)
    world.engine.images[f"{REG}/ns/app@{INDEX}"] = LocalImage(str(OTHER), config=CUDA)
    assert world.gate.image_config(verdict(APP, offline=True)) is None


def test_online_the_config_is_the_verifiers_alone_and_docker_is_not_asked() -> None:
    world = World()
    world.engine.images[f"{REG}/ns/app@{INDEX}"] = LocalImage(str(CONFIG), config=CUDA)
    assert world.gate.image_config(verdict(APP)) is None
    assert world.engine.asked == []


def test_offline_a_verified_image_docker_knows_by_id_only_has_its_config_read() -> None:
    world = World()  # after `docker load`: no repo digest, so not found under the pinned name
    world.engine.images[str(CONFIG)] = LocalImage(str(CONFIG), config=CUDA)
    assert world.gate.image_config(verdict(APP, offline=True)) == {"config": CUDA}
