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


SAS = "sig=Zm9vYmFyU0VDUkVUc2lnbmF0dXJl"


def test_a_volume_drivers_credentials_in_a_mount_option_are_not_logged(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    # A2-5: `--mount` was kept whole; rclone's Azure SAS URL went to audit.jsonl in clear.
    signed = world.push_image("a2audit/signed")
    unsigned = world.push_image("a2audit/unsigned")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/a2audit/*", signed)
    mount = ("type=volume,src=backup,dst=/backup,volume-driver=rclone,"
             "volume-opt=type=azureblob,volume-opt=azureblob-sas-url="
             f"https://acct.blob.core.windows.net/c?sv=2022-11-02&{SAS}")
    refused = safe_docker("run", "--rm", "--mount", mount, unsigned.tagged, "true")
    assert refused.exit_code == 77, refused.stderr
    assert not world.has_image(unsigned.pinned) and not world.has_image(unsigned.tagged)
    assert world.run_docker("volume", "ls", "-q").stdout.decode().split().count("backup") == 0
    text = (safe_docker.state_dir / "audit.jsonl").read_text()
    assert SAS not in text and "acct.blob" not in text
    (event,) = (json.loads(line) for line in text.splitlines() if unsigned.tagged in line)
    assert event["argv"][:4] == ["run", "--rm", "--mount",
                                 "type=volume,src=backup,dst=/backup,volume-driver=rclone,"
                                 "volume-opt=type=***,volume-opt=azureblob-sas-url=***"]
