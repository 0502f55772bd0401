"""`safe-docker compose ARGS…` read with an allowlist, as compose v2 (pflag) and 1.x (docopt) do.

The option tables below are transcribed from compose's own sources (docker/compose
cmd/compose/*.go; docker-compose 1.29.2 compose/cli/main.py docstrings), independently of
the module's tables; a completeness test checks the two list the same options.
"""

from __future__ import annotations

from typing import Any

import pytest

from safedocker.errors import UsageError
from safedocker.gate.compose_argv import (
    V1_GLOBALS,
    V1_SUBCOMMANDS,
    V2_GLOBALS,
    V2_SUBCOMMANDS,
    ArgvProblem,
    ComposeArgvError,
    ComposeCommand,
    Flavour,
    ImageEffect,
    SubcommandKind,
    canonical_argv,
    config_argv,
    parse_compose_argv,
)

V1, V2 = Flavour.V1, Flavour.V2
BOTH = [V1, V2]

# (spellings, canonical name, takes a value) — global options.
V2_GLOBAL_OPTIONS: list[tuple[tuple[str, ...], str, bool]] = [
    (("-f", "--file"), "--file", True), (("-p", "--project-name"), "--project-name", True),
    (("--profile",), "--profile", True), (("--insecure-registry",), "--insecure-registry", True),
    (("--env-file",), "--env-file", True),
    (("--project-directory", "--workdir"), "--project-directory", True),
    (("--compatibility",), "--compatibility", False), (("--progress",), "--progress", True),
    (("--all-resources",), "--all-resources", False), (("--ansi",), "--ansi", True),
    (("--parallel",), "--parallel", True), (("-v", "--version"), "--version", False),
    (("--dry-run",), "--dry-run", False), (("--no-ansi",), "--no-ansi", False),
    (("--verbose",), "--verbose", False), (("-h", "--help"), "--help", False),
]
V1_GLOBAL_OPTIONS: list[tuple[tuple[str, ...], str, bool]] = [
    (("-f", "--file"), "--file", True), (("-p", "--project-name"), "--project-name", True),
    (("--profile",), "--profile", True), (("-c", "--context"), "--context", True),
    (("--verbose",), "--verbose", False), (("--log-level",), "--log-level", True),
    (("--ansi",), "--ansi", True), (("--no-ansi",), "--no-ansi", False),
    (("-v", "--version"), "--version", False), (("-H", "--host"), "--host", True),
    (("--tls",), "--tls", False), (("--tlscacert",), "--tlscacert", True),
    (("--tlscert",), "--tlscert", True), (("--tlskey",), "--tlskey", True),
    (("--tlsverify",), "--tlsverify", False),
    (("--skip-hostname-check",), "--skip-hostname-check", False),
    (("--project-directory",), "--project-directory", True),
    (("--compatibility",), "--compatibility", False), (("--env-file",), "--env-file", True),
    (("-h", "--help"), "--help", False),
]

