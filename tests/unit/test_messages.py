"""Every refusal is one line, `safe-docker: what — why (hint: …)`, in the user's words.

The refusal paths of the own commands are walked through the real entry point (a
subprocess, as a user runs it) and each message is compared whole; the package source is
read to show that no message is built from an exception's class name.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from safedocker.errors import reason_of
from tests.unit.policy.support import new_pem

PACKAGE = Path(__file__).resolve().parents[2] / "safedocker"
# what, then optionally " — why", then optionally " (hint: …)"; nothing after, one line.
LINE = re.compile(r"safe-docker: (?!.*safe-docker:)[^\n—]+?( — [^\n]+?)?( \(hint: [^\n]+\))?")


@dataclass
class Home:
    root: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFE_DOCKER_", "DOCKER_"))}
        env.update(SAFE_DOCKER_CONFIG_DIR=str(self.root / "config"),
                   SAFE_DOCKER_CACHE_DIR=str(self.root / "cache"),
                   SAFE_DOCKER_STATE_DIR=str(self.root / "state"),
                   SAFE_DOCKER_SYSTEM_CONFIG_DIR=str(self.root / "system"),
                   SAFE_DOCKER_REAL_DOCKER="/bin/false",
                   DOCKER_HOST="unix:///nonexistent.sock", **extra)
        return env

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "safedocker", *args], env=self.env(**env),
                              capture_output=True, text=True, timeout=60, check=False)

    @property
    def config(self) -> Path:
        return self.root / "config" / "config.toml"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    made = Home(tmp_path)
    (tmp_path / "config").mkdir()
    key = tmp_path / "a.pub"
    key.write_bytes(new_pem())
    assert made.run("keys", "add", "a", str(key)).returncode == 0
    return made


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert LINE.fullmatch(lines[0]), lines[0]
    return lines[0]


# (argv, exit code, the whole line); {config} is the user config file.
REFUSALS = [
    (["policy", "add", "ghcr.io/x/*", "--key", "a", "--tlog", "maybe"], 2,
     "safe-docker: invalid --tlog 'maybe' — expected required | optional | off "
     "(hint: see `safe-docker policy add --help`)"),
    (["policy", "add", "ghcr.io/x/*"], 2,
     "safe-docker: policy add needs a signer — no --key, --identity or --identity-regexp given "
     "(hint: name a trusted key with --key NAME, or use `safe-docker policy allow SCOPE` to "
     "accept without signatures)"),
    (["policy", "add", "ghcr.io/x/*", "--key", "a", "--threshold", "2"], 2,
     "safe-docker: invalid --threshold '2' — only 1 signer given "
     "(hint: give at least as many --key/--identity/--identity-regexp)"),
    (["policy", "add", "ghcr.io/x/*", "--key", "a", "--threshold", "zero"], 2,
     "safe-docker: invalid --threshold 'zero' — expected a whole number of at least 1 "
     "(hint: e.g. --threshold 1)"),
    (["policy", "add", "ghcr.io/x/*", "--key", "nokey"], 2,
     "safe-docker: invalid --key 'nokey' — no trusted key has that name (hint: trust it first "
     "with `safe-docker keys add nokey FILE`; `safe-docker keys list` shows the names)"),
    (["policy", "add", "ghcr.io/x/*", "--identity-regexp", "https://x=("], 2,
     "safe-docker: invalid --identity-regexp '(' — invalid regular expression (RE2): "
     "missing closing ) at position 0 (hint: identity regexps use Go's RE2 syntax, as "
     "cosign: no look-arounds, back-references or possessive repeats)"),
    (["policy", "add", "ghcr.io/x/*", "--annotation", "novalue"], 2,
     "safe-docker: invalid --annotation 'novalue' — expected two parts joined by '=' "
     "(hint: see `safe-docker policy add --help`)"),
    (["policy", "add", "--key", "a"], 2,
     "safe-docker: missing argument 'SCOPE' (hint: see `safe-docker policy add --help`)"),
    (["policy", "add", "x", "--bogus"], 2,
     "safe-docker: no such option: --bogus (hint: see `safe-docker policy add --help`)"),
    (["policy", "add", "x", "--tlgo", "off"], 2,
     "safe-docker: no such option: --tlgo (hint: did you mean --tlog? see "
     "`safe-docker policy add --help`)"),
    (["cache", "prune"], 2,
     "safe-docker: cache prune needs --older-than AGE or --all "
     "(hint: e.g. `safe-docker cache prune --older-than 30d`)"),
    (["cache", "prune", "--older-than", "1y"], 2,
     "safe-docker: invalid --older-than '1y' — expected a number and s, m, h, d or w "
     "(hint: e.g. 30d)"),
    (["cache", "prune", "--older-than", "1d", "--all"], 2,
     "safe-docker: cache prune takes --older-than or --all, not both "
     "(hint: e.g. `safe-docker cache prune --older-than 30d`)"),
    (["audit", "--since", "yesterday"], 2,
     "safe-docker: invalid --since 'yesterday' — expected a duration such as 24h or 7d, a date "
     "2026-11-01, or an ISO 8601 time"),
    (["policy", "export", "--format", "rego"], 2,
     "safe-docker: invalid --format 'rego' — expected kyverno | policy-controller | "
     "containers-policy (hint: see `safe-docker policy export --help`)"),
    (["shell-init", "tcsh"], 2,
     "safe-docker: unsupported shell: tcsh — shell-init knows bash, zsh, fish "
     "(hint: use eval \"$(safe-docker shell-init bash)\" or shell-init zsh|fish)"),
    (["verify", "ghcr.io/x/y:1"], 77,
     "safe-docker: refused ghcr.io/x/y:1 — no policy scope covers ghcr.io/x/y (hint: add a rule "
     "for it: `safe-docker policy add SCOPE --key NAME` (or `policy allow SCOPE`))"),
    (["verify", "Not A Reference"], 2, None),
]


@pytest.mark.parametrize(("argv", "status", "line"), REFUSALS,
                         ids=[" ".join(a) for a, _, _ in REFUSALS])
def test_each_refusal_is_its_one_line_and_its_exit_code(home: Home, argv: list[str],
                                                        status: int, line: str | None) -> None:
    before = home.config.read_bytes()
    proc = home.run(*argv)
    assert proc.returncode == status, proc.stderr
    said = one_line(proc)
    if line is not None:
        assert said == line
    assert home.config.read_bytes() == before  # nothing was written


def test_a_key_that_is_not_pem_says_so_without_a_class_name(home: Home, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("garbage\n")
    proc = home.run("keys", "add", "b", str(bad))
    assert proc.returncode == 78
    assert one_line(proc) == (
        "safe-docker: key 'b' is not a PEM public key — no valid -----BEGIN PUBLIC KEY----- "
        "block in the file (hint: use the .pub file cosign or openssl wrote "
        "(openssl pkey -pubout))")


def test_broken_toml_is_78_naming_the_file_and_line(home: Home) -> None:
    home.config.write_text(home.config.read_text() + '\nmode = [\n')
    proc = home.run("verify", "ghcr.io/x/y:1")
    assert proc.returncode == 78
    line = one_line(proc)
    assert line.startswith(f"safe-docker: invalid configuration in {home.config}:")
    assert "not valid TOML" in line


def test_doctor_with_broken_toml_exits_78_and_gives_the_hint_once(home: Home) -> None:
    home.config.write_text("mode = [\n")
    proc = home.run("doctor")
    assert proc.returncode == 78, proc.stdout + proc.stderr
    assert one_line(proc).startswith("safe-docker: doctor found ")
    [fail] = [line for line in proc.stdout.splitlines() if line.startswith("[FAIL] configuration")]
    assert fail.startswith(f"[FAIL] configuration: invalid configuration in {home.config}:1 — ")
    assert "safe-docker:" not in fail and "hint" not in fail
    assert (proc.stdout + proc.stderr).count("the file must be valid TOML") <= 1
    assert proc.stdout.count("TOML is described at") == 1


def test_gpu_gives_its_reason_once(home: Home) -> None:
    proc = home.run("gpu", LD_LIBRARY_PATH="/nonexistent")
    assert proc.returncode == 0, proc.stderr
    first, flags = proc.stdout.splitlines()[:2]
    if first.startswith("no NVIDIA GPU: "):
        reason = first.removeprefix("no NVIDIA GPU: ")
        assert proc.stdout.count(reason) == 1
        assert flags == "flags for a run: (none)"


def test_offline_without_a_record_is_69_and_says_the_registry_was_not_contacted(
        home: Home) -> None:
    home.run("policy", "add", "ghcr.io/x/*", "--key", "a")
    proc = home.run("verify", "ghcr.io/x/y:1", SAFE_DOCKER_OFFLINE="1")
    assert proc.returncode == 69
    assert one_line(proc) == (
        "safe-docker: cannot verify ghcr.io/x/y:1: SAFE_DOCKER_OFFLINE=1 — no usable offline "
        "record: ghcr.io/x/y:1 was never verified here (hint: verify it once while online, or "
        "bring the material with `safe-docker cache import` / `safe-docker airgap load`)")


def test_a_group_without_a_command_shows_its_help(home: Home) -> None:
    proc = home.run("policy")
    assert proc.returncode == 2
    assert "Usage: safe-docker policy [OPTIONS] COMMAND" in proc.stdout + proc.stderr


# --- no class names -------------------------------------------------------------------------


def _class_name_uses() -> list[str]:
    """``X.__name__``/``X.__qualname__`` and reads of ``X.__class__`` anywhere in the
    package, except ``if __name__ == "__main__"`` and ``getLogger(__name__)``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            if node.attr in ("__name__", "__qualname__") or (
                    node.attr == "__class__" and isinstance(node.ctx, ast.Load)):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_no_message_is_built_from_an_exception_class_name() -> None:
    assert _class_name_uses() == []


