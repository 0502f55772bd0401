"""Attack N11: secrets given on the command line never reach the audit log.

The log used to mask values by a list of secret-looking names, so `-e MYSQL_ROOT_PW=…` and
`-e GH_PAT=…` were stored in clear. Through the real shim, docker and registry: a run that
is accepted and one that is refused; the log keeps the command, option names, env names
and the image, and no value from the command line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.e2e.conftest import SafeDocker, trust_new_key_and_sign

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import World

SECRETS = ("hunter2", "ghp_s3cr3tvalue", "hunter3", "labelsecret", "argsecret")


def _secret_argv(image: str, env_file: Path) -> list[str]:
    return ["run", "--rm", "--network", "none", "-e", "MYSQL_ROOT_PW=hunter2",
            "-e", "GH_PAT=ghp_s3cr3tvalue", "--env", "DB_CONN=host=db user=app password=hunter3",
            "--env-file", str(env_file), "--label", "owner=labelsecret",
            image, "sh", "-c", "echo argsecret >/dev/null"]


def test_audit_log_records_no_env_values(world: World, safe_docker: SafeDocker,
                                         tmp_path: Path) -> None:
    signed = world.push_image("n11/signed")
    unsigned = world.push_image("n11/unsigned")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/n11/*", signed)
    env_file = tmp_path / "app.env"
    env_file.write_text("FROM_FILE=filesecret\n")

    accepted = safe_docker(*_secret_argv(signed.tagged, env_file))
    assert accepted.exit_code == 0, accepted.stderr
    refused = safe_docker(*_secret_argv(unsigned.tagged, env_file))
    assert refused.exit_code == 77, refused.stderr
    # Refused: nothing pulled, so nothing could start.
    assert not world.has_image(unsigned.pinned) and not world.has_image(unsigned.tagged)

    text = (safe_docker.state_dir / "audit.jsonl").read_text()
    for secret in (*SECRETS, "filesecret"):
        assert secret not in text, secret
    accepted_event, refused_event = (json.loads(line) for line in text.splitlines())
    expected = ["run", "--rm", "--network", "none", "--env", "MYSQL_ROOT_PW=***",
                "--env", "GH_PAT=***", "--env", "DB_CONN=***", "--env-file", str(env_file),
                "--label", "owner=***"]
    assert accepted_event["argv"] == [*expected, signed.tagged, "sh", "***", "***"]
    assert refused_event["argv"] == [*expected, unsigned.tagged, "sh", "***", "***"]
    assert (accepted_event["outcome"], refused_event["outcome"]) == ("accepted", "refused")
    assert refused_event["command"] == "run" and refused_event["reason"]

    shown = safe_docker("audit")
    assert shown.exit_code == 0
    assert not any(secret in shown.stdout for secret in SECRETS)