_F, _T = False, True
_V2_COMMON = [(("--dry-run",), "--dry-run", _F), (("-h", "--help"), "--help", _F)]
# subcommand → [(spellings, canonical, takes a value)] for the subcommands that are verified.
V2_SUB_OPTIONS: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {
    "up": [(("-d", "--detach"), "--detach", _F), (("--build",), "--build", _F),
           (("--no-build",), "--no-build", _F), (("--pull",), "--pull", _T),
           (("--remove-orphans",), "--remove-orphans", _F), (("--scale",), "--scale", _T),
           (("--no-color",), "--no-color", _F), (("--no-log-prefix",), "--no-log-prefix", _F),
           (("--force-recreate",), "--force-recreate", _F),
           (("--no-recreate",), "--no-recreate", _F), (("--no-start",), "--no-start", _F),
           (("--abort-on-container-exit",), "--abort-on-container-exit", _F),
           (("--abort-on-container-failure",), "--abort-on-container-failure", _F),
           (("--exit-code-from",), "--exit-code-from", _T),
           (("-t", "--timeout"), "--timeout", _T), (("--timestamps",), "--timestamps", _F),
           (("--no-deps",), "--no-deps", _F),
           (("--always-recreate-deps",), "--always-recreate-deps", _F),
           (("-V", "--renew-anon-volumes"), "--renew-anon-volumes", _F),
           (("--quiet-pull",), "--quiet-pull", _F), (("--quiet-build",), "--quiet-build", _F),
           (("--attach",), "--attach", _T), (("--no-attach",), "--no-attach", _T),
           (("--attach-dependencies",), "--attach-dependencies", _F),
           (("--wait",), "--wait", _F), (("--wait-timeout",), "--wait-timeout", _T),
           (("-w", "--watch"), "--watch", _F), (("--menu",), "--menu", _F),
           (("-y", "--yes", "--y"), "--yes", _F), *_V2_COMMON],
    "create": [(("--build",), "--build", _F), (("--no-build",), "--no-build", _F),
               (("--pull",), "--pull", _T), (("--quiet-pull",), "--quiet-pull", _F),
               (("--force-recreate",), "--force-recreate", _F),
               (("--no-recreate",), "--no-recreate", _F),
               (("--remove-orphans",), "--remove-orphans", _F), (("--scale",), "--scale", _T),
               (("-y", "--yes", "--y"), "--yes", _F), *_V2_COMMON],
    "run": [(("-d", "--detach"), "--detach", _F), (("-e", "--env"), "--env", _T),
            (("--env-from-file",), "--env-from-file", _T),
            (("-l", "--label", "--labels"), "--label", _T), (("--rm",), "--rm", _F),
            (("-T", "--no-tty", "--no-TTY"), "--no-tty", _F), (("--name",), "--name", _T),
            (("-u", "--user"), "--user", _T), (("-w", "--workdir"), "--workdir", _T),
            (("--entrypoint",), "--entrypoint", _T), (("--cap-add",), "--cap-add", _T),
            (("--cap-drop",), "--cap-drop", _T), (("--no-deps",), "--no-deps", _F),
            (("-v", "--volume", "--volumes"), "--volume", _T),
            (("-p", "--publish"), "--publish", _T), (("--use-aliases",), "--use-aliases", _F),
            (("-P", "--service-ports"), "--service-ports", _F), (("--pull",), "--pull", _T),
            (("-q", "--quiet"), "--quiet", _F), (("--quiet-build",), "--quiet-build", _F),
            (("--quiet-pull",), "--quiet-pull", _F), (("--build",), "--build", _F),
            (("--remove-orphans",), "--remove-orphans", _F),
            (("-i", "--interactive"), "--interactive", _F), (("-t", "--tty"), "--tty", _F),
            *_V2_COMMON],
    "pull": [(("-q", "--quiet"), "--quiet", _F), (("--include-deps",), "--include-deps", _F),
             (("--parallel",), "--parallel", _F), (("--no-parallel",), "--no-parallel", _F),
             (("--ignore-pull-failures",), "--ignore-pull-failures", _F),
             (("--ignore-buildable",), "--ignore-buildable", _F),
             (("--policy",), "--policy", _T), *_V2_COMMON],
    "scale": [(("--no-deps",), "--no-deps", _F), *_V2_COMMON],
    "watch": [(("--quiet",), "--quiet", _F), (("--prune",), "--prune", _F),
              (("--no-up",), "--no-up", _F), *_V2_COMMON],
    "build": [(("--push",), "--push", _F), (("-q", "--quiet"), "--quiet", _F),
              (("--pull",), "--pull", _F), (("--build-arg",), "--build-arg", _T),
              (("--ssh",), "--ssh", _T), (("--builder",), "--builder", _T),
              (("--with-dependencies",), "--with-dependencies", _F),
              (("--provenance",), "--provenance", _T), (("--sbom",), "--sbom", _T),
              (("--parallel",), "--parallel", _F), (("--compress",), "--compress", _F),
              (("--force-rm",), "--force-rm", _F), (("--no-cache",), "--no-cache", _F),
              (("--no-rm",), "--no-rm", _F), (("-m", "--memory"), "--memory", _T),
              (("--progress",), "--progress", _T), (("--print",), "--print", _F),
              (("--check",), "--check", _F), *_V2_COMMON],
    "start": [(("--wait",), "--wait", _F), (("--wait-timeout",), "--wait-timeout", _T),
              *_V2_COMMON],
    "restart": [(("-t", "--timeout"), "--timeout", _T), (("--no-deps",), "--no-deps", _F),
                *_V2_COMMON],
}
V1_SUB_OPTIONS: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {
    "up": [(("-d", "--detach"), "--detach", _F), (("--no-color",), "--no-color", _F),
           (("--quiet-pull",), "--quiet-pull", _F), (("--no-deps",), "--no-deps", _F),
           (("--force-recreate",), "--force-recreate", _F),
           (("--always-recreate-deps",), "--always-recreate-deps", _F),
           (("--no-recreate",), "--no-recreate", _F), (("--no-build",), "--no-build", _F),
           (("--no-start",), "--no-start", _F), (("--build",), "--build", _F),
           (("--abort-on-container-exit",), "--abort-on-container-exit", _F),
           (("--attach-dependencies",), "--attach-dependencies", _F),
           (("-t", "--timeout"), "--timeout", _T),
           (("-V", "--renew-anon-volumes"), "--renew-anon-volumes", _F),
           (("--remove-orphans",), "--remove-orphans", _F),
           (("--exit-code-from",), "--exit-code-from", _T), (("--scale",), "--scale", _T),
           (("--no-log-prefix",), "--no-log-prefix", _F)],
    "create": [(("--force-recreate",), "--force-recreate", _F),
               (("--no-recreate",), "--no-recreate", _F), (("--no-build",), "--no-build", _F),
               (("--build",), "--build", _F)],
    "run": [(("-d", "--detach"), "--detach", _F), (("--name",), "--name", _T),
            (("--entrypoint",), "--entrypoint", _T), (("-e",), "-e", _T),
            (("-l", "--label"), "--label", _T), (("-u", "--user"), "--user", _T),
            (("--no-deps",), "--no-deps", _F), (("--rm",), "--rm", _F),
            (("-p", "--publish"), "--publish", _T),
            (("--service-ports",), "--service-ports", _F),
            (("--use-aliases",), "--use-aliases", _F), (("-v", "--volume"), "--volume", _T),
            (("-T",), "-T", _F), (("-w", "--workdir"), "--workdir", _T)],
    "pull": [(("--ignore-pull-failures",), "--ignore-pull-failures", _F),
             (("--parallel",), "--parallel", _F), (("--no-parallel",), "--no-parallel", _F),
             (("-q", "--quiet"), "--quiet", _F), (("--include-deps",), "--include-deps", _F)],
    "scale": [(("-t", "--timeout"), "--timeout", _T)],
    "build": [(("--build-arg",), "--build-arg", _T), (("--compress",), "--compress", _F),
              (("--force-rm",), "--force-rm", _F), (("-m", "--memory"), "--memory", _T),
              (("--no-cache",), "--no-cache", _F), (("--no-rm",), "--no-rm", _F),
              (("--parallel",), "--parallel", _F), (("--progress",), "--progress", _T),
              (("--pull",), "--pull", _F), (("-q", "--quiet"), "--quiet", _F)],
    "start": [],
    "restart": [(("-t", "--timeout"), "--timeout", _T)],
}
SUB_OPTIONS = {V1: V1_SUB_OPTIONS, V2: V2_SUB_OPTIONS}
GLOBAL_OPTIONS = {V1: V1_GLOBAL_OPTIONS, V2: V2_GLOBAL_OPTIONS}
OPERAND = {"run": "web", "scale": "web=2"}  # what follows the options in each case


