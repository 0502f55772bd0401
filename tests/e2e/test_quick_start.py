"""The README's quick start, its safe-docker lines run against a real dockerd and registry.

The docker lines of the quick start fetch busybox from the internet; here the world makes
the two images (a fresh one for v1, then another pushed over v1, unsigned) and the
registry's address replaces 127.0.0.1:5000. Each safe-docker line must behave as the
README says: everything succeeds up to the verified run, the run after the tag moved is
refused with one line, exit 77, and nothing of the unsigned image is pulled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.unit.test_cli import QUICK_START

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import World


def test_the_readme_quick_start_works_as_written(world: World, safe_docker: SafeDocker,
                                                 tmp_path: Path) -> None:
    def concrete(argv: list[str]) -> list[str]:
        return [word.replace("127.0.0.1:5000", world.registry)
                .replace("~/.safe-docker-demo", str(tmp_path)) for word in argv]

    world.push_image("demo/hello", "v1")
    runs = 0
    unsigned = None
    for argv in QUICK_START:
        if argv[0] == "run" and runs == 1:  # the README re-pushes the tag before this run
            unsigned = world.push_image("demo/hello", "v1")
        result = safe_docker(*concrete(argv), env={"COSIGN_PASSWORD": "demo"})
        if argv[0] == "run":
            runs += 1
        if unsigned is not None and argv[0] == "run":
            assert result.exit_code == 77, result.stderr
            [line] = result.stderr.splitlines()
            assert line.startswith(f"safe-docker: refused {world.registry}/demo/hello:v1 — ")
            assert "(hint: " in line
            assert not world.has_image(unsigned.pinned)
        else:
            assert result.exit_code == 0, (argv, result.stderr)
            if argv[0] == "run":
                assert result.stdout.strip() == "verified"
    assert runs == 2 and unsigned is not None
    audit = safe_docker("audit").stdout.splitlines()
    assert [row.split()[2] for row in audit[1:]] == ["run", "run"]
