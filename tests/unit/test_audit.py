"""The audit log: appends, rotation, concurrent appenders, secrets, --since."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from safedocker.audit import AUDIT_NAME, AuditLog, parse_since, summarize_argv
from safedocker.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]


def event(n: int = 0, **extra: object) -> dict[str, object]:
    return {
        "argv": ["run", "--rm", "ubuntu:24.04"],
        "reference": "docker.io/library/ubuntu:24.04",
        "digest": "sha256:" + "ab" * 32,
        "rule": "docker.io/library/*",
        "signers": ["key:canonical"],
        "outcome": "accepted",
        "offline": False,
        "reasons": [],
        "n": n,
        **extra,
    }


def test_record_appends_one_private_json_line_with_time_user_and_pid(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state")
    log.record(event(1))
    log.record(event(2, outcome="refused", reasons=["no signature"]))
    path = tmp_path / "state" / AUDIT_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["pid"] == os.getpid()
    assert first["user"]
    assert first["time"].endswith("Z")
    assert datetime.fromisoformat(first["time"][:-1]).year >= 2024
    events = list(log.read())
    assert [e["n"] for e in events] == [1, 2]
    assert events[1]["outcome"] == "refused" and events[1]["reasons"] == ["no signature"]


@pytest.mark.parametrize("fields", [
    {}, {"outcome": "accepted", "signers": ["a", "b"], "offline": False, "reasons": []},
    {"reference": "r\u0085\u202e", "rule": None, "n": 3, "user_note": "caf\u00e9"},
])
def test_a_line_is_json_dumps_of_the_stamp_then_the_event_and_a_replayed_body_matches(
        tmp_path: Path, fields: dict[str, object]) -> None:
    """The express path writes a stored body under a fresh stamp: the line is the same
    compact ASCII JSON that json.dumps writes of the whole entry, keys in order."""
    log = AuditLog(tmp_path)
    log.record(fields)
    log.write(AuditLog.body(fields))
    lines = (tmp_path / AUDIT_NAME).read_text().splitlines()
    for line in lines:
        entry = json.loads(line)
        assert list(entry)[:3] == ["time", "user", "pid"]
        assert line == json.dumps(entry, separators=(",", ":"))
    first, second = (json.loads(line) for line in lines)
    assert {k: v for k, v in first.items() if k != "time"} == \
        {k: v for k, v in second.items() if k != "time"}


def test_caller_cannot_override_time_user_or_pid(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.record({"time": "1999-01-01T00:00:00Z", "user": "root", "pid": 1, "outcome": "warned"})
    (entry,) = list(log.read())
    assert entry["pid"] == os.getpid() and entry["time"] != "1999-01-01T00:00:00Z"


def test_rotation_by_size_keeps_backups_and_reads_oldest_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=2000, backups=2)
    for n in range(60):
        log.record(event(n))
    files = sorted(p.name for p in tmp_path.glob(f"{AUDIT_NAME}*") if not p.name.endswith(".lock"))
    assert files == [AUDIT_NAME, f"{AUDIT_NAME}.1", f"{AUDIT_NAME}.2"]
    for p in tmp_path.glob(f"{AUDIT_NAME}*"):
        if not p.name.endswith(".lock"):
            assert p.stat().st_size <= 2000
    numbers = [int(str(e["n"])) for e in log.read()]
    assert numbers == sorted(numbers)
    assert numbers[-1] == 59
    assert 0 not in numbers  # the oldest fell off the end


def test_corrupt_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.record(event(1))
    with open(tmp_path / AUDIT_NAME, "ab") as f:
        f.write(b'{"half a line\n[1, 2]\n\xff\xfe\n{"time": "not a time"}\n\n')
    log.record(event(2))
    assert [e["n"] for e in log.read()] == [1, 2]
    assert log.corrupt_lines == 4


def test_read_of_an_absent_log_is_empty(tmp_path: Path) -> None:
    assert list(AuditLog(tmp_path / "nothing").read()) == []


APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from safedocker.audit import AuditLog

    log = AuditLog(Path(sys.argv[1]), max_bytes=int(sys.argv[3]), backups=50)
    worker = int(sys.argv[2])
    for i in range(50):
        log.record({"worker": worker, "i": i, "outcome": "accepted", "reasons": ["x" * 300]})
    """
)