def parse(flavour: Flavour, *argv: str) -> ComposeCommand:
    return parse_compose_argv(list(argv), flavour)


def refused(flavour: Flavour, *argv: str) -> ComposeArgvError:
    with pytest.raises(ComposeArgvError) as caught:
        parse_compose_argv(list(argv), flavour)
    return caught.value


def value_for(canonical: str) -> str:
    return "web=3" if canonical == "--scale" else "VAL"


def spelling_cases(flavour: Flavour, table: list[tuple[tuple[str, ...], str, bool]]) -> list[
        tuple[list[str], tuple[str, str | None]]]:
    """Every way to write each option: separate value, `--long=value`, `-sVALUE`, and for v2
    `-s=VALUE`; a flag alone."""
    cases: list[tuple[list[str], tuple[str, str | None]]] = []
    for spellings, canonical, takes_value in table:
        if canonical == "--help":
            continue  # help is checked on its own below
        for spelling in spellings:
            if not takes_value:
                cases.append(([spelling], (canonical, None)))
                continue
            value = value_for(canonical)
            cases.append(([spelling, value], (canonical, value)))
            if spelling.startswith("--"):
                cases.append(([f"{spelling}={value}"], (canonical, value)))
            else:
                cases.append(([f"{spelling}{value}"], (canonical, value)))
                if flavour is V2:
                    cases.append(([f"{spelling}={value}"], (canonical, value)))
    return cases


GLOBAL_CASES = [pytest.param(f, words, expected, id=f"{f.value}:{' '.join(words)}")
                for f in BOTH for words, expected in spelling_cases(f, GLOBAL_OPTIONS[f])]
SUB_CASES = [pytest.param(f, sub, words, expected, id=f"{f.value}:{sub} {' '.join(words)}")
             for f in BOTH for sub, table in SUB_OPTIONS[f].items()
             for words, expected in spelling_cases(f, table)]


# --- every option, every spelling ---------------------------------------------------------


@pytest.mark.parametrize(("flavour", "words", "expected"), GLOBAL_CASES)
def test_every_global_option_is_read_with_its_arity(flavour: Flavour, words: list[str],
                                                    expected: tuple[str, str | None]) -> None:
    cmd = parse(flavour, *words, "ps")
    assert cmd.globals == (expected,)
    assert cmd.subcommand == "ps"  # a flag did not eat the subcommand, a value did not leak


@pytest.mark.parametrize(("flavour", "sub", "words", "expected"), SUB_CASES)
def test_every_option_of_a_verified_subcommand_is_read_with_its_arity(
        flavour: Flavour, sub: str, words: list[str], expected: tuple[str, str | None]) -> None:
    cmd = parse(flavour, sub, *words, OPERAND.get(sub, "web"))
    assert cmd.sub_options == (expected,)
    assert cmd.services == ("web",)
    assert cmd.kind is (SubcommandKind.MAY_START if sub in ("start", "restart")
                        else SubcommandKind.VERIFY)


