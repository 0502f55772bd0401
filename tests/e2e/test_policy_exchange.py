"""Policy exchange with podman's world, end to end.

skopeo (containers/image, what podman uses) is the reference: for images in several
scopes of a real registry, the policy safe-docker exports makes skopeo accept and refuse
the same images safe-docker does, and a podman policy.json imported into safe-docker makes
safe-docker accept and refuse the same images skopeo does with that file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import SafeDocker

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import Image, World

PASSWORD = "pw"  # noqa: S105 - test key only

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None,
                                reason="skopeo is not installed (apt-get install skopeo)")


def _ok(home: SafeDocker, *args: str) -> str:
    result = home(*args, env={"COSIGN_PASSWORD": PASSWORD})
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _skopeo_decides(world: World, policy: Path, image: Image, tmp_path: Path) -> str:
    """accept | reject | verify: what skopeo (containers/image) does with ``image``.

    Debian's skopeo is built with sigstore verification disabled: it then refuses with
    "sigstore disabled" exactly where the policy selected a sigstoreSigned requirement,
    which is "verify"; a build with sigstore gives accept or a signature error."""
    registries = tmp_path / "registries.d"
    registries.mkdir(exist_ok=True)
    (registries / "test.yaml").write_text(
        f"docker:\n  {world.registry}:\n    use-sigstore-attachments: true\n")
    target = tmp_path / f"copy-{image.repo.rsplit('/', 1)[-1]}"
    proc = subprocess.run(
        ["skopeo", "--policy", str(policy), "--registries.d", str(registries), "copy",
         "--src-tls-verify=false", f"docker://{image.tagged}", f"dir:{target}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert "trust policy" not in proc.stderr, proc.stderr  # the policy itself parsed
    if proc.returncode == 0:
        return "accept"
    if "sigstore disabled" in proc.stderr or "signature" in proc.stderr.lower():
        return "verify"
    assert "rejected by policy" in proc.stderr, proc.stderr
    return "reject"


def _safe_docker_decides(home: SafeDocker, image: Image) -> str:
    checked = json.loads(_ok(home, "policy", "check", "--json", image.tagged))
    action = str(checked["action"])
    return {"unmatched (reject)": "reject"}.get(action, action)


def _agree(skopeo: str, decision: str, pulled: bool) -> bool:
    """skopeo's outcome fits safe-docker's decision (a sigstore-enabled skopeo accepts
    the images that verify)."""
    if decision == "verify":
        return skopeo == "verify" or (skopeo == "accept" and pulled)
    return skopeo == decision


def _safe_docker_accepts(home: SafeDocker, image: Image) -> bool:
    result = home("pull", image.tagged)
    assert result.exit_code in (0, 77), result.stderr
    return result.exit_code == 0


@pytest.fixture(scope="module")
def images(world: World, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[SafeDocker, Path, dict[str, Image]]:
    """A home trusting key "demo", and images in several scopes, some signed."""
    home = SafeDocker(world=world, home=tmp_path_factory.mktemp("sd-xchg"))
    keys = tmp_path_factory.mktemp("xchg-keys")
    _ok(home, "keys", "generate", "demo", "--dir", str(keys))
    made = {
        "signed": world.push_image("xchg/team/signed"),
        "unsigned": world.push_image("xchg/team/unsigned"),
        "blocked": world.push_image("xchg/team/blocked"),
        "open": world.push_image("xchg/open/anything"),
        "elsewhere": world.push_image("xchg/elsewhere"),
    }
    for name in ("signed", "blocked"):
        _ok(home, "sign", "--key", str(keys / "demo.key"), made[name].tagged)
    return home, keys, made


def test_exported_containers_policy_decides_like_safe_docker_in_skopeo(
        world: World, images: tuple[SafeDocker, Path, dict[str, Image]],
        tmp_path: Path) -> None:
    home, _keys, made = images
    reg = world.registry
    _ok(home, "policy", "add", f"{reg}/xchg/team", "--key", "demo")
    _ok(home, "policy", "deny", f"{reg}/xchg/team/blocked")
    _ok(home, "policy", "allow", f"{reg}/xchg/open")
    policy = tmp_path / "policy.json"
    _ok(home, "policy", "export", "--format", "containers-policy", "-o", str(policy))
    assert set(json.loads(policy.read_text())["transports"]["docker"]) == {
        f"{reg}/xchg/team", f"{reg}/xchg/team/blocked", f"{reg}/xchg/open"}

    decisions = {"signed": "verify", "unsigned": "verify", "blocked": "reject",
                  "open": "accept", "elsewhere": "reject"}
    pulled = {"signed": True, "unsigned": False, "blocked": False, "open": True,
              "elsewhere": False}
    for name, image in made.items():
        assert _safe_docker_decides(home, image) == decisions[name], name
        assert _safe_docker_accepts(home, image) is pulled[name], name
        skopeo = _skopeo_decides(world, policy, image, tmp_path)
        assert _agree(skopeo, decisions[name], pulled[name]), (name, skopeo)


def test_kubernetes_exports_say_what_they_cannot_express(
        world: World, images: tuple[SafeDocker, Path, dict[str, Image]]) -> None:
    home, _keys, _made = images
    _ok(home, "policy", "add", f"{world.registry}/xchg/team", "--key", "demo")  # defaults
    for fmt in ("kyverno", "policy-controller"):
        result = home("policy", "export", "--format", fmt)
        assert result.exit_code == 0, result.stderr
        target = "Kyverno" if fmt == "kyverno" else fmt
        warnings = result.stderr.splitlines()
        assert all(w.startswith(f"safe-docker: warning: {target} cannot express ")
                   for w in warnings), warnings
        assert any(w.startswith(f"safe-docker: warning: {target} cannot express rule "
                                f"'{world.registry}/xchg/team': the signed repository name")
                   for w in warnings), warnings
        assert "# - rule" in result.stdout and "signed digest only" in result.stdout
        strict = home("policy", "export", "--format", fmt, "--strict")
        assert strict.exit_code == 78
        # --strict refuses at the first gap it meets: one of those the plain export named
        refused = re.match(r"safe-docker: cannot export rule ('[^']+') \(\w+\) to ", strict.stderr)
        assert refused is not None, strict.stderr
        assert any(f"cannot express rule {refused.group(1)}: " in w for w in warnings), (
            strict.stderr, warnings)
        assert strict.stdout == ""
    result = home("policy", "export", "--format", "rego")
    assert result.exit_code == 2
    assert result.stderr.startswith("safe-docker: invalid --format 'rego' — expected kyverno")


def test_containers_policy_round_trip_verifies_the_same_images(
        world: World, images: tuple[SafeDocker, Path, dict[str, Image]],
        tmp_path: Path) -> None:
    """containers-policy export → `policy import` in a fresh config → the same images are
    accepted and refused, for real (pulls from the registry)."""
    home, _keys, made = images
    reg = world.registry
    _ok(home, "policy", "add", f"{reg}/xchg/team", "--key", "demo")
    _ok(home, "policy", "deny", f"{reg}/xchg/team/blocked")
    _ok(home, "policy", "allow", f"{reg}/xchg/open")
    policy = tmp_path / "exported.json"
    exported = home("policy", "export", "--format", "containers-policy", "--strict", "-o",
                    str(policy))
    assert exported.exit_code == 0, exported.stderr
    fresh = SafeDocker(world=world, home=tmp_path / "round-trip")
    fresh.home.mkdir()
    assert "imported 3 rule(s)" in _ok(fresh, "policy", "import", str(policy))
    for name, image in made.items():
        before = home("verify", image.tagged).exit_code
        after = fresh("verify", image.tagged).exit_code
        assert (before, after) in ((0, 0), (77, 77)), (name, before, after)
        world.remove_images(image.tagged)
        assert _safe_docker_accepts(fresh, image) is (before == 0), name
    assert home("verify", made["signed"].tagged).exit_code == 0  # the test saw both outcomes
    assert home("verify", made["unsigned"].tagged).exit_code == 77


def test_imported_podman_policy_decides_like_skopeo(
        world: World, images: tuple[SafeDocker, Path, dict[str, Image]],
        tmp_path: Path) -> None:
    _home, keys, made = images
    reg = world.registry
    podman = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                f"{reg}/xchg/team": [{
                    "type": "sigstoreSigned", "keyPath": str(keys / "demo.pub"),
                    "signedIdentity": {"type": "matchRepository"}}],
                f"{reg}/xchg/team/blocked": [{"type": "reject"}],
                f"{reg}/xchg/open": [{"type": "insecureAcceptAnything"}],
            },
            "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
        },
    }
    policy = tmp_path / "podman-policy.json"
    policy.write_text(json.dumps(podman))
    fresh = SafeDocker(world=world, home=tmp_path / "fresh")
    fresh.home.mkdir()
    summary = _ok(fresh, "policy", "import", str(policy))
    assert "imported 3 rule(s)" in summary

    for name, image in made.items():
        podman_says = _skopeo_decides(world, policy, image, tmp_path)
        decision = _safe_docker_decides(fresh, image)
        # The decisions hold for real: only the signed image in the verify scope and the
        # image in the accept-anything scope are pulled.
        pulled = _safe_docker_accepts(fresh, image)
        assert pulled is (name in ("signed", "open")), name
        assert _agree(podman_says, decision, pulled), (name, podman_says, decision)


def test_import_refuses_gpg_and_writes_nothing(world: World, tmp_path: Path) -> None:
    policy = tmp_path / "gpg.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {
        "quay.io/x": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}]}}}))
    fresh = SafeDocker(world=world, home=tmp_path / "gpg")
    fresh.home.mkdir()
    result = fresh("policy", "import", str(policy))
    assert result.exit_code == 78
    assert "signedBy" in result.stderr
    assert not (fresh.config_dir / "config.toml").exists()
