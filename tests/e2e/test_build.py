"""Verified builds with the real daemon and its legacy builder (issue 17 "Must show").

A signed base builds, and the image holds the verified base's files even when a local tag
of the same name holds another image; an unsigned stage, an unsigned base through an ARG
default and COPY --from an unsigned image refuse the whole build (77) with no image built
and nothing pulled, asked of docker; a --build-arg choosing a signed base builds; FROM
scratch builds; the Dockerfile from -f - and a context on stdin are built as scanned.
"""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

import pytest

from tests.e2e.builds import (
    BuildHome,
    images,
    make_home,
    marked_image,
    marker_of,
    push_marked,
    repo_pulled,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import World

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sd(world: World, tmp_path_factory: pytest.TempPathFactory) -> BuildHome:
    return make_home(world, tmp_path_factory.mktemp("sd-build"))


@pytest.fixture(scope="module")
def base(world: World, sd: BuildHome) -> str:
    """REG/build/base:v1, signed with k; its /marker says GOOD-BASE."""
    push_marked(world, "build/base:v1", "GOOD-BASE")
    sd.sign(f"{world.registry}/build/base:v1")
    return f"{world.registry}/build/base:v1"


@pytest.fixture(scope="module")
def evil(world: World) -> str:
    """REG/build/evil:v1, unsigned; its /marker says EVIL."""
    push_marked(world, "build/evil:v1", "EVIL")
    return f"{world.registry}/build/evil:v1"


def context(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def assert_refused_and_nothing_built(world: World, result: object, before: set[str],
                                     *, tag: str, evil: str) -> None:
    assert result.exit_code == 77, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    line = result.stderr.strip()  # type: ignore[attr-defined]
    assert line.startswith("safe-docker: ") and "\n" not in line and evil in line, line
    assert not world.has_image(tag)
    assert images(world) == before  # no image, no layer, no container
    assert not repo_pulled(world, evil.rsplit(":", 1)[0])


def test_a_signed_base_builds_from_the_verified_digest_even_when_a_local_tag_holds_another(
        world: World, sd: BuildHome, base: str, tmp_path: Path) -> None:
    marked_image(world, base, "LOCAL-IMPOSTOR")  # the tag, locally, is another image
    folder = context(tmp_path, f"FROM {base}\nRUN cp /marker /seen\n")
    result = sd.build(folder, tag="built:signed")
    assert result.exit_code == 0, result.stderr
    assert marker_of(world, "built:signed") == "GOOD-BASE"
    seen = world.run_docker("run", "--rm", "--network", "none", "built:signed", "cat", "/seen")
    assert seen.stdout.decode().strip() == "GOOD-BASE"
    assert marker_of(world, base) == "LOCAL-IMPOSTOR"  # the user's tag is left alone
    assert (folder / "Dockerfile").read_text() == f"FROM {base}\nRUN cp /marker /seen\n"


def test_an_unsigned_stage_refuses_the_whole_build(world: World, sd: BuildHome, base: str,
                                                   evil: str, tmp_path: Path) -> None:
    folder = context(tmp_path, f"FROM {evil} AS tools\nRUN cat /marker\n"
                               f"FROM {base}\nCOPY --from=tools /marker /m\n")
    before = images(world)
    result = sd.build(folder, tag="built:stage")
    assert_refused_and_nothing_built(world, result, before, tag="built:stage", evil=evil)


def test_an_unsigned_base_through_an_arg_default_refuses_the_build(
        world: World, sd: BuildHome, evil: str, tmp_path: Path) -> None:
    folder = context(tmp_path, f"ARG BASE={evil}\nFROM $BASE\nRUN cat /marker\n")
    before = images(world)
    result = sd.build(folder, tag="built:arg")
    assert_refused_and_nothing_built(world, result, before, tag="built:arg", evil=evil)


def test_copy_from_an_unsigned_image_refuses_the_build(world: World, sd: BuildHome, base: str,
                                                       evil: str, tmp_path: Path) -> None:
    folder = context(tmp_path, f"FROM {base}\nCOPY --from={evil} /marker /m\n")
    before = images(world)
    result = sd.build(folder, tag="built:copy")
    assert_refused_and_nothing_built(world, result, before, tag="built:copy", evil=evil)


def test_a_build_arg_choosing_a_signed_base_builds(world: World, sd: BuildHome, base: str,
                                                   evil: str, tmp_path: Path) -> None:
    folder = context(tmp_path, f"ARG BASE={evil}\nFROM $BASE\n")
    result = sd.build(folder, "--build-arg", f"BASE={base}", tag="built:arg-signed")
    assert result.exit_code == 0, result.stderr
    assert marker_of(world, "built:arg-signed") == "GOOD-BASE"
    assert not repo_pulled(world, evil.rsplit(":", 1)[0])


def test_from_scratch_builds(world: World, sd: BuildHome, tmp_path: Path) -> None:
    folder = context(tmp_path, "FROM scratch\nCOPY marker /marker\n", marker="SCRATCH\n")
    result = sd.build(folder, tag="built:scratch")
    assert result.exit_code == 0, result.stderr
    assert world.has_image("built:scratch")


def test_a_dockerfile_on_stdin_builds_as_scanned(world: World, sd: BuildHome, base: str,
                                                 tmp_path: Path) -> None:
    folder = context(tmp_path, "FROM scratch\n")
    result = sd.build(folder, "--file=-", tag="built:stdin-file",
                      stdin=f"FROM {base}\nRUN cp /marker /seen\n")
    assert result.exit_code == 0, result.stderr
    seen = world.run_docker("run", "--rm", "--network", "none", "built:stdin-file", "cat",
                            "/seen")
    assert seen.stdout.decode().strip() == "GOOD-BASE"


def test_a_tar_context_on_stdin_builds_with_its_dockerfile_pinned(
        world: World, sd: BuildHome, base: str, tmp_path: Path) -> None:
    marked_image(world, base, "LOCAL-IMPOSTOR")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in {"Dockerfile": f"FROM {base}\nCOPY note /note\n",
                           "note": "from the archive\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data.encode()))
    import subprocess

    from tests.e2e.conftest import safe_docker_command

    proc = subprocess.run([*safe_docker_command(), "build", "--network", "none", "-t",
                           "built:stdin-tar", "-"], input=out.getvalue(), capture_output=True,
                          env=sd.env(DOCKER_BUILDKIT="0"), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert marker_of(world, "built:stdin-tar") == "GOOD-BASE"
    note = world.run_docker("run", "--rm", "--network", "none", "built:stdin-tar", "cat",
                            "/note")
    assert note.stdout.decode() == "from the archive\n"


def test_image_build_and_builder_build_are_verified_too(world: World, sd: BuildHome,
                                                        evil: str, tmp_path: Path) -> None:
    folder = context(tmp_path, f"FROM {evil}\n")
    before = images(world)
    for words in (("image", "build"), ("builder", "build")):
        result = sd(*words, "--network", "none", "-t", "built:words", str(folder),
                    env={"DOCKER_BUILDKIT": "0"})
        assert_refused_and_nothing_built(world, result, before, tag="built:words", evil=evil)


def test_the_audit_log_records_each_image_of_a_refused_build(
        world: World, sd: BuildHome, base: str, evil: str, tmp_path: Path) -> None:
    folder = context(tmp_path, f"FROM {base}\nCOPY --from={evil} /marker /m\n")
    sd.build(folder, tag="built:audit")
    audit = sd.ok("audit", "--json").stdout
    assert evil in audit and base in audit
