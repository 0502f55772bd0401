"""The 1.x reading checked against the real docker-compose 1.x docopt parsing.

The system python3 imports docker-compose 1.29.2 (``compose``) and docopt 0.6.2; every
command line here is read by them in one subprocess (TopLevelCommand's docstring with
``options_first``, then the subcommand's), and compared with `parse_compose_argv`.
Skipped, with the reason printed, where the system python cannot import them.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import textwrap
from typing import Any

import pytest

from safedocker.gate.compose_argv import (
    ArgvProblem,
    ComposeArgvError,
    ComposeCommand,
    Flavour,
    SubcommandKind,
    canonical_argv,
    parse_compose_argv,
)
from tests.unit.gate.test_compose_argv import (
    OPERAND,
    V1_GLOBAL_OPTIONS,
    V1_SUB_OPTIONS,
    spelling_cases,
)

V1 = Flavour.V1

_DOCOPT_READER = textwrap.dedent("""
    import contextlib, io, json, sys
    from inspect import getdoc
    from docopt import DocoptExit, docopt
    from compose.cli.main import TopLevelCommand
    from compose.cli.docopt_command import NoSuchCommand, get_handler

    def read(argv):
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink):
                top = docopt(getdoc(TopLevelCommand), argv, options_first=True, version="v")
        except DocoptExit:
            return {"result": "error"}
        except SystemExit:
            return {"result": "printed"}
        if top["COMMAND"] is None:
            return {"result": "printed", "top": top}
        try:
            handler = get_handler(TopLevelCommand, top["COMMAND"])
        except NoSuchCommand:
            return {"result": "no-such-command", "top": top}
        try:
            with contextlib.redirect_stdout(sink):
                sub = docopt(getdoc(handler), top["ARGS"], options_first=True)
        except DocoptExit:
            return {"result": "error", "top": top}
        except SystemExit:
            return {"result": "printed", "top": top}
        return {"result": "ok", "top": top, "sub": sub}

    print(json.dumps([read(argv) for argv in json.load(sys.stdin)]))
