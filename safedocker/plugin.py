"""``docker-safe``: safe-docker as a docker CLI plugin (``docker safe verify IMAGE``).

The docker CLI finds ``docker-safe`` in ``~/.docker/cli-plugins`` (or
``$DOCKER_CONFIG/cli-plugins``), asks it for metadata with ``docker-cli-plugin-metadata``,
and runs ``docker safe ARGS…`` as ``docker-safe [GLOBAL FLAGS] safe ARGS…``. Only
safe-docker's own commands are served here: a plugin cannot replace ``docker run`` (the
CLI runs its built-in commands before looking at plugins), so intercepting pull/run/create
stays the job of the shell function or the ``docker`` shim.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from safedocker import __version__
from safedocker._docker.route import OWN_COMMANDS
from safedocker._internal import environment
from safedocker.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

PLUGIN_NAME = "safe"
METADATA = {
    "SchemaVersion": "0.1.0",
    "Vendor": "safe-docker",
    "Version": __version__,
    "ShortDescription": "Verify image signatures (safe-docker)",
}
INTERCEPTED = frozenset({"run", "create", "pull", "container", "image"})

# docker's global flags that take a value, and the environment variable each one sets for
# safe-docker's own commands (the plugin is handed the CLI's command line, flags included).
_VALUE_FLAGS = {
    "--host": "DOCKER_HOST", "-H": "DOCKER_HOST",
    "--context": "DOCKER_CONTEXT", "-c": "DOCKER_CONTEXT",
    "--config": "DOCKER_CONFIG",
    "--log-level": "", "-l": "",
    "--tlscacert": "", "--tlscert": "", "--tlskey": "",
}
_BOOL_FLAGS = frozenset({"--debug", "-D", "--tls", "--tlsverify", "--help", "-h",
                         "--version", "-v"})


def _fail(what: str, why: str, hint: str) -> int:
    sys.stderr.write(UsageError(what, why=why, hint=hint).line() + "\n")
    return int(UsageError.exit_code)


def split_plugin_argv(argv: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    """``[GLOBAL FLAGS] safe ARGS…`` → (environment from the flags, ARGS); None if not so."""
    env: dict[str, str] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        name, eq, value = token.partition("=")
        if token == PLUGIN_NAME:
            return env, list(argv[index + 1:])
        if name in _BOOL_FLAGS:
            index += 1
            continue
        if name in _VALUE_FLAGS and not eq and index + 1 < len(argv):
            value, index = argv[index + 1], index + 2
        elif name in _VALUE_FLAGS and eq:
            index += 1
        elif token[:2] in ("-H", "-c", "-l") and len(token) > 2:
            name, value, index = token[:2], token[2:].removeprefix("="), index + 1
        else:
            return None
        if _VALUE_FLAGS[name]:
            env[_VALUE_FLAGS[name]] = value
    return None


def _complete(args: Sequence[str]) -> int:
    """cobra's ``__complete`` protocol: candidates, then ``:4`` (no file completion)."""
    words = list(args[1:] if args[:1] == [PLUGIN_NAME] else args)
    if len(words) <= 1:
        prefix = words[0] if words else ""
        for command in sorted(OWN_COMMANDS):
            if command.startswith(prefix):
                sys.stdout.write(command + "\n")
        sys.stdout.write(":4\n")
    else:
        sys.stdout.write(":0\n")
    return 0


def run(argv: Sequence[str]) -> int:
    """Everything but the hand-off to safe-docker's CLI; returns an exit status."""
    if list(argv[:1]) == ["docker-cli-plugin-metadata"]:
        sys.stdout.write(json.dumps(METADATA) + "\n")
        return 0
    if list(argv[:1]) == ["__complete"]:
        return _complete(argv[1:])
    split = split_plugin_argv(argv)
    if split is None:
        return _fail("docker-safe is a docker CLI plugin", why="not called as `docker safe …`",
                     hint="run `docker safe COMMAND`, or use safe-docker directly")
    env, args = split
    for key, value in env.items():
        os.environ[key] = value
    original = os.environ.get("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", "")
    if original and os.path.isabs(original) and not environment.real_docker():
        os.environ[environment.REAL_DOCKER] = original  # the docker CLI that called us
    word = next((a for a in args if a not in ("-v", "-vv", "-vvv", "--verbose")), None)
    if word is None or word in ("--help", "-h", "help", "--version"):
        _hand_off("help" if word != "--version" else "own", args if word else [])
    if word in INTERCEPTED:
        return _fail(
            f"plugins cannot replace docker {word}",
            why="docker runs its built-in commands before it looks at any plugin",
            hint="to verify images on pull/run/create use "
            "`eval \"$(safe-docker shell-init bash)\"` (zsh, fish too), "
            f"`alias docker=safe-docker`, or `safe-docker {word} …`",
        )
    if word not in OWN_COMMANDS:
        return _fail(f"unknown command {word!r}", why="docker safe runs safe-docker's own commands",
                     hint=", ".join(sorted(OWN_COMMANDS)))
    _hand_off("own", args)
    return 0  # pragma: no cover - _hand_off never returns


def _hand_off(route: str, args: list[str]) -> NoReturn:
    from safedocker.cli import main as cli_main  # heavy imports start here

    cli_main(route, args)


def main() -> NoReturn:
    """Console script ``docker-safe``."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
