"""``docker stack deploy`` (and its alias ``stack up``): the swarm stack runs exactly the
model that was verified, pinned.

``plan_stack(argv)`` takes docker's whole command line (docker's global options, then
``stack deploy …``). The order, as for compose (gate/compose.py):

1. ``stack deploy``'s options are read with an allowlist as docker (cobra/pflag, docker CLI
   25 to 28: ``cli/command/stack/deploy.go``) reads them; anything else is refused in
   enforce mode (exit 2). ``-c -`` (a file from standard input) and a compose file that is
   not a regular file are refused: the files are read once, by ``stack config``.
2. The model is taken ONCE from ``docker stack config -c FILE…`` (docker CLI 25 or later;
   an older CLI is refused in enforce mode), read bounded (16 MiB, 300 s) and alias-safe.
3. Every service image goes through the gate (``admit_all``: one refusal refuses the whole
   deploy before anything is created).
4. docker deploys ``-c`` ONE file of ours, written fresh into a private directory
   (mkdtemp under ``<state>/compose``, 0700; the file O_EXCL), with every image pinned
   (``repo@sha256:…``) and every ``$`` escaped so that nothing interpolates it again. The
   directory is removed when docker exits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker.errors import (
    ConfigError,
    DockerNotFound,
    Refused,
    UsageError,
    reason_of,
)
from safedocker.gate.compose_model import (
    MAX_CONFIG_OUTPUT,
    Source,
    Workspace,
    read_model,
    refuse_alias_bomb,
    refuse_special_file,
    render,
)
from safedocker.gate.handoff import Plan
from safedocker.policy.model import Mode

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.gate.decide import Gate
    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths

CONFIG_TIMEOUT = 300.0
RESOLVED_FILE = "stack.yml"
STACK_WORDS = (("stack", "deploy"), ("stack", "up"))
# docker stack deploy's flags (docker CLI 25-28), long name → (short, takes a value).
_FLAGS: Mapping[str, tuple[str | None, bool]] = {
    "--compose-file": ("-c", True),
    "--prune": (None, False),
    "--resolve-image": (None, True),
    "--with-registry-auth": (None, False),
    "--detach": ("-d", False),
    "--quiet": ("-q", False),
    "--help": ("-h", False),
}
_SHORTS = {short: long for long, (short, _) in _FLAGS.items() if short}
_RESOLVE_IMAGE = frozenset({"always", "changed", "never"})
_BOOLS = frozenset({"true", "false"})
_UNKNOWN_COMMAND = ("unknown command", "is not a docker command", "unknown flag")


class StackArgvError(UsageError):
    """A ``stack deploy`` command line safe-docker does not accept."""


@dataclass(frozen=True)
class StackCommand:
    """``docker [GLOBALS] stack deploy|up [OPTIONS] STACK``, read as docker reads it."""

    globals: tuple[str, ...]  # docker's global options, as the user wrote them
    words: tuple[str, ...]  # ("stack", "deploy") or ("stack", "up")
    options: tuple[tuple[str, str | None], ...]  # canonical long names, in order
    stack: str | None
    help: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(v for n, v in self.options if n == "--compose-file" and v is not None)

    def argv(self, *, file: str | None = None) -> list[str]:
        """The command line in canonical spellings; ``file`` replaces every compose file."""
        out = [*self.globals, *self.words]
        if file is not None:
            out.append(f"--compose-file={file}")
        for name, value in self.options:
            if file is not None and name == "--compose-file":
                continue
            out.append(name if value is None else f"{name}={value}")
        return [*out, *([] if self.stack is None else ["--", self.stack])]


def _error(what: str, *, why: str = "", hint: str = "") -> StackArgvError:
    return StackArgvError(what, why=why, hint=hint or "see `docker stack deploy --help`")


def _option(word: str, tokens: Sequence[str], index: int) -> tuple[str, str | None, int]:
    """(long name, value, next index) of the option at ``tokens[index]``."""
    if word.startswith("--"):
        name, eq, value = word.partition("=")
        if name not in _FLAGS:
            raise _error(f"stack deploy option {name!r} is not known to safe-docker",
                         why="safe-docker accepts only the options it can verify")
        takes_value = _FLAGS[name][1]
    else:
        if len(word) > 2 and word[2] == "=":
            raise _error(f"stack deploy option {word!r} is ambiguous",
                         why="docker would read the value after the =",
                         hint=f"write {word[:2]} VALUE or the long option with =")
        name = _SHORTS.get(word[:2], "")
        if not name:
            raise _error(f"stack deploy option {word[:2]!r} is not known to safe-docker",
                         why="safe-docker accepts only the options it can verify")
        takes_value = _FLAGS[name][1]
        if len(word) > 2 and not takes_value:
            raise _error(f"stack deploy options {word!r} are combined",
                         hint="give each flag on its own")
        eq, value = ("=", word[2:]) if len(word) > 2 else ("", "")
    if takes_value and not eq:
        if index + 1 >= len(tokens):
            raise _error(f"stack deploy option {word} needs a value")
        return name, tokens[index + 1], index + 2
    if not takes_value:
        if eq and value not in _BOOLS:
            raise _error(f"stack deploy flag {word!r} takes true or false")
        return name, (value if eq and value == "false" else None), index + 1
    return name, value, index + 1


def parse_stack_argv(argv: Sequence[str]) -> StackCommand:
    """Read ``docker [GLOBALS] stack deploy|up …``; StackArgvError (exit 2) for anything
    not on the allowlist."""
    from safedocker._docker.argv import split_globals

    index = split_globals(argv).command_index
    words = tuple(argv[index:index + 2])
    if words not in STACK_WORDS:
        raise UsageError("not a stack deploy command")
    tokens = list(argv[index + 2:])
    options: list[tuple[str, str | None]] = []
    operands: list[str] = []
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word == "--":
            operands += tokens[i + 1:]
            break
        if word.startswith("-") and word != "-":
            name, value, i = _option(word, tokens, i)
            options.append((name, value))
            continue
        operands.append(word)  # pflag: options may follow the STACK
        i += 1
    seen = [n for n, _ in options if n not in ("--compose-file",)]
    repeated = {n for n in seen if seen.count(n) > 1}
    if repeated:
        raise _error(f"stack deploy option {sorted(repeated)[0]} is given twice",
                     hint="give it once")
    for name, value in options:
        if name == "--resolve-image" and value not in _RESOLVE_IMAGE:
            raise _error(f"--resolve-image {value!r} is not always, changed or never")
    help_ = any(n == "--help" and v is None for n, v in options)
    if len(operands) > 1 or (not operands and not help_):
        raise _error("stack deploy takes exactly one STACK name",
                     hint="docker stack deploy -c FILE STACK")
    return StackCommand(tuple(argv[:index]), words, tuple(options),
                        operands[0] if operands else None, help_)


def load_stack_model(docker: str, cmd: StackCommand) -> dict[str, Any]:
    """``docker stack config`` for the command's files: the model docker would deploy."""
    from safedocker._internal.processes import OutputTooLarge, run_bounded

    for name in cmd.files:
        if name == "-":
            raise UsageError("stack file from standard input is not supported",
                             why="the stack is read twice: once to verify, once to deploy",
                             hint="write it to a file and pass -c FILE")
        refuse_special_file(name, what="stack file", hint="write the stack to a file")
        refuse_alias_bomb(name)
    argv = [docker, *cmd.globals, "stack", "config",
            *(f"--compose-file={f}" for f in cmd.files)]
    try:
        with open(os.devnull, "rb") as nothing:
            proc = run_bounded(argv, what="docker stack config", timeout=CONFIG_TIMEOUT,
                               max_stdout=MAX_CONFIG_OUTPUT, stdin=nothing)
    except OutputTooLarge as e:
        raise ConfigError("docker stack config output is too large", why=e.why) from e
    except OSError as e:
        raise DockerNotFound("cannot run docker stack config", why=reason_of(e)) from e
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        last = detail[-1] if detail else f"docker stack config exited {proc.returncode}"
        if any(marker in line for marker in _UNKNOWN_COMMAND for line in detail):
            raise Refused("refused stack deploy: the stack cannot be verified",
                          why="this docker CLI has no `docker stack config` (docker 25 or "
                          "later prints the resolved stack)",
                          hint="upgrade the docker CLI to 25 or later")
        raise ConfigError("docker cannot read the stack", why=last,
                          hint="run `docker stack config -c FILE` to see the problem")
    return read_model(proc.stdout, Source.STACK)