""")

ACCEPTED = [
    [*words, "ps"] for words, _ in spelling_cases(V1, V1_GLOBAL_OPTIONS)
    if words[0] not in ("-v", "--version")
] + [
    [sub, *words, OPERAND.get(sub, "web")]
    for sub, table in V1_SUB_OPTIONS.items() for words, _ in spelling_cases(V1, table)
] + [
    ["-f", "a", "-fb", "--profile", "x", "--profile=y", "-p", "p", "up", "-d", "--", "-x"],
    ["--", "up", "--build", "web", "db"], ["up"], ["run", "--rm", "web", "ls", "-l", "--x"],
    ["run", "-v", "a:/a", "-v", "b:/b", "-e", "A=1", "-eB=2", "--", "web", "--", "sh"],
    ["scale", "web=2", "db=-1"], ["up", "--scale", "web=2", "--scale=db=3"],
    ["build", "--build-arg", "A=1", "--build-arg=B=2", "--", "web"], ["start", "web", "db"],
    ["-f", "--verbose", "pull"], ["exec", "-T", "web", "sh"], ["down", "-v"],
]
HELP_FORMS = [["-h", "up"], ["--help"], ["-v", "up"], ["--version"], ["up", "--help"],
              ["up", "-dh"], ["run", "-h", "web"], ["-f", "a.yml"], ["--"]]
ATTACKS = [
    (["--fi", "evil.yml", "up"], {"--file": ["evil.yml"]}),
    (["--project-dir", "/evil", "up"], {"--project-directory": "/evil"}),
    (["--env-f", "evil.env", "up"], {"--env-file": "evil.env"}),
    (["-f=decoy.yml", "up"], {"--file": ["=decoy.yml"]}),
]
REFUSED_BY_BOTH = [
    ["-p", "a", "-p", "b", "up"], ["up", "-d", "-d"], ["--bogus", "up"], ["up", "--bogus"],
    ["bogus"], ["up", "--build=x"], ["--project-", "x", "up"], ["up", "--build", "--bogus"],
]
MISPLACED = [
    (["up", "web", "-d"], ["web", "-d"]), (["up", "web", "--", "db"], ["web", "--", "db"]),
    (["create", "--", "web"], ["--", "web"]), (["up", "web", "--help"], ["web", "--help"]),
]

# A random command line: a few global words, a subcommand, a few words after it. The words
# include options, their abbreviations and odd forms, values, services, `--`.
GLOBAL_WORDS = [
    "-f", "x.yml", "--file=b.yml", "-fa.yml", "--fi", "-f=x.yml", "-p", "proj", "-pproj",
    "--project-dir", "--profile", "gpu", "--env-file", ".env", "--env-f", "--verbose",
    "--no-ansi", "--tls", "-H", "--host=tcp://h", "-c", "--compatibility", "--", "-h", "-v",
    "--bogus", "-vp",
]
SUBCOMMAND_WORDS = ["up", "run", "scale", "pull", "create", "build", "start", "restart", "ps",
                    "exec", "bogus", "-"]
SUB_WORDS = [
    "web", "db", "db=2", "web=x", "-d", "--build", "--no-build", "--bu", "--scale", "web=2",
    "--rm", "-e", "A=1", "-T", "-dT", "-eB=2", "--entrypoint", "sh", "-t", "3", "--no-deps",
    "-q", "--include-deps", "-V", "--name", "--label=k=v", "-l", "--pull", "--build-arg", "--",
    "-h", "-x", "---x", "-",
]


def random_argvs(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    return [[*(rng.choice(GLOBAL_WORDS) for _ in range(rng.randint(0, 3))),
             rng.choice(SUBCOMMAND_WORDS),
             *(rng.choice(SUB_WORDS) for _ in range(rng.randint(0, 4)))]
            for _ in range(count)]


RANDOM = random_argvs(1500, seed=1129)


def _key(argv: list[str]) -> str:
    return json.dumps(argv)


def _maybe(argv: list[str]) -> ComposeCommand | None:
    try:
        return parse_compose_argv(argv, V1)
    except ComposeArgvError:
        return None


@pytest.fixture(scope="module")
def docopt_reads() -> Any:
    """argv → docopt's reading; everything this module asks is read in one subprocess."""
    python = shutil.which("python3", path="/usr/bin")
    reason = "the system python3 cannot import docker-compose 1.x (compose, docopt)"
    if python is None or subprocess.run(
            [python, "-c", "import compose.cli.main, docopt"], capture_output=True,
            timeout=60, check=False).returncode != 0:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    wanted = [*ACCEPTED, *HELP_FORMS, *(a for a, _ in ATTACKS), *REFUSED_BY_BOTH,
              *(a for a, _ in MISPLACED), *RANDOM]
    wanted += [canonical_argv(c) for c in map(_maybe, [*ACCEPTED, *RANDOM]) if c is not None]
    proc = subprocess.run([python, "-c", _DOCOPT_READER], input=json.dumps(wanted),
                          capture_output=True, text=True, timeout=300, check=True)
    # one JSON object per argv: docopt's dict of options and operands
    reads: dict[str, dict[str, Any]] = dict(
        zip(map(_key, wanted), json.loads(proc.stdout), strict=True))

    def read(argv: list[str]) -> dict[str, Any]:
        return reads[_key(argv)]

    return read


def _agrees(cmd: ComposeCommand, read: dict[str, Any]) -> None:
    """docopt's reading is the command's: globals, subcommand, options, operands."""
    top = read["top"]
    assert top["COMMAND"] == cmd.subcommand
    assert top["--file"] == list(cmd.files) and top["--profile"] == list(cmd.profiles)
    for name, value in cmd.globals:
        if name not in ("--file", "--profile"):
            assert top[name] == (True if value is None else value), name
    if cmd.kind is SubcommandKind.PASS:
        assert top["ARGS"] == list(cmd.sub_args)
        return
    sub = read["sub"]
    for name, _ in cmd.sub_options:
        values = [v for n, v in cmd.sub_options if n == name]
        expected: Any = True if values == [None] else values if isinstance(sub[name], list) \
            else values[-1]
        assert sub[name] == expected, name
    if cmd.subcommand == "run":
        assert [sub["SERVICE"], *([sub["COMMAND"]] if sub["COMMAND"] else []), *sub["ARGS"]] \
            == [*cmd.services, *cmd.command]
    elif cmd.subcommand == "scale":
        assert sub["SERVICE=NUM"] == [f"{s}={n}" for s, n in cmd.scale]
    else:
        assert sub["SERVICE"] == list(cmd.services)