@pytest.mark.parametrize("max_bytes", [5 * 1024 * 1024, 64 * 1024], ids=["no-rotation", "rotating"])
def test_concurrent_appenders_write_whole_lines_and_lose_none(
    tmp_path: Path, max_bytes: int
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(tmp_path), str(w), str(max_bytes)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for w in range(20)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    lines = []
    for path in tmp_path.glob(f"{AUDIT_NAME}*"):
        if not path.name.endswith(".lock"):
            lines += path.read_bytes().splitlines()
    assert len(lines) == 20 * 50
    parsed = [json.loads(line) for line in lines]  # every line is whole, valid JSON
    assert {(e["worker"], e["i"]) for e in parsed} == {(w, i) for w in range(20) for i in range(50)}
    log = AuditLog(tmp_path, max_bytes=max_bytes, backups=50)
    assert len(list(log.read())) == 1000 and log.corrupt_lines == 0


# ------------------------------------------------------------------------------ secrets


SECRET = "hunter2-ghp_s3cr3tvalue"  # noqa: S105 - what must never reach the log


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # env values are never recorded, whatever the variable is called (attack N11)
        (["run", "-e", f"MYSQL_ROOT_PW={SECRET}", "img"],
         ["run", "--env", "MYSQL_ROOT_PW=***", "img"]),
        (["run", "-e", f"GH_PAT={SECRET}", "--env", f"X={SECRET}", "img"],
         ["run", "--env", "GH_PAT=***", "--env", "X=***", "img"]),
        (["run", f"--env=DB={SECRET}", f"-eA={SECRET}", "img"],
         ["run", "--env", "DB=***", "--env", "A=***", "img"]),
        (["run", "-e", "HOME", "img"], ["run", "--env", "HOME", "img"]),
        # labels and annotations: names only
        (["run", "-l", f"team={SECRET}", "--annotation", f"a={SECRET}", "img"],
         ["run", "--label", "team=***", "--annotation", "a=***", "img"]),
        # values of options not known to be harmless are masked; their names stay
        (["run", "--add-host", f"{SECRET}:10.0.0.1", "--health-cmd", SECRET, "img"],
         ["run", "--add-host", "***", "--health-cmd", "***", "img"]),
        # harmless values an auditor needs stay
        (["run", "--rm", "-it", "--privileged", "--platform", "linux/arm64", "--name", "web",
          "-v", "/srv:/srv", "--network", "none", "ubuntu:24.04", "bash"],
         ["run", "--rm", "--interactive", "--tty", "--privileged", "--platform",
          "linux/arm64", "--name", "web", "--volume", "/srv:/srv", "--network", "none",
          "ubuntu:24.04", "bash"]),
        (["run", "--rm=false", "img"], ["run", "--rm=false", "img"]),
        # the container's command: the program, not its arguments
        (["run", "img", "sh", "-c", f"MY_CREDS={SECRET} ./go"], ["run", "img", "sh", "***", "***"]),
        (["run", "img", f"--password={SECRET}"], ["run", "img", "***"]),
        (["create", "img", "mysql", f"-p{SECRET}"], ["create", "img", "mysql", "***"]),
        # docker's global flags: names, and the daemon without credentials
        (["-H", "tcp://alice:pw@10.0.0.1:2376", "--context", "prod", "run", "img"],
         ["--host", "tcp://***@10.0.0.1:2376", "--context", "prod", "run", "img"]),
        (["--config", "/home/u/.docker", "image", "pull", "-q", "img"],
         ["--config", "/home/u/.docker", "image", "pull", "--quiet", "img"]),
        # not a docker pull/run/create: command words, flag names and the image only
        (["verify", "img"], ["verify", "***"]),  # which image: see the next test
        (["compose", "-f", "/x/compose.yml", "--env-file", SECRET, "up", "-d"],
         ["compose", "-f", "***", "--env-file", "***", "up", "-d"]),
        (["compose", f"--password={SECRET}", "run", "app"],
         ["compose", "--password=***", "run", "***"]),
        (["--password", SECRET, "pull", "--nonsense", "img"],
         ["--password", "***", "pull", "--nonsense", "***"]),
    ],
)
def test_summarize_argv_keeps_only_what_an_auditor_needs(argv: list[str],
                                                         expected: list[str]) -> None:
    assert summarize_argv(argv) == expected


def test_summarize_argv_keeps_the_image_of_a_generic_command_when_told_which() -> None:
    from safedocker.reference import parse_reference

    summary = summarize_argv(["compose", "run", "--rm", "busybox:1", f"X={SECRET}"],
                             image=parse_reference("busybox:1"))
    assert summary == ["compose", "run", "--rm", "busybox:1", "***"]