@pytest.mark.parametrize("flavour", BOTH)
def test_the_tables_here_list_exactly_the_modules_options(flavour: Flavour) -> None:
    module_globals = V1_GLOBALS if flavour is V1 else V2_GLOBALS
    module_subs = V1_SUBCOMMANDS if flavour is V1 else V2_SUBCOMMANDS

    def spellings(specs: Any) -> set[str]:
        return {s for spec in specs for s in (spec.long, spec.short, *spec.aliases) if s}

    assert spellings(module_globals) == {s for ss, _, _ in GLOBAL_OPTIONS[flavour] for s in ss}
    verified = {n for n, spec in module_subs.items() if spec.options is not None}
    assert verified == set(SUB_OPTIONS[flavour])
    for name, table in SUB_OPTIONS[flavour].items():
        options = module_subs[name].options
        assert options is not None
        assert spellings(options) == {s for ss, _, _ in table for s in ss}, name


def test_v2_bool_flags_take_true_and_false() -> None:
    cmd = parse(V2, "--compatibility=false", "up", "--build=false", "-d=true", "--no-deps=1")
    assert cmd.globals == (("--compatibility", "false"),)
    assert cmd.sub_options == (("--build", "false"), ("--detach", None), ("--no-deps", None))
    assert cmd.image_options == (("--no-deps", None, ImageEffect.SCOPE),)  # --build=false: none
    assert refused(V2, "up", "--build=maybe").problem is ArgvProblem.BAD_VALUE


def test_v2_combined_short_flags_and_attached_values() -> None:
    cmd = parse(V2, "-pproj", "-fa.yml", "run", "-dT", "-eA=1", "-uroot", "web", "sh")
    assert cmd.globals == (("--project-name", "proj"), ("--file", "a.yml"))
    assert cmd.sub_options == (("--detach", None), ("--no-tty", None), ("--env", "A=1"),
                               ("--user", "root"))
    assert cmd.services == ("web",) and cmd.command == ("sh",)


def test_v1_combined_short_flags_and_attached_values() -> None:
    cmd = parse(V1, "-pproj", "-fa.yml", "run", "-dT", "-eA=1", "-uroot", "web", "sh")
    assert cmd.globals == (("--project-name", "proj"), ("--file", "a.yml"))
    assert cmd.sub_options == (("--detach", None), ("-T", None), ("-e", "A=1"),
                               ("--user", "root"))


def test_v1_value_is_the_next_word_even_when_it_looks_like_an_option() -> None:
    cmd = parse(V1, "-f", "--verbose", "-p", "-x", "ps")
    assert cmd.files == ("--verbose",) and cmd.project_name == "-x"
    assert parse(V1, "up", "-t", "-d").sub_options == (("--timeout", "-d"),)


@pytest.mark.parametrize("argv", [["-p", "--file", "ps", "up"], ["--file", "-p", "ps", "up"],
                                  ["-f", "--", "ps", "up"], ["--env-file", "-h", "ps"]])
def test_v2_value_that_cobra_traversal_would_take_for_an_option_is_refused(
        argv: list[str]) -> None:
    # cobra's Traverse reads `-p --file ps up` as -p, --file ps, subcommand up: it runs `up`.
    error = refused(V2, *argv)
    assert error.problem is ArgvProblem.AMBIGUOUS_FORM and "=" in error.hint


def test_v2_values_that_look_like_options_are_fine_in_equals_form_or_after_the_subcommand(
        ) -> None:
    cmd = parse(V2, "--file=--verbose", "-p", "-xy", "up", "-t", "-d")
    assert cmd.files == ("--verbose",) and cmd.project_name == "-xy"
    assert cmd.sub_options == (("--timeout", "-d"),)


@pytest.mark.parametrize("flavour", BOTH)
def test_the_model_options_are_exposed(flavour: Flavour) -> None:
    cmd = parse(flavour, "-f", "a.yml", "--file=b.yml", "-p", "proj", "--profile", "gpu",
                "--profile=db", "--env-file", ".env.test", "--project-directory", "dir",
                "--verbose", "up")
    assert cmd.files == ("a.yml", "b.yml") and cmd.project_name == "proj"
    assert cmd.profiles == ("gpu", "db") and cmd.env_files == (".env.test",)
    assert cmd.project_directory == "dir"


# --- the attacks --------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "meant"), [
    (["--fi", "evil.yml", "up"], "--file"),
    (["--fil=evil.yml", "up"], "--file"),
    (["--project-dir", "/evil", "up"], "--project-directory"),
    (["--env-f", "evil.env", "up"], "--env-file"),
    (["--project-n", "x", "up"], "--project-name"),
    (["--prof", "evil", "up"], "--profile"),
    (["--compat", "up"], "--compatibility"),
    (["up", "--bu"], "--build"),
    (["up", "--sc", "web=9"], "--scale"),
    (["run", "--entry", "sh", "web"], "--entrypoint"),
])
def test_v1_abbreviations_are_refused_naming_what_compose_would_read(
        argv: list[str], meant: str) -> None:
    error = refused(V1, *argv)
    assert error.problem is ArgvProblem.ABBREVIATED_OPTION
    assert meant in error.why and "spell" in error.hint
    assert isinstance(error, UsageError) and error.line().startswith("safe-docker: ")