def _as_read(read: dict[str, Any]) -> dict[str, Any]:
    """docopt's reading less how it was written: whether `--` was (canonical argv writes it
    before operands) and the top level's raw ARGS (compared through the subcommand's)."""
    return {part: {k: v for k, v in values.items()
                   if k != "--" and not (part == "top" and k == "ARGS")}
            if isinstance(values, dict) else values for part, values in read.items()}


def test_every_accepted_spelling_reads_as_docopt_reads_it(docopt_reads: Any) -> None:
    for argv in ACCEPTED:
        cmd = parse_compose_argv(argv, V1)
        read = docopt_reads(argv)
        assert read["result"] == "ok", argv
        _agrees(cmd, read)
        assert _as_read(docopt_reads(canonical_argv(cmd))) == _as_read(read), argv


def test_random_command_lines_accepted_are_read_as_docopt_reads_them(docopt_reads: Any) -> None:
    accepted = 0
    for argv in RANDOM:
        cmd = _maybe(argv)
        if cmd is None:
            continue  # refusing what docopt would accept is allowed: the allowlist is narrower
        read = docopt_reads(argv)
        if cmd.help:
            assert read["result"] == "printed" or cmd.subcommand == "help", argv
            continue
        if cmd.kind is SubcommandKind.PASS:  # its words are compose's to judge, not ours
            assert "top" in read, argv
            _agrees(cmd, {"top": read["top"]})
            continue
        accepted += 1
        assert read["result"] == "ok", argv
        _agrees(cmd, read)
        assert _as_read(docopt_reads(canonical_argv(cmd))) == _as_read(read), argv
    assert accepted >= 100  # the sample really exercises accepted command lines


def test_random_command_lines_with_abbreviations_are_all_refused(docopt_reads: Any) -> None:
    abbreviated = [a for a in RANDOM if a[0] in ("--fi", "--project-dir", "--env-f")]
    assert abbreviated
    for argv in abbreviated:
        with pytest.raises(ComposeArgvError) as caught:
            parse_compose_argv(argv, V1)
        assert caught.value.problem is ArgvProblem.ABBREVIATED_OPTION, argv


@pytest.mark.parametrize("argv", HELP_FORMS)
def test_help_forms_print_in_docopt_too(docopt_reads: Any, argv: list[str]) -> None:
    assert parse_compose_argv(argv, V1).help
    assert docopt_reads(argv)["result"] == "printed"


@pytest.mark.parametrize(("argv", "docopt_reads_it_as"), ATTACKS)
def test_refused_attacks_are_readings_docopt_really_makes(
        docopt_reads: Any, argv: list[str], docopt_reads_it_as: dict[str, Any]) -> None:
    with pytest.raises(ComposeArgvError):
        parse_compose_argv(argv, V1)
    read = docopt_reads(argv)
    assert read["result"] == "ok" and read["top"]["COMMAND"] == "up"
    for name, value in docopt_reads_it_as.items():
        assert read["top"][name] == value


@pytest.mark.parametrize("argv", REFUSED_BY_BOTH)
def test_refusals_docopt_refuses_too(docopt_reads: Any, argv: list[str]) -> None:
    with pytest.raises(ComposeArgvError):
        parse_compose_argv(argv, V1)
    assert docopt_reads(argv)["result"] in ("error", "no-such-command")


@pytest.mark.parametrize(("argv", "services"), MISPLACED)
def test_misplaced_words_are_what_docopt_calls_services(
        docopt_reads: Any, argv: list[str], services: list[str]) -> None:
    with pytest.raises(ComposeArgvError) as caught:
        parse_compose_argv(argv, V1)
    assert caught.value.problem is ArgvProblem.MISPLACED
    read = docopt_reads(argv)
    assert read["result"] == "ok" and read["sub"]["SERVICE"] == services