def test_a_recorded_verify_keeps_its_image_and_command(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.record({"argv": ["verify", "busybox:1"], "reference": "docker.io/library/busybox:1",
                "outcome": "accepted"})
    (entry,) = list(log.read())
    assert entry["argv"] == ["verify", "busybox:1"]


def test_summarize_argv_is_bounded_and_fast() -> None:
    start = time.monotonic()
    long_args = ["x" * 100_000, "a=" * 50_000, "passpass" * 10_000, "A_KEY=" + "v" * 9000]
    summary = summarize_argv(long_args + ["a"] * 500)
    assert time.monotonic() - start < 1.0
    assert all(len(a) <= 2049 for a in summary)
    assert summary[3] == "***"
    assert len(summary) == 129 and summary[-1] == "… (+376 more)"


def test_audit_log_records_no_env_values(tmp_path: Path) -> None:
    """Attack N11: no value given on the command line reaches the file, whatever its name."""
    log = AuditLog(tmp_path)
    argv = ["run", "--rm", "-e", f"MYSQL_ROOT_PW={SECRET}", "-e", f"GH_PAT={SECRET}",
            "--env", f"DB_CONN=host=db password={SECRET}", "--env-file", "/run/app.env",
            "--label", f"owner={SECRET}", "img", "sh", "-c", f"echo {SECRET}"]
    log.record(event(argv=argv, reasons=[f"could not reach https://bob:{SECRET}@r.example/v2/"]))
    text = (tmp_path / AUDIT_NAME).read_text()
    assert SECRET not in text and "hunter2" not in text
    (entry,) = list(log.read())
    assert entry["argv"] == ["run", "--rm", "--env", "MYSQL_ROOT_PW=***", "--env", "GH_PAT=***",
                             "--env", "DB_CONN=***", "--env-file", "/run/app.env",
                             "--label", "owner=***", "img", "sh", "***", "***"]


# ------------------------------------------------------------------------------- since

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
        ("2026-11-01T08:30:00Z", datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc)),
        ("2026-11-01T10:30:00+02:00", datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "24", "-1d", "2026-13-01", "1y"])
def test_parse_since_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        parse_since(text, now=NOW)