@pytest.mark.parametrize("argv", [["--project-", "x", "up"], ["--h"], ["--tlsc", "x", "ps"],
                                  ["--ver", "ps"], ["up", "--no-", "web"]])
def test_v1_ambiguous_abbreviations_are_refused(argv: list[str]) -> None:
    error = refused(V1, *argv)
    assert error.problem is ArgvProblem.ABBREVIATED_OPTION and "ambiguous" in error.why


@pytest.mark.parametrize("argv", [["--fi", "evil.yml", "up"], ["--project-dir", "x", "up"],
                                  ["--env-f", "x", "up"], ["up", "--bu"]])
def test_v2_has_no_abbreviations(argv: list[str]) -> None:
    assert refused(V2, *argv).problem is ArgvProblem.UNKNOWN_OPTION


@pytest.mark.parametrize("argv", [["-f=decoy.yml", "up"], ["-fevil.yml", "-p=x", "up"],
                                  ["up", "-t=3"], ["run", "-e=A=1", "web"],
                                  ["-H=tcp://x", "ps"]])
def test_v1_short_option_with_equals_is_refused(argv: list[str]) -> None:
    error = refused(V1, *argv)
    assert error.problem is ArgvProblem.AMBIGUOUS_FORM and "'=" in error.why


def test_v2_short_option_with_equals_is_the_value_after_it() -> None:
    assert parse(V2, "-f=decoy.yml", "up").files == ("decoy.yml",)
    assert refused(V2, "-f=", "up").problem is ArgvProblem.AMBIGUOUS_FORM


def test_v2_combined_shorts_taking_the_next_word_before_the_subcommand_are_refused() -> None:
    # cobra's traversal does not see that -f takes `x`: compose would print its version.
    assert refused(V2, "-vf", "x", "up").problem is ArgvProblem.AMBIGUOUS_FORM
    assert parse(V2, "-vfx", "up").files == ("x",)


UNKNOWN_OPTIONS = [["--bogus", "up"], ["up", "--bogus"], ["up", "-x"], ["up", "-f", "x.yml"],
                   ["run", "--privileged", "web"], ["---file", "x", "up"]]


@pytest.mark.parametrize(("flavour", "argv"), [
    *((f, argv) for f in BOTH for argv in UNKNOWN_OPTIONS),
    (V2, ["-H", "tcp://x", "up"]), (V2, ["--context", "x", "up"]), (V2, ["--tls", "up"]),
])
def test_unknown_options_are_refused(flavour: Flavour, argv: list[str]) -> None:
    assert refused(flavour, *argv).problem is ArgvProblem.UNKNOWN_OPTION


@pytest.mark.parametrize("flavour", BOTH)
def test_a_global_option_after_the_subcommand_gets_a_hint(flavour: Flavour) -> None:
    error = refused(flavour, "up", "-p", "x")
    assert error.problem is ArgvProblem.UNKNOWN_OPTION and "before the subcommand" in error.hint


@pytest.mark.parametrize(("flavour", "argv"), [
    (V1, ["bogus"]), (V2, ["bogus"]), (V1, ["Up"]), (V2, ["UP"]), (V1, ["exec_command"]),
    (V1, ["exec-command", "web", "sh"]), (V2, ["convert"]), (V1, ["watch"]), (V1, ["cp"]),
    (V2, ["-"]), (V1, ["-"]), (V2, [""]), (V1, ["--", "-f", "x", "up"]), (V2, ["completion"]),
    (V2, ["__complete", "up"]), (V1, ["project_dir"]),
])
def test_unknown_subcommands_are_refused(flavour: Flavour, argv: list[str]) -> None:
    error = refused(flavour, *argv)
    assert error.problem is ArgvProblem.UNKNOWN_SUBCOMMAND and "known:" in error.hint


@pytest.mark.parametrize("argv", [["bridge", "convert"], ["bridge", "transformations", "ls"],
                                  ["alpha", "watch"], ["alpha", "dry-run", "--", "up"],
                                  ["alpha", "scale", "web=2"]])
def test_v2_subcommands_that_run_unverified_images_are_refused(argv: list[str]) -> None:
    assert refused(V2, *argv).problem is ArgvProblem.UNSUPPORTED_SUBCOMMAND


@pytest.mark.parametrize("flavour", BOTH)
def test_scale_is_verified_and_names_its_services(flavour: Flavour) -> None:
    cmd = parse(flavour, "scale", "web=2", "db=+3")
    assert cmd.kind is SubcommandKind.VERIFY and cmd.needs_verification
    assert cmd.services == ("web", "db") and cmd.scale == (("web", 2), ("db", 3))


@pytest.mark.parametrize("flavour", BOTH)
@pytest.mark.parametrize("spec", ["web", "web=", "=2", "web=two", "web=2.5", "web=٣"])
def test_scale_specifiers_that_are_not_service_equals_number_are_refused(
        flavour: Flavour, spec: str) -> None:
    assert refused(flavour, "scale", spec).problem is ArgvProblem.BAD_VALUE
    assert refused(flavour, "up", "--scale", spec).problem is ArgvProblem.BAD_VALUE