@pytest.mark.parametrize(("error", "reason"), [
    (FileNotFoundError(2, "No such file or directory", "/x"), "No such file or directory"),
    (ValueError("Could not deserialize key data."), "Could not deserialize key data."),
    (ValueError(), "an unexpected failure"),
    (KeyError("fingerprint"), "an unexpected failure"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not UTF-8 text"),
    (RuntimeError("first line\nsecond line"), "first line"),
])
def test_reason_of_an_exception_is_in_user_words(error: BaseException, reason: str) -> None:
    assert reason_of(error) == reason
    assert type(error).__name__ not in reason_of(error)


def test_a_multi_line_reason_still_makes_one_line() -> None:
    from safedocker.errors import ConfigError

    error = ConfigError("cannot parse compose config output",
                        why="while parsing a block mapping\n  in \"<unicode string>\", line 1")
    assert "\n" not in error.line()
    assert LINE.fullmatch(error.line())


def test_every_command_a_hint_names_exists() -> None:
    """A hint such as `safe-docker policy add SCOPE` names a real command and subcommand."""
    from safedocker.cli import command

    tree = command()
    named = set()
    for path in PACKAGE.rglob("*.py"):
        named |= set(re.findall(r"`safe-docker ([a-z][a-z-]*(?: [a-z][a-z-]*)?)",
                                path.read_text()))
    assert named
    for words in sorted(named):
        first, _, second = words.partition(" ")
        if first in ("run", "create", "pull", "ps"):
            continue  # docker's (intercepted, or the help's passthrough example)
        assert first in tree.commands, words
        group = tree.commands[first]
        if getattr(group, "commands", None) and second:
            assert second in group.commands, words


# --- text a registry chose never reaches the terminal as control sequences (A2-2) ----------

OSC52 = "\x1b]52;c;Y3VybCAtcyBodHRwczovL2V2aWwuZXhhbXBsZS94IHwgc2gK\x07"
REWRITE = "\x1b[2K\x1b[1Gverified OK\x1b[8m"  # erase the line, conceal the rest


@pytest.mark.parametrize("hostile", [
    OSC52, REWRITE, "\x9b2K",  # a C1 CSI, one code point
    "\u202egnp.exe",  # a right-to-left override reorders what follows
    "\x00\x7f\u200b\ufeff",
])
def test_control_and_format_characters_in_any_part_are_escaped_not_printed(
        hostile: str) -> None:
    from safedocker.errors import Refused

    for error in (Refused(f"refused {hostile}"), Refused("x", why=f"kind {hostile}"),
                  Refused("x", why="y", hint=hostile)):
        line = error.line()
        assert all(c.isprintable() for c in line), ascii(line)
        assert LINE.fullmatch(line), ascii(line)


def test_an_escape_is_shown_as_its_escape_text() -> None:
    from safedocker.errors import Refused, printable

    assert printable("a\x1b[8mb") == "a\\x1b[8mb"
    assert printable("\u202e\x9b") == "\\u202e\\x9b"
    assert printable("caf\u00e9 \u65e5\u672c") == "caf\u00e9 \u65e5\u672c"  # letters stay
    assert Refused("unsupported entry kind", why=OSC52).line().startswith(
        "safe-docker: unsupported entry kind \u2014 \\x1b]52;c;")


def test_log_lines_escape_control_characters_too(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from safedocker.console import setup_logging

    setup_logging()
    logging.getLogger("safedocker.test").warning("registry said %s", REWRITE)
    err = capsys.readouterr().err
    assert err.startswith("safe-docker: warning: registry said \\x1b[2K")
    assert "\x1b" not in err