def test_read_since_filters_by_time(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_NAME
    old = {"time": "2026-10-01T00:00:00.000Z", "n": 1}
    new = {"time": "2026-11-09T00:00:00.000Z", "n": 2}
    path.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    log = AuditLog(tmp_path)
    assert [e["n"] for e in log.read(parse_since("7d", now=NOW))] == [2]
    assert [e["n"] for e in log.read(datetime(2026, 9, 1))] == [1, 2]  # naive means UTC
    log.record(event(3))
    assert [e["n"] for e in log.read(parse_since("1h"))] == [3]


# ------------------------------------------------------------------------- text view


def test_verdict_event_names_command_reference_and_the_reason_alone() -> None:
    from safedocker.audit import verdict_event
    from safedocker.errors import RegistryUnavailable

    error = RegistryUnavailable("cannot reach ghcr.io", why="connection refused",
                                hint="check the network")
    event = verdict_event(["-H", "unix:///x.sock", "container", "run", "--rm", "ghcr.io/a/b:1"],
                          None, "refused", error)
    assert event["command"] == "container run"
    assert event["reference"] == "ghcr.io/a/b:1"  # known from argv, though no verdict was made
    assert event["reason"] == "connection refused"
    assert event["error"] == error.line()
    verify = verdict_event(["verify", "busybox"], None, "refused", error,
                           reference="docker.io/library/busybox:latest")
    assert verify["command"] == "verify"
    assert verify["reference"] == "docker.io/library/busybox:latest"


def test_the_text_view_has_the_columns_and_the_reason_alone() -> None:
    from safedocker.audit import AUDIT_COLUMNS, event_row, format_table

    refused = {"time": "2026-11-01T09:30:00.123Z", "argv": ["verify", "x"], "outcome": "refused",
               "reference": "docker.io/library/x:1", "digest": "sha256:" + "ab" * 32,
               "rule": "docker.io/library/*", "reasons": ["no signature by key 'a'"]}
    old = {"time": "2026-11-01T09:31:00Z", "argv": ["run", "x"], "outcome": "refused",
           "offline": True, "error": "safe-docker: refused x — no signature (hint: sign it)"}
    accepted = {"time": "2026-11-01T09:32:00Z", "command": "pull", "outcome": "accepted",
                "reference": "r/x:1", "reasons": ["ignored"]}
    rows = [event_row(e) for e in (refused, old, accepted)]
    assert rows[0] == ("2026-11-01 09:30:00Z", "verify", "docker.io/library/x:1",
                       "sha256:abababababab", "refused", "docker.io/library/*",
                       "no signature by key 'a'")
    assert rows[1][1] == "run" and rows[1][4] == "refused (offline)"
    assert rows[1][6] == "no signature"  # older records kept the whole line: its why
    assert rows[2][6] == "-"
    lines = list(format_table([AUDIT_COLUMNS, *rows]))
    assert lines[0].split() == list(AUDIT_COLUMNS)
    assert lines[1].index("verify") == lines[0].index("COMMAND")
    assert lines[1].endswith("no signature by key 'a'")


def test_control_and_format_characters_are_written_as_json_escapes(tmp_path: Path) -> None:
    # A2-2: JSON escapes C0 controls by itself, but not C1 (U+009B, a one-character CSI) nor
    # bidi overrides; `cat audit.jsonl` must not hand them to the terminal.
    log = AuditLog(tmp_path)
    hostile = "kind \x1b]52;c;eA==\x07 \x9b2K \u202egnp.exe caf\u00e9"
    log.record(event(1, outcome="refused", reason=hostile))
    raw = (tmp_path / "audit.jsonl").read_bytes()
    assert all(0x20 <= b < 0x7F for b in raw.rstrip(b"\n")), raw
    (entry,) = (e for e in log.read())
    assert entry["reason"] == hostile  # the text is kept, only its encoding is ASCII


# --- A2-5: a --mount keeps its shape, never a volume driver's option values ----------------

SAS = "sig=Zm9vYmFyU0VDUkVUc2lnbmF0dXJl"
AZURE_MOUNT = ("type=volume,src=backup,dst=/backup,volume-driver=rclone,"
               "volume-opt=type=azureblob,"
               f"volume-opt=azureblob-sas-url=https://acct.blob.core.windows.net/c?sv=1&{SAS}")


def test_volume_opt_values_of_a_mount_are_masked_and_its_shape_is_kept() -> None:
    summary = summarize_argv(["run", "--rm", "--mount", AZURE_MOUNT, "busybox", "true"])
    assert SAS not in " ".join(summary) and "acct.blob" not in " ".join(summary)
    assert summary[:3] == ["run", "--rm", "--mount"]
    assert summary[3] == ("type=volume,src=backup,dst=/backup,volume-driver=rclone,"
                          "volume-opt=type=***,volume-opt=azureblob-sas-url=***")


@pytest.mark.parametrize("mount", [
    '"volume-opt=o=addr=10.0.0.1,username=u,password=cifs-secret",type=volume,dst=/d',
    "type=volume,dst=/d,volume-opt=device=//10.0.0.1/share,unknown-field=cifs-secret",
    'type=volume,dst=/d,"volume-opt=o=cifs-secret',  # unbalanced quote: csv refuses it
    "type=bind,src=/x,dst=/y,bogus=cifs-secret",
])
def test_no_value_of_an_unknown_or_option_field_of_a_mount_is_recorded(mount: str) -> None:
    summary = summarize_argv(["run", "--mount", mount, "busybox"])
    assert "cifs-secret" not in " ".join(summary), summary


def test_bind_and_tmpfs_mounts_are_recorded_whole() -> None:
    for mount in ("type=bind,source=/srv/data,target=/data,readonly,bind-propagation=rslave",
                  "type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770"):
        assert summarize_argv(["run", "--mount", mount, "busybox"])[2] == mount


def _scrub_unguarded(text: str) -> str:
    """scrub_text as it was before it skipped patterns whose literal is absent."""
    from safedocker import audit

    text = audit._URL_USERINFO.sub(rf"\g<1>{audit.MASK}@", text)
    text = audit._AUTH_SCHEME.sub(rf"\g<1> {audit.MASK}", text)
    parts: list[str] = []
    pos = 0
    while match := audit._INLINE_KEY.search(text, pos):
        parts.append(text[pos: match.end()])
        pos = match.end()
        if audit._SECRET_WORD.search(match.group(1)):
            value = audit._INLINE_VALUE.match(text, pos)
            if value and value.end() > pos:
                parts.append(audit.MASK)
                pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def test_scrubbing_skips_a_pattern_only_where_it_cannot_match() -> None:
    import random

    from safedocker.audit import scrub_text

    words = ["Bearer ", "BASIC ", "baſic ", "toKen ", "token\t", "https://", "u:p@", "h/",
             "PASS", "=", "x", " ", "'v'", "\"w\"", "KEY", "secret", "é", "://", "@", ";"]
    rng = random.Random(16)  # noqa: S311 - test data
    for _ in range(5000):
        text = "".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
        assert scrub_text(text) == _scrub_unguarded(text), text