@pytest.mark.parametrize("flavour", BOTH)
def test_scale_naming_a_service_twice_is_refused(flavour: Flavour) -> None:
    assert refused(flavour, "scale", "web=2", "web=3").problem is ArgvProblem.REPEATED_OPTION


def test_v2_scale_needs_a_service() -> None:
    assert refused(V2, "scale").problem is ArgvProblem.MISSING_VALUE


@pytest.mark.parametrize("flavour", BOTH)
def test_up_scale_is_reported(flavour: Flavour) -> None:
    cmd = parse(flavour, "up", "--scale", "web=3", "--scale=db=0")
    assert cmd.scale == (("web", 3), ("db", 0)) and cmd.services == ()
    assert [e for _, _, e in cmd.image_options] == [ImageEffect.SCOPE, ImageEffect.SCOPE]


def test_v2_watch_is_verified() -> None:
    cmd = parse(V2, "watch", "--no-up", "web")
    assert cmd.kind is SubcommandKind.VERIFY and cmd.services == ("web",)
    assert cmd.image_options == (("--no-up", None, ImageEffect.SCOPE),)
    assert parse(V2, "up", "--watch").image_options == (("--watch", None, ImageEffect.WATCH),)


# --- `--` and operands --------------------------------------------------------------------


def test_v1_reads_dash_dash_before_the_subcommand() -> None:
    cmd = parse(V1, "-f", "a.yml", "--", "up", "-d")
    assert cmd.subcommand == "up" and cmd.sub_options == (("--detach", None),)
    assert parse(V1, "--").help


def test_v2_refuses_dash_dash_before_the_subcommand() -> None:
    assert refused(V2, "-f", "a.yml", "--", "up").problem is ArgvProblem.MISPLACED


@pytest.mark.parametrize("flavour", BOTH)
def test_operands_after_dash_dash_are_services(flavour: Flavour) -> None:
    cmd = parse(flavour, "up", "-d", "--", "-x", "web")
    assert cmd.services == ("-x", "web") and cmd.sub_options == (("--detach", None),)


@pytest.mark.parametrize("sub", ["create", "start"])
def test_v1_dash_dash_where_its_usage_has_none_is_refused(sub: str) -> None:
    assert refused(V1, sub, "--", "web").problem is ArgvProblem.MISPLACED


def test_v1_reads_options_only_before_the_first_service() -> None:
    error = refused(V1, "up", "web", "-d")
    assert error.problem is ArgvProblem.MISPLACED and "options first" in error.hint
    assert refused(V1, "up", "web", "--", "db").problem is ArgvProblem.MISPLACED


def test_v2_reads_options_after_services_except_for_run() -> None:
    cmd = parse(V2, "up", "web", "-d", "db", "--build")
    assert cmd.services == ("web", "db")
    assert cmd.sub_options == (("--detach", None), ("--build", None))
    run = parse(V2, "run", "--rm", "web", "ls", "-d", "--build")
    assert run.services == ("web",) and run.command == ("ls", "-d", "--build")
    assert run.sub_options == (("--rm", None),) and not run.image_options


@pytest.mark.parametrize("flavour", BOTH)
def test_run_keeps_its_command_as_written(flavour: Flavour) -> None:
    cmd = parse(flavour, "run", "--", "web", "--", "ls", "--help")
    assert cmd.services == ("web",) and cmd.command == ("--", "ls", "--help")
    assert not cmd.help


@pytest.mark.parametrize("flavour", BOTH)
def test_run_needs_a_service(flavour: Flavour) -> None:
    assert refused(flavour, "run", "--rm").problem is ArgvProblem.MISSING_VALUE


# --- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", BOTH)
@pytest.mark.parametrize("argv", [[], ["-h"], ["--help"], ["-f", "a.yml"], ["help", "up"],
                                  ["-h", "up"], ["up", "--help"], ["up", "-h"],
                                  ["up", "-dh"], ["run", "-h", "web"], ["scale", "--help"]])
def test_help_forms_run_nothing(flavour: Flavour, argv: list[str]) -> None:
    cmd = parse(flavour, *argv)
    assert cmd.help and not cmd.needs_verification


def test_v1_version_option_prints_and_runs_nothing() -> None:
    assert parse(V1, "-v", "up").help and parse(V1, "--version", "up").help


def test_v2_version_option_is_ignored_when_a_subcommand_follows() -> None:
    assert parse(V2, "-v", "up").needs_verification
    assert parse(V2, "-v").help  # no subcommand: compose prints its version


def test_v2_help_false_is_not_help() -> None:
    assert parse(V2, "--help=false", "up").needs_verification


@pytest.mark.parametrize("argv", [["up", "--help", "--help=false"], ["up", "-h", "-h=0"],
                                  ["--help", "up", "--help=false"], ["-h", "--help=f", "up"]])
def test_v2_help_turned_off_again_is_not_help(argv: list[str]) -> None:
    """pflag keeps a flag's last value (one flag set for the plugin root and the
    subcommand): `up --help --help=false` starts the project."""
    assert parse(V2, *argv).needs_verification


