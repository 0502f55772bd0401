"""The verification issue's "must show", end to end: a real dockerd, a real registry.

Every refusal is checked the same way: exit 77, one stderr line that says why, and
nothing of the image (neither its tag nor its digest) in docker afterwards. Keys, policy
and most images are made once per module; each test uses its own repository so that
tests do not depend on their order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.client import RegistryClient
from safedocker.oci.media import MANIFEST_ACCEPT
from safedocker.reference import Digest
from tests.e2e.conftest import Result, SafeDocker
from tests.e2e.tamper_proxy import TamperProxy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.world import Image, World

PASSWORD = "pw"  # noqa: S105 - test keys only
BLOB_MAX = 64 * 1024 * 1024
ONE_OF_TWO = "1 trusted signer(s), policy requires 2"


@dataclass
class Home(SafeDocker):
    """A safe-docker home shared by the module, with the key password set."""

    def env(self, **extra: str) -> dict[str, str]:
        return super().env(**{"COSIGN_PASSWORD": PASSWORD, **extra})


@dataclass(frozen=True)
class Keys:
    demo: Path  # trusted as "demo"; the key of every rule
    other: Path  # trusted as "other"; in the threshold rule only
    stranger: Path  # never trusted in this home


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(world: World, tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(world=world, home=tmp_path_factory.mktemp("sd-flow"))


@pytest.fixture(scope="module")
def keys(home: Home, world: World, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    key_dir = tmp_path_factory.mktemp("keys")
    home.ok("keys", "generate", "demo", "--dir", str(key_dir))
    home.ok("keys", "generate", "other", "--dir", str(key_dir))
    elsewhere = Home(world=world, home=tmp_path_factory.mktemp("sd-elsewhere"))
    elsewhere.ok("keys", "generate", "stranger", "--dir", str(key_dir))
    return Keys(key_dir / "demo.key", key_dir / "other.key", key_dir / "stranger.key")


@pytest.fixture(scope="module")
def policy(home: Home, keys: Keys, world: World) -> Home:
    """One rule per namespace of the registry; the home with these rules."""
    reg = world.registry
    home.ok("policy", "add", f"{reg}/flow/*", "--key", "demo")
    home.ok("policy", "add", f"{reg}/thresh/*", "--key", "demo", "--key", "other",
            "--threshold", "2")
    home.ok("policy", "add", f"{reg}/annot/*", "--key", "demo", "--annotation", "team=ml")
    home.ok("policy", "add", f"{reg}/tlog/*", "--key", "demo", "--tlog", "required")
    home.ok("policy", "add", f"{reg}/xrepo/*", "--key", "demo", "--reference", "repository")
    home.ok("policy", "add", f"{reg}/xdigest/*", "--key", "demo", "--reference", "digest")
    home.ok("policy", "deny", f"{reg}/denied/*")
    home.ok("policy", "allow", f"{reg}/allowed/*")
    return home


@pytest.fixture(scope="module")
def signed(world: World, policy: Home, keys: Keys) -> Image:
    image = world.push_image("flow/app", "v1")
    sign(policy, keys.demo, image.tagged)
    return image


@pytest.fixture
def sd(policy: Home) -> Home:
    return policy


# --- helpers -------------------------------------------------------------------------------


def sign(home: Home, key: Path, image: str, *annotations: str) -> None:
    flags = [arg for item in annotations for arg in ("-a", item)]
    home.ok("sign", "--key", str(key), *flags, image)


def _repository(image: Image) -> str:
    return image.repo.split("/", 1)[1]


def assert_refused(world: World, result: Result, *images: Image, why: str) -> None:
    """Exit 77, one line naming the reason, and docker has none of ``images``."""
    assert result.exit_code == 77, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    print(lines)  # shown when the test fails
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("safe-docker: "), lines
    assert why in lines[0], lines[0]
    assert result.stdout == ""
    for image in images:
        assert not world.has_image(image.tagged), image.tagged
        assert not world.has_image(image.pinned), image.pinned


def copy_manifest(client: RegistryClient, src_repo: str, src_ref: str,
                  dst_repo: str, dst_ref: str) -> Digest:
    """Copy a manifest and its blobs byte for byte (same digest) to another tag/repository."""
    manifest = client.get_manifest(src_repo, src_ref, accept=MANIFEST_ACCEPT)
    for blob in (manifest.config, *manifest.layers):
        if blob is not None and not client.blob_exists(dst_repo, blob.digest):
            client.push_blob(dst_repo, client.get_blob(src_repo, blob, BLOB_MAX))
    return client.push_manifest(dst_repo, dst_ref, manifest.raw, manifest.media_type)


def sig_tag(image: Image) -> str:
    return f"{Digest.parse(image.digest).tag_prefix}.sig"


def docker_argv(world: World, *args: str) -> list[str]:
    return [world.docker, *args]


# --- a signed image is pulled, run and created by its digest ----------------------------------


def test_signed_image_is_pulled_by_digest_and_keeps_its_tag(
    world: World, sd: Home, signed: Image
) -> None:
    sd.ok("pull", signed.tagged)
    assert world.has_image(signed.pinned)
    listed = world.run_docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode()
    assert signed.tagged in listed.splitlines()
    inspected = json.loads(world.run_docker("image", "inspect", signed.tagged).stdout)
    assert signed.pinned in inspected[0]["RepoDigests"]


def test_signed_image_runs_and_prints_from_the_container(sd: Home, signed: Image) -> None:
    result = sd.ok("run", "--rm", "--network", "none", signed.tagged, "echo", "hi")
    assert result.stdout == "hi\n"


def test_created_container_is_pinned_to_the_verified_digest(
    world: World, sd: Home, signed: Image
) -> None:
    container = sd.ok("create", "--network", "none", signed.tagged, "echo", "hi").stdout.strip()
    try:
        image = world.run_docker("inspect", "--format", "{{.Config.Image}}", container)
        assert image.stdout.decode().strip() == signed.pinned
    finally:
        world.run_docker("rm", "-f", container, check=False)


def test_dry_run_prints_the_pinned_argv_and_runs_nothing(
    world: World, sd: Home, signed: Image
) -> None:
    world.remove_images(signed.tagged, signed.pinned)
    result = sd.ok("run", "--rm", "--network", "none", signed.tagged, "echo", "hi",
                   SAFE_DOCKER_DRY_RUN="1")
    # docker lacks the image: pulled by digest and tagged first, as `docker run` leaves it.
    assert result.dry_run_argvs == [
        docker_argv(world, "pull", signed.pinned),
        docker_argv(world, "tag", signed.pinned, signed.tagged),
        docker_argv(world, "run", "--rm", "--network", "none", signed.pinned, "echo", "hi"),
    ]
    assert not world.has_image(signed.pinned)
    pull = sd.ok("pull", signed.tagged, SAFE_DOCKER_DRY_RUN="1")
    assert pull.dry_run_argvs == [
        docker_argv(world, "pull", signed.pinned),
        docker_argv(world, "tag", signed.pinned, signed.tagged),
    ]


def test_a_signed_digest_the_user_gave_is_verified_and_kept(
    world: World, sd: Home, signed: Image
) -> None:
    result = sd.ok("run", "--rm", signed.pinned, SAFE_DOCKER_DRY_RUN="1")
    assert result.dry_run_argvs == [docker_argv(world, "run", "--rm", signed.pinned)]


# --- refused, and nothing pulled -----------------------------------------------------------


def test_unsigned_image_is_refused_and_nothing_is_pulled(world: World, sd: Home) -> None:
    unsigned = world.push_image("flow/unsigned", "v1")
    assert_refused(world, sd("pull", unsigned.tagged), unsigned, why="no signature")
    assert_refused(world, sd("run", "--rm", "--network", "none", unsigned.tagged, "true"),
                   unsigned, why="no signature")


def test_an_unsigned_digest_the_user_gave_is_still_verified(world: World, sd: Home) -> None:
    unsigned = world.push_image("flow/unsigned-pinned", "v1")
    assert_refused(world, sd("pull", unsigned.pinned), unsigned, why="no signature")
    assert_refused(world, sd("run", "--rm", unsigned.pinned, "true"), unsigned,
                   why="no signature")


@pytest.mark.parametrize("signer", ["other", "stranger"])
def test_image_signed_by_a_key_outside_the_rule_is_refused(
    world: World, sd: Home, keys: Keys, signer: str
) -> None:
    """"other" is trusted but not in the flow/* rule; "stranger" is not trusted at all."""
    image = world.push_image(f"flow/by-{signer}", "v1")
    sign(sd, getattr(keys, signer), image.tagged)
    assert_refused(world, sd("pull", image.tagged), image,
                   why="does not verify with any trusted key (demo)")


def test_repointed_tag_is_refused_and_nothing_is_pulled(
    world: World, sd: Home, keys: Keys
) -> None:
    original = world.push_image("flow/repointed", "v1")
    sign(sd, keys.demo, original.tagged)
    assert sd("verify", original.tagged).exit_code == 0  # accepted before the re-point

    repointed = world.push_image("flow/repointed", "v1")  # same tag, new unsigned manifest
    assert repointed.digest != original.digest
    result = sd("pull", original.tagged)
    assert_refused(world, result, original, repointed, why="no signature")
    verdict = json.loads(sd("verify", "--json", original.tagged).stdout)
    assert verdict["digest"] == repointed.digest  # the tag's new target is what was judged
    assert verdict["accepted"] is False


def test_signature_copied_to_another_digest_is_refused(
    world: World, sd: Home, keys: Keys
) -> None:
    """A's valid signature placed on B's .sig tag names A's digest, not B's."""
    a = world.push_image("flow/swap", "a")
    b = world.push_image("flow/swap", "b")
    sign(sd, keys.demo, a.tagged)
    with RegistryClient(world.registry) as client:
        copy_manifest(client, "flow/swap", sig_tag(a), "flow/swap", sig_tag(b))
    assert_refused(world, sd("pull", b.tagged), b, why=f"names digest {a.digest}, not {b.digest}")


def _copy_image_and_signature(world: World, image: Image, dst_repo: str) -> Image:
    with RegistryClient(world.registry) as client:
        digest = copy_manifest(client, _repository(image), image.tag, dst_repo, image.tag)
        assert str(digest) == image.digest
        copy_manifest(client, _repository(image), sig_tag(image), dst_repo, sig_tag(image))
    return type(image)(repo=f"{world.registry}/{dst_repo}", tag=image.tag, digest=image.digest)


def test_signature_for_another_repository_is_refused_under_reference_repository(
    world: World, sd: Home, keys: Keys
) -> None:
    """The same bytes in a second repository, with the signature made for the first."""
    original = world.push_image("xrepo/signed", "v1")
    sign(sd, keys.demo, original.tagged)
    assert sd("verify", original.tagged).exit_code == 0

    under_repository = _copy_image_and_signature(world, original, "xrepo/copy")
    assert_refused(world, sd("pull", under_repository.tagged), under_repository,
                   why=f"signature is for {original.repo}, not {under_repository.repo}")

    under_digest = _copy_image_and_signature(world, original, "xdigest/copy")
    result = sd.ok("pull", under_digest.tagged, SAFE_DOCKER_DRY_RUN="1")
    assert result.dry_run_argvs[0] == docker_argv(world, "pull", under_digest.pinned)


# --- a registry that lies about manifest bytes ------------------------------------------------


@pytest.fixture(scope="module")
def proxy(world: World, policy: Home) -> Iterator[TamperProxy]:
    with TamperProxy(world.registry) as tamper:
        # The image is reached under the proxy's address, so the rule checks digests only.
        policy.ok("policy", "add", f"{tamper.registry}/*", "--key", "demo",
                  "--reference", "digest")
        yield tamper


@pytest.fixture
def behind_proxy(world: World, sd: Home, keys: Keys, proxy: TamperProxy) -> Iterator[Image]:
    image = world.push_image("flow/proxied", "v1")
    sign(sd, keys.demo, image.tagged)
    proxy.mode = "honest"
    seen = type(image)(repo=f"{proxy.registry}/flow/proxied", tag="v1", digest=image.digest)
    # Control: through the honest proxy the signed image is accepted.
    assert sd("verify", seen.tagged).exit_code == 0
    assert sd("verify", seen.pinned).exit_code == 0
    yield seen
    proxy.mode = "honest"


def test_manifest_bytes_not_matching_the_pinned_digest_are_refused(
    world: World, sd: Home, proxy: TamperProxy, behind_proxy: Image
) -> None:
    proxy.mode = "claim-original"
    assert_refused(world, sd("pull", behind_proxy.pinned), behind_proxy,
                   why=f"do not match the digest \u2014 expected {behind_proxy.digest}")
    assert proxy.tampered_responses > 0


def test_manifest_bytes_not_matching_the_claimed_digest_are_refused(
    world: World, sd: Home, proxy: TamperProxy, behind_proxy: Image
) -> None:
    proxy.mode = "claim-original"
    assert_refused(world, sd("pull", behind_proxy.tagged), behind_proxy,
                   why="do not match the digest")


def test_signature_naming_another_digest_than_the_served_bytes_is_refused(
    world: World, sd: Home, proxy: TamperProxy, behind_proxy: Image
) -> None:
    """The proxy lies consistently: altered bytes, their hash, and the original signature."""
    proxy.mode = "consistent"
    result = sd("pull", behind_proxy.tagged)
    assert_refused(world, result, behind_proxy,
                   why=f"signed payload names digest {behind_proxy.digest}, not")
    assert proxy.altered, "the proxy served altered bytes under their own digest"


# --- modes -------------------------------------------------------------------------------------


def test_warn_mode_runs_an_unsigned_image_after_a_warning(world: World, sd: Home) -> None:
    unsigned = world.push_image("flow/unsigned-warn", "v1")
    result = sd("run", "--rm", "--network", "none", unsigned.tagged, "echo", "hi",
                env={"SAFE_DOCKER_MODE": "warn"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "hi\n"
    warning, *progress = result.stderr.splitlines()  # the pull's progress follows
    assert warning.startswith(f"safe-docker: warning: refused {unsigned.tagged} \u2014 ")
    assert "no signature" in warning and warning.endswith("(continuing: mode = warn)")
    assert "safe-docker" not in "".join(progress)
    # The digest it resolved is what ran, and the tag is left on it.
    assert world.has_image(unsigned.pinned) and world.has_image(unsigned.tagged)
    world.remove_images(unsigned.tagged)


def test_off_mode_passes_argv_through_unchanged(world: World, sd: Home) -> None:
    unsigned = world.push_image("flow/unsigned-off", "v1")
    argv = ("run", "--rm", "--network", "none", unsigned.tagged, "echo", "hi")
    result = sd.ok(*argv, SAFE_DOCKER_MODE="off", SAFE_DOCKER_DRY_RUN="1")
    assert result.dry_run_argvs == [docker_argv(world, *argv)]
    assert result.stderr == ""


def test_pull_all_tags_is_refused_in_enforce_mode(world: World, sd: Home, signed: Image) -> None:
    for argv in (("pull", "-a"), ("pull", "--all-tags"), ("pull", "-qa"),
                 ("pull", "--all-tags=true"), ("image", "pull", "-a")):
        result = sd(*argv, signed.repo)
        assert result.exit_code == 77, result.stderr
        assert "all-tags" in result.stderr
    assert not world.has_image(f"{signed.repo}:latest")


# --- policy scopes -------------------------------------------------------------------------------


def test_image_no_scope_covers_is_refused_with_a_policy_add_hint(world: World, sd: Home) -> None:
    image = world.push_image("nomatch/app", "v1")
    result = sd("pull", image.tagged)
    assert_refused(world, result, image, why="policy add")


def test_denied_scope_is_refused(world: World, sd: Home, keys: Keys) -> None:
    image = world.push_image("denied/app", "v1")
    sign(sd, keys.demo, image.tagged)  # a signature does not override a deny
    assert_refused(world, sd("pull", image.tagged), image, why="denied by policy")


def test_allowed_scope_hands_off_the_full_name(world: World, sd: Home) -> None:
    """Allowed without a digest: docker gets the canonical name (never an ID-like word)."""
    image = world.push_image("allowed/app", "v1")
    argv = ("run", "--rm", "--network", "none", image.tagged, "echo", "hi")
    result = sd.ok(*argv, SAFE_DOCKER_DRY_RUN="1")
    assert result.dry_run_argvs == [docker_argv(world, *argv)]  # already canonical
    short = sd.ok("run", f"{image.repo}", SAFE_DOCKER_DRY_RUN="1")
    assert short.dry_run_argvs == [docker_argv(world, "run", f"{image.repo}:latest")]


def test_config_error_exits_78_naming_file_and_line(safe_docker: SafeDocker) -> None:
    safe_docker.config_dir.mkdir(parents=True, exist_ok=True)
    config = safe_docker.config_dir / "config.toml"
    config.write_text('mode = "enforce"\n\nbogus_key = 1\n')
    result = safe_docker("run", "--rm", "127.0.0.1:1/any/app:v1")
    assert result.exit_code == 78, result.stderr
    assert f"{config}:3" in result.stderr
    assert "bogus_key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- thresholds, annotations, transparency log ---------------------------------------------------


def test_threshold_two_refuses_one_signature(world: World, sd: Home, keys: Keys) -> None:
    image = world.push_image("thresh/one", "v1")
    sign(sd, keys.demo, image.tagged)
    assert_refused(world, sd("pull", image.tagged), image, why=ONE_OF_TWO)


def test_threshold_two_counts_signers_not_signatures(world: World, sd: Home, keys: Keys) -> None:
    image = world.push_image("thresh/same", "v1")
    sign(sd, keys.demo, image.tagged)
    sign(sd, keys.demo, image.tagged)
    assert_refused(world, sd("pull", image.tagged), image, why=ONE_OF_TWO)


def test_threshold_two_accepts_two_distinct_trusted_signers(
    world: World, sd: Home, keys: Keys
) -> None:
    image = world.push_image("thresh/two", "v1")
    sign(sd, keys.demo, image.tagged)
    sign(sd, keys.other, image.tagged)
    result = sd.ok("run", "--rm", image.tagged, SAFE_DOCKER_DRY_RUN="1")
    assert result.dry_run_argvs[-1] == docker_argv(world, "run", "--rm", image.pinned)
    verdict = json.loads(sd.ok("verify", "--json", image.tagged).stdout)
    assert verdict["accepted"] is True


@pytest.mark.parametrize(("tag", "annotations"), [
    ("none", ()), ("other-value", ("team=nlp",)), ("other-key", ("owner=ml",)),
])
def test_signature_without_the_required_annotation_is_refused(
    world: World, sd: Home, keys: Keys, tag: str, annotations: tuple[str, ...]
) -> None:
    image = world.push_image("annot/without", tag)
    sign(sd, keys.demo, image.tagged, *annotations)
    assert_refused(world, sd("pull", image.tagged), image, why="annotation team")


def test_signature_with_the_required_annotation_is_accepted(
    world: World, sd: Home, keys: Keys
) -> None:
    image = world.push_image("annot/with", "v1")
    sign(sd, keys.demo, image.tagged, "team=ml", "build=42")
    result = sd.ok("run", "--rm", image.tagged, SAFE_DOCKER_DRY_RUN="1")
    assert result.dry_run_argvs[-1] == docker_argv(world, "run", "--rm", image.pinned)


def test_tlog_required_refuses_a_key_signature_without_a_log_entry(
    world: World, sd: Home, keys: Keys
) -> None:
    image = world.push_image("tlog/app", "v1")
    sign(sd, keys.demo, image.tagged)
    assert_refused(world, sd("pull", image.tagged), image, why="transparency-log")
