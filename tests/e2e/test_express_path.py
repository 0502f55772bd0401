"""The express path against the real dockerd and registry: the third run of a command line
(full path, then warm path, then its plan) is answered before the router, ``re``, ``json``
or ``enum`` are imported, exactly as the warm path answered it; and every change a warm
hit would notice (a rule, a moved tag, a new signature, an image docker no longer has, the
environment, the working directory) is noticed by the plan too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.e2e.conftest import Warm, _audit, _command, ok
from tests.e2e.test_warm_path import HEAVY, SLOW

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import World

# What the express path leaves for the warm and full paths: importing any of these on a
# hit means the plan did not answer. (``python -m``'s runpy brings functools and
# collections; the installed ``safe-docker`` script does not.)
NOT_ON_EXPRESS = ("re", "json", "enum", "safedocker._docker.route", "safedocker.gate.warm",
                  "safedocker.reference", "safedocker.errors")


def _imported(argv: list[str], w: Warm, *, cwd: Path | None = None
              ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    w.log.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-X", "importtime", *_command()[1:], *argv],
                          env=w.env, capture_output=True, text=True, timeout=300, check=False,
                          cwd=cwd)
    names = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    return done, names


def _plans(w: Warm) -> list[Path]:
    return sorted((w.sd.cache_dir / "express").glob("*.json"))


def _express(w: Warm, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv three times (full path, warm path leaving a plan, then the plan) and return
    the third, checked to have been answered by the plan."""
    for _ in range(2):
        first, _names = _imported(list(argv), w, cwd=cwd)
        assert first.returncode == 0, first.stderr
    done, names = _imported(list(argv), w, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert names & set(NOT_ON_EXPRESS) == set(), sorted(names & set(NOT_ON_EXPRESS))
    return done


def test_the_third_run_is_answered_before_the_router_with_the_warm_paths_audit_line(
        warm: Warm) -> None:
    argv = ["run", "--rm", "--network", "none", warm.image.tagged, "echo", "hi"]
    done = _express(warm, *argv)
    assert done.stdout == "hi\n"
    assert warm.docker_calls() == [["run", "--rm", "--network", "none",
                                    f"{warm.image.repo}@{warm.image.digest}", "echo", "hi"]]
    assert len(_plans(warm)) == 1
    events = _audit(warm.sd)
    assert {k: v for k, v in events[-1].items() if k not in ("time", "pid")} == \
        {k: v for k, v in events[-2].items() if k not in ("time", "pid")}
    assert events[-1]["target"] == f"{warm.image.repo}@{warm.image.digest}"
    names = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    assert names & (set(HEAVY) | set(SLOW)) == set()


def test_an_express_pull_prints_dockers_lines_with_no_docker_process(warm: Warm) -> None:
    cold = warm.run("pull", warm.image.tagged)
    assert cold.returncode == 0, cold.stderr
    hit = warm.run("pull", warm.image.tagged)  # the warm path: it leaves the plan
    done = _express(warm, "pull", warm.image.tagged)
    assert warm.docker_calls() == []
    assert done.stdout == hit.stdout


def test_a_deny_rule_added_after_the_plan_refuses_the_image(warm: Warm) -> None:
    _express(warm, "pull", warm.image.tagged)
    ok(warm.sd, "policy", "deny", warm.image.repo)
    refused = warm.run("pull", warm.image.tagged)
    assert refused.returncode == 77, refused.stderr
    assert warm.docker_calls() == []


def test_a_tag_moved_to_an_unsigned_image_is_refused_despite_the_plan(
        warm: Warm, world: World) -> None:
    argv = ["run", "--rm", "--network", "none", warm.image.tagged, "true"]
    _express(warm, *argv)
    moved = world.push_image(warm.image.repo.split("/", 1)[1], warm.image.tag)
    assert moved.digest != warm.image.digest
    refused = warm.run(*argv)
    assert refused.returncode == 77, refused.stderr
    assert not any(c[:1] == ["run"] for c in warm.docker_calls())


def test_a_new_signature_is_noticed_and_the_full_path_decides(warm: Warm) -> None:
    _express(warm, "pull", warm.image.tagged)
    ok(warm.sd, "sign", "--key", str(warm.key), warm.image.tagged)  # a new .sig manifest
    again, names = _imported(["pull", warm.image.tagged], warm)
    assert again.returncode == 0, again.stderr
    assert "safedocker._docker.route" in names
    assert [c[0] for c in warm.docker_calls()] == ["pull", "tag"]  # the full path ran


def test_an_image_docker_no_longer_has_is_pulled_by_the_full_path(
        warm: Warm, world: World) -> None:
    argv = ["run", "--rm", "--network", "none", warm.image.tagged, "true"]
    _express(warm, *argv)
    subprocess.run([world.docker, "image", "rm", "-f", warm.image.tagged,
                    f"{warm.image.repo}@{warm.image.digest}"], env=world.docker_env(),
                   capture_output=True, check=False, timeout=120)
    assert not world.has_image(f"{warm.image.repo}@{warm.image.digest}")
    ran = warm.run(*argv)
    assert ran.returncode == 0, ran.stderr
    calls = warm.docker_calls()
    assert any(c[0] == "pull" for c in calls), calls  # the full path pulled it again
    assert calls[-1][0] == "run"


def test_another_environment_or_working_directory_has_no_plan(warm: Warm,
                                                              tmp_path: Path) -> None:
    argv = ["pull", warm.image.tagged]
    _express(warm, *argv)
    warm.env["SOME_VARIABLE"] = "1"
    changed, names = _imported(argv, warm)
    assert changed.returncode == 0, changed.stderr
    assert "safedocker.gate.warm" in names  # the warm path answered, not a plan
    del warm.env["SOME_VARIABLE"]
    elsewhere, names = _imported(argv, warm, cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "safedocker.gate.warm" in names
    plans = [json.loads(p.read_bytes()) for p in _plans(warm)]
    assert len(plans) == 3
    # one plan per environment and directory (the plan keeps no argv: only its key)
    assert len({p["key"] for p in plans}) == 3
