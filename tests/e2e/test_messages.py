"""Messages a user meets against a real registry and docker: one line each, in user words.

`sign` of a tag the registry lacks, `cache list` for an image without signatures, the
offline notes (registry not contacted, or tried and unreachable), and the audit view of a
`verify` refusal.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.e2e.conftest import SafeDocker, ok, trust_new_key_and_sign

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import World

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ"


def test_sign_of_a_missing_tag_says_so_with_a_hint(world: World, safe_docker: SafeDocker,
                                                   tmp_path: Path) -> None:
    image = world.push_image("msg/present")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/msg/*", image)
    missing = f"{world.registry}/msg/present:nope"
    result = safe_docker("sign", "--key", str(tmp_path / "demo.key"), missing,
                         env={"COSIGN_PASSWORD": "pw"})
    assert result.exit_code == 77
    assert result.stderr.splitlines() == [
        f"safe-docker: cannot sign {missing} — the registry has no image {missing} "
        f"(hint: push it first (docker push {missing}), or check the name and tag)"]
    assert "MANIFEST_UNKNOWN" not in result.stderr


def test_cache_list_shows_verified_tags_with_their_signatures_and_never_a_refused_one(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    """A tag is remembered only once an image under it was accepted (the moved-tag message
    relies on that): a refused image is never listed as if something were cached for it."""
    signed = world.push_image("msg/cached-signed")
    unsigned = world.push_image("msg/cached-unsigned")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/msg/*", signed)
    assert safe_docker("verify", signed.tagged).exit_code == 0
    assert safe_docker("verify", unsigned.tagged).exit_code == 77
    rows = {line.split("\t")[0]: line.split("\t")[-1]
            for line in ok(safe_docker, "cache", "list").stdout.splitlines()}
    assert rows[signed.tagged] == "signatures cached"
    assert unsigned.tagged not in rows


def test_offline_notes_say_whether_the_registry_was_contacted(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    image = world.push_image("msg/offline")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/msg/*", image)
    assert safe_docker("verify", image.tagged).exit_code == 0
    told = safe_docker("verify", image.tagged, env={"SAFE_DOCKER_OFFLINE": "1"})
    assert told.exit_code == 0, told.stderr
    assert re.fullmatch(
        rf"safe-docker: decided offline for {re.escape(image.tagged)} from signatures cached "
        rf"{STAMP} \(SAFE_DOCKER_OFFLINE=1: registry not contacted\)", told.stderr.strip())
    port = world.registry_port
    world.stop_registry()
    try:
        tried = safe_docker("verify", image.tagged)
    finally:
        world.start_registry(port)
    assert tried.exit_code == 0, tried.stderr
    assert re.fullmatch(
        rf"safe-docker: decided offline for {re.escape(image.tagged)} from signatures cached "
        rf"{STAMP} \(registry unreachable: cannot reach {re.escape(world.registry)}, "
        r"connection refused\)", tried.stderr.strip()), tried.stderr


def test_audit_shows_a_verify_refusal_with_its_reason(world: World, safe_docker: SafeDocker,
                                                      tmp_path: Path) -> None:
    signed = world.push_image("msg/audit-signed")
    unsigned = world.push_image("msg/audit-unsigned")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/msg/*", signed)
    refused = safe_docker("verify", unsigned.tagged)
    assert refused.exit_code == 77
    why = refused.stderr.split(" — ", 1)[1].split(" (hint: ", 1)[0]
    header, row = ok(safe_docker, "audit").stdout.splitlines()
    assert header.split() == ["TIME", "COMMAND", "REFERENCE", "DIGEST", "OUTCOME", "RULE",
                              "REASON"]
    columns = re.split(r"  +", row)
    assert re.fullmatch(STAMP, columns[0]), row
    assert columns[1:3] == ["verify", unsigned.tagged]
    assert unsigned.digest.startswith(columns[3])
    assert columns[4:] == ["refused", f"{world.registry}/msg/*", why]
