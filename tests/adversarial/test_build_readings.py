"""Verified builds under attack (attack round 3), with the real dockerd 20.10 and its legacy
builder: a Dockerfile that docker reads differently from safe-docker must be refused.

Every refusal is checked the same way: exit 77, one line on stderr, no image built and
nothing of the unsigned image pulled, asked of docker itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.builds import BuildHome, images, make_home, push_marked, repo_pulled

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import World

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sd(world: World, tmp_path_factory: pytest.TempPathFactory) -> BuildHome:
    return make_home(world, tmp_path_factory.mktemp("sd-build-atk3"))


@pytest.fixture(scope="module")
def base(world: World, sd: BuildHome) -> str:
    push_marked(world, "build/atk3-base:v1", "GOOD-BASE")
    sd.sign(f"{world.registry}/build/atk3-base:v1")
    return f"{world.registry}/build/atk3-base:v1"


@pytest.fixture(scope="module")
def evil(world: World) -> str:
    push_marked(world, "build/atk3-evil:v1", "EVIL")
    return f"{world.registry}/build/atk3-evil:v1"


def _refused_and_nothing_built(world: World, sd: BuildHome, folder: Path, *, tag: str,
                               evil: str) -> None:
    before = images(world)
    result = sd.build(folder, tag=tag)
    assert result.exit_code == 77, (result.stdout, result.stderr)
    line = result.stderr.strip()
    assert line.startswith("safe-docker: ") and "\n" not in line, line
    assert not world.has_image(tag)
    assert images(world) == before
    assert not repo_pulled(world, evil.rsplit(":", 1)[0])


def test_an_escape_directive_after_a_vertical_tab_is_refused_not_read_two_ways(
        world: World, sd: BuildHome, base: str, evil: str, tmp_path: Path) -> None:
    # Docker 20.10 does not take "#\vescape=`" as a directive (its regexp's \s is ASCII), so
    # "RUN true #`" ends there and "FROM evil" is a stage; a newer parser joins the two.
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "Dockerfile").write_bytes(
        f"#\vescape=`\nFROM {base}\nRUN true #`\nFROM {evil}\nRUN cat /marker\n".encode())
    _refused_and_nothing_built(world, sd, folder, tag="built:atk3-vt", evil=evil)


def test_an_onbuild_trigger_of_an_accepted_base_cannot_bring_in_an_unsigned_image(
        world: World, sd: BuildHome, evil: str, tmp_path: Path) -> None:
    # REG/accepted/* is accepted by policy (as `policy init` proposes for unsigned
    # publishers); its image carries "ONBUILD COPY --from=EVIL", which the legacy builder
    # runs in the user's build: EVIL is not accepted and must not be pulled unverified.
    from tests.e2e.builds import marked_image

    accepted = f"{world.registry}/accepted/onbuild:v1"
    sd.ok("policy", "allow", f"{world.registry}/accepted/*")
    marked_image(world, f"{world.registry}/accepted/plain:v1", "ACCEPTED")
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text(
        f"FROM {world.registry}/accepted/plain:v1\n"
        f"ONBUILD COPY --from={evil} /marker /marker\n")
    world.run_docker("build", "-q", "-t", accepted, str(recipe))
    world.run_docker("push", accepted)
    world.remove_images(accepted, f"{world.registry}/accepted/plain:v1")
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "Dockerfile").write_text(f"FROM {accepted}\nRUN cat /marker\n")
    _refused_and_nothing_built(world, sd, folder, tag="built:atk3-onbuild", evil=evil)