def test_v2_help_after_a_service_is_help() -> None:
    assert parse(V2, "up", "web", "--help").help


def test_v1_help_after_a_service_would_be_a_service_name() -> None:
    assert refused(V1, "up", "web", "--help").problem is ArgvProblem.MISPLACED


def test_v1_help_with_a_value_is_refused() -> None:
    assert refused(V1, "--help=yes").problem is ArgvProblem.BAD_VALUE


# --- repeats and conflicts ------------------------------------------------------------------


@pytest.mark.parametrize("flavour", BOTH)
@pytest.mark.parametrize("argv", [["-p", "a", "-p", "b", "up"], ["up", "-d", "--detach"],
                                  ["run", "--name", "a", "--name", "b", "web"],
                                  ["--project-directory", "a", "--project-directory=b", "ps"]])
def test_a_repeated_single_option_is_refused(flavour: Flavour, argv: list[str]) -> None:
    assert refused(flavour, *argv).problem is ArgvProblem.REPEATED_OPTION


def test_v2_aliases_count_as_the_same_option() -> None:
    assert refused(V2, "--workdir", "a", "--project-directory", "b", "up").problem is \
        ArgvProblem.REPEATED_OPTION
    assert refused(V2, "up", "-y", "--y").problem is ArgvProblem.REPEATED_OPTION
    assert parse(V2, "--workdir", "a", "up").project_directory == "a"


@pytest.mark.parametrize("flavour", BOTH)
def test_list_options_accumulate(flavour: Flavour) -> None:
    cmd = parse(flavour, "-f", "a", "-fb", "--profile", "x", "--profile=y", "up")
    assert cmd.files == ("a", "b") and cmd.profiles == ("x", "y")


def test_v2_env_files_accumulate_v1_env_file_does_not() -> None:
    assert parse(V2, "--env-file", "a", "--env-file", "b", "up").env_files == ("a", "b")
    assert refused(V1, "--env-file", "a", "--env-file", "b", "up").problem is \
        ArgvProblem.REPEATED_OPTION


@pytest.mark.parametrize("flavour", BOTH)
@pytest.mark.parametrize("sub", ["up", "create"])
def test_build_and_no_build_together_are_refused(flavour: Flavour, sub: str) -> None:
    assert refused(flavour, sub, "--build", "--no-build").problem is \
        ArgvProblem.CONFLICTING_OPTIONS


def test_v2_build_false_does_not_conflict_with_no_build() -> None:
    cmd = parse(V2, "up", "--build=false", "--no-build")
    assert cmd.image_options == (("--no-build", None, ImageEffect.NO_BUILD),)


@pytest.mark.parametrize(("flavour", "argv"), [(V1, ["-f"]), (V2, ["-f"]), (V1, ["--file"]),
                                               (V2, ["up", "--pull"]), (V1, ["run", "-e"])])
def test_an_option_without_its_value_is_refused(flavour: Flavour, argv: list[str]) -> None:
    assert refused(flavour, *argv).problem is ArgvProblem.MISSING_VALUE


# --- classification -------------------------------------------------------------------------

KINDS = {
    SubcommandKind.VERIFY: {V1: {"up", "create", "run", "pull", "scale", "build"},
                            V2: {"up", "create", "run", "pull", "scale", "watch", "build"}},
    SubcommandKind.MAY_START: {V1: {"start", "restart"}, V2: {"start", "restart"}},
    SubcommandKind.PASS: {
        V1: {"config", "down", "events", "exec", "help", "images", "kill", "logs", "pause",
             "port", "ps", "push", "rm", "stop", "top", "unpause", "version"},
        V2: {"attach", "commit", "config", "cp", "down", "events", "exec", "export", "help",
             "images", "kill", "logs", "ls", "pause", "port", "ps", "publish", "push", "rm",
             "stats", "stop", "top", "unpause", "version", "volumes", "wait", "alpha"}},
}


@pytest.mark.parametrize("flavour", BOTH)
def test_every_subcommand_is_classified(flavour: Flavour) -> None:
    subs = V1_SUBCOMMANDS if flavour is V1 else V2_SUBCOMMANDS
    assert {name: spec.kind for name, spec in subs.items()} == {
        name: kind for kind, by in KINDS.items() for name in by[flavour]}


@pytest.mark.parametrize(("flavour", "argv"), [
    (V2, ["exec", "-it", "web", "sh"]), (V1, ["exec", "-T", "web", "sh"]),
    (V2, ["cp", "web:/etc/passwd", "."]), (V2, ["logs", "-f", "--tail=5", "web"]),
    (V1, ["down", "--rmi", "all", "-v"]), (V2, ["alpha", "viz", "--image"]),
    (V2, ["config", "--resolve-image-digests"]), (V2, ["ls", "-a"]), (V1, ["ps", "-q"]),
])
def test_pass_subcommands_keep_their_arguments_unread(flavour: Flavour,
                                                      argv: list[str]) -> None:
    cmd = parse(flavour, "-p", "proj", *argv)
    assert cmd.kind is SubcommandKind.PASS and not cmd.needs_verification
    assert cmd.sub_args == tuple(argv[1:]) and cmd.sub_options == ()
    assert canonical_argv(cmd) == ["--project-name=proj", *argv]