def pin_stack(model: Mapping[str, Any], cmd: StackCommand, gate: Gate,
              argv: Sequence[str]) -> dict[str, Any]:
    """The model with every service image decided by the gate (all or nothing) and
    replaced by what the gate hands docker."""
    from safedocker.gate.decide import ImageRequest, Origin

    services: Mapping[str, Any] = model.get("services") or {}
    requests: list[ImageRequest] = []
    names: dict[str, str] = {}
    for name, service in sorted(services.items()):
        image = service.get("image") if isinstance(service, dict) else None
        if not isinstance(image, str) or not image:
            continue  # docker refuses a service without an image
        label = f"service {name!r}"
        names[label] = name
        requests.append(ImageRequest.parse(image, command=argv, origin=Origin.SERVICE,
                                           label=label))
    out = dict(model)
    pinned = {name: dict(service) for name, service in services.items()}
    for admission in gate.admit_all(requests):
        pinned[names[admission.request.label]]["image"] = admission.target
    out["services"] = pinned
    return out


def plan_stack(argv: Sequence[str], *, config: Config | None = None,
               where: Paths | None = None, gate: Gate | None = None) -> Plan:
    """The plan for ``docker [GLOBALS] stack deploy|up …``; raises
    :class:`~safedocker.errors.SafeDockerError` to refuse."""
    from safedocker._docker.binary import real_docker
    from safedocker.policy.config import load_config
    from safedocker.policy.paths import paths

    argv = tuple(argv)
    where = where or paths()
    config = config or load_config(where)
    if config.mode is Mode.OFF:
        return Plan((argv,))
    docker = real_docker()
    if gate is None:
        from safedocker._docker.engine import DockerCLI
        from safedocker.gate.decide import Gate

        gate = Gate.open(DockerCLI(docker), config=config, where=where)
    try:
        cmd = parse_stack_argv(argv)
    except StackArgvError as error:
        gate.refuse(argv, error)  # raised in enforce mode; one warning line in warn mode
        return Plan((argv,))
    if cmd.help:
        return Plan((tuple(cmd.argv()),))
    try:
        model = load_stack_model(docker, cmd)
    except Refused as error:  # no `stack config`: nothing to verify with
        gate.refuse(argv, error)
        return Plan((tuple(cmd.argv()),))
    document = pin_stack(model, cmd, gate, argv)
    workspace = Workspace.create(where.state_dir)
    try:
        ours = workspace.write(RESOLVED_FILE, render(document, Source.STACK))
    except BaseException:
        workspace.remove()
        raise
    return Plan((tuple(cmd.argv(file=str(ours))),), workdir=str(workspace.path))