@pytest.mark.parametrize("flavour", BOTH)
def test_start_and_restart_may_start_and_need_verification(flavour: Flavour) -> None:
    for sub in ("start", "restart"):
        cmd = parse(flavour, sub, "web")
        assert cmd.kind is SubcommandKind.MAY_START and cmd.needs_verification


@pytest.mark.parametrize(("flavour", "argv", "effects"), [
    (V2, ["up", "--build", "--pull", "always", "--no-deps", "-d"],
     [("--build", None, ImageEffect.BUILD), ("--pull", "always", ImageEffect.PULL),
      ("--no-deps", None, ImageEffect.SCOPE)]),
    (V2, ["run", "--entrypoint", "sh", "--pull=never", "web"],
     [("--pull", "never", ImageEffect.PULL)]),
    (V2, ["pull", "--policy", "missing", "--ignore-buildable", "--include-deps"],
     [("--policy", "missing", ImageEffect.PULL), ("--ignore-buildable", None, ImageEffect.SCOPE),
      ("--include-deps", None, ImageEffect.SCOPE)]),
    (V2, ["build", "--pull", "--with-dependencies", "--push"],
     [("--pull", None, ImageEffect.PULL), ("--with-dependencies", None, ImageEffect.SCOPE)]),
    (V1, ["up", "--no-build", "--no-deps"],
     [("--no-build", None, ImageEffect.NO_BUILD), ("--no-deps", None, ImageEffect.SCOPE)]),
    (V1, ["run", "--entrypoint", "sh", "--no-deps", "web"],
     [("--no-deps", None, ImageEffect.SCOPE)]),
    (V1, ["pull", "--ignore-pull-failures"], [("--ignore-pull-failures", None, ImageEffect.PULL)]),
])
def test_options_that_change_the_images_used_are_reported(
        flavour: Flavour, argv: list[str], effects: list[tuple[str, str | None, ImageEffect]]
        ) -> None:
    assert list(parse(flavour, *argv).image_options) == effects


# --- back to a command line -----------------------------------------------------------------


def test_canonical_argv_spells_everything_out_and_replaces_the_files() -> None:
    cmd = parse(V2, "-fa.yml", "-p", "proj", "--workdir", "d", "-f", "b.yml", "up", "-dV",
                "--build=false", "--scale", "web=2", "web", "db")
    assert canonical_argv(cmd) == [
        "--file=a.yml", "--project-name=proj", "--project-directory=d", "--file=b.yml", "up",
        "--detach", "--renew-anon-volumes", "--build=false", "--scale=web=2", "--", "web", "db"]
    assert canonical_argv(cmd, files=["/state/resolved.yml"])[:3] == [
        "--file=/state/resolved.yml", "--project-name=proj", "--project-directory=d"]
    assert "--file=a.yml" not in canonical_argv(cmd, files=["/state/resolved.yml"])


def test_canonical_argv_v1_keeps_short_only_options_and_usage_without_dash_dash() -> None:
    cmd = parse(V1, "run", "-T", "-e", "A=1", "-v", "x:/x", "web", "ls")
    assert canonical_argv(cmd) == ["run", "-T", "-e", "A=1", "--volume=x:/x", "--", "web", "ls"]
    assert canonical_argv(parse(V1, "create", "web")) == ["create", "web"]
    assert canonical_argv(parse(V1, "scale", "web=2")) == ["scale", "web=2"]


@pytest.mark.parametrize("flavour", BOTH)
def test_canonical_argv_reads_back_the_same(flavour: Flavour) -> None:
    for argv in (["-p", "x", "--profile", "a", "up", "-d", "--scale", "w=1", "--", "-w"],
                 ["-fa", "run", "--rm", "-l", "k=v", "web", "sh", "-c", "echo"],
                 ["scale", "web=2"], ["pull", "-q", "web"], ["start"], ["up", "--help"]):
        cmd = parse(flavour, *argv)
        assert parse_compose_argv(canonical_argv(cmd), flavour) == cmd


@pytest.mark.parametrize(("flavour", "tail"), [(V2, ["config", "--format=json"]),
                                               (V1, ["config"])])
def test_config_argv_carries_only_what_shapes_the_model(flavour: Flavour,
                                                        tail: list[str]) -> None:
    cmd = parse(flavour, "-f", "a.yml", "-p", "proj", "--project-directory", "d",
                "--env-file", "e", "--profile", "gpu", "--compatibility", "--ansi", "never",
                "--verbose", "up", "-d", "web")
    assert config_argv(cmd, files=["/r.yml"]) == [
        "--file=/r.yml", "--project-name=proj", "--project-directory=d", "--env-file=e",
        "--profile=gpu", "--compatibility", *tail]
    assert config_argv(cmd)[0] == "--file=a.yml"
