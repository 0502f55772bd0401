"""``safe-docker compose ARGS…`` read with an allowlist, exactly as compose itself reads it.

Two flavours, two grammars:

* ``Flavour.V2``, the docker CLI plugin ``docker compose`` (Go, cobra/pflag), modelled on
  docker/compose ``v5.5.0-71-gf7297942`` (main at f72979427): ``cmd/compose/compose.go``
  (root flags, ``TraverseChildren``, ``SetInterspersed(false)``) and the subcommand files
  ``up.go create.go run.go pull.go scale.go watch.go build.go start.go restart.go``;
  cobra v1.10.2 / pflag v1.0.10 rules. No abbreviation of long options; ``--opt=value``,
  ``--opt value``, ``-fVALUE``, ``-f VALUE``, ``-f=VALUE`` and combined short flags
  (``-it``); bool flags take ``=true``/``=false``; string options keep their last value,
  string-array options accumulate; options may follow operands (except for ``run``).
* ``Flavour.V1``, the standalone ``docker-compose`` 1.x (Python, docopt 0.6.2), modelled on
  docker-compose 1.29.2 (``compose/cli/main.py``: ``TopLevelCommand`` and each subcommand's
  docstring; ``compose/cli/docopt_command.py``). docopt reads options only before the first
  operand (``options_first``), accepts a *unique prefix* of a long option (``--fi`` is
  ``--file``), reads ``-f=x`` as the value ``=x``, and refuses a repeated option unless
  its usage line says ``...``.

Decisions (allowlist; anything else raises `ComposeArgvError`, a `UsageError` whose
``problem`` says which rule, for the caller to refuse in enforce mode or warn):

* Only exact spellings are accepted. A prefix of a long option (which 1.x would expand,
  ``--fi evil.yml``, ``--project-dir``, ``--env-f``) is refused as ``ABBREVIATED_OPTION``
  naming what compose would have read.
* 1.x ``-f=decoy.yml`` (docopt: the file ``=decoy.yml``) and v2 ``-f=`` (pflag: the file
  ``=``) are refused as ``AMBIGUOUS_FORM``: nobody writing them means that.
* Before the v2 subcommand, cobra's ``Traverse`` (not pflag) finds the subcommand, with a
  rougher reading: it does not see the value of combined short options (``-vf x up``) and
  takes a separate value that looks like an option (``-p --file ps up``: it runs ``up``)
  for an option. Both are refused as ``AMBIGUOUS_FORM``; ``--opt=value`` is always safe.
* An option that is not repeatable, given twice, is refused (1.x refuses it too; v2 would
  silently keep the last value). Aliases count as the same option (v2 ``--workdir`` is
  ``--project-directory``, ``--y`` is ``--yes``, ``run --volumes`` is ``--volume``).
* ``--build`` with ``--no-build`` is refused (both flavours refuse it; it decides images).
* ``--`` before the subcommand: 1.x reads ``-- up`` as ``up`` (its usage has ``[--]``);
  v2 then finds no subcommand and fails, so it is refused for v2. After a 1.x subcommand
  whose usage has no ``[--]`` (``create``, ``start``, ``scale``) docopt would take ``--``
  as a service name: refused. In 1.x an operand that looks like an option and is not after
  ``--`` (``up web -d``: the *service* ``-d`` to docopt) is refused as ``MISPLACED``.
* Help: ``-h``/``--help`` where compose reads it (1.x: among the options before the first
  operand, also undeclared at subcommand level, as docopt's ``extras`` does; v2: anywhere
  pflag parses flags), no subcommand, the ``help`` subcommand, or 1.x ``-v``/``--version``
  as a global option make ``help`` true: compose prints and exits, runs nothing.

Subcommands (kind; why, from compose's source):

=========  ==  ==  =========  ==============================================================
name       v1  v2  kind       why
=========  ==  ==  =========  ==============================================================
up         y   y   VERIFY     creates (pulling or building missing images) and starts every
                              selected service and its dependencies (v2 runUp→backend.Up;
                              v1 project.up)
create     y   y   VERIFY     creates containers, pulling/building images (backend.Create)
run        y   y   VERIFY     creates and starts a one-off container of SERVICE, and starts
                              its dependencies unless --no-deps
pull       y   y   VERIFY     pulls the service images (backend.Pull; v1 project.pull)
scale      y   y   VERIFY     creates containers to reach N replicas (backend.Scale; v1
                              service.scale)
watch      -   y   VERIFY     runs ``up`` first (unless --no-up), then rebuilds and replaces
                              containers as files change
build      y   y   VERIFY     builds service images, running their base images' build steps;
                              --push pushes them
start      y   y   MAY_START  starts existing containers only (pkg/compose/start.go
                              startService; v1 "Start existing containers"): verify when a
                              container may not come from a verified image
restart    y   y   MAY_START  restarts existing containers (pkg/compose/restart.go)
down stop  y   y   PASS       stop or remove existing containers (rm, kill, pause, unpause too)
ps logs    y   y   PASS       read-only (top, port, events, images, config, version, help;
                              v2 also ls, stats, wait, volumes)
exec       y   y   PASS       runs a process in the service's existing container (none: error)
cp attach  -   y   PASS       act on an existing container
commit     -   y   PASS       an existing container into an image or tar (export too); nothing
                              starts
push       y   y   PASS       pushes images (v2 publish: the project) to a registry
alpha      -   y   PASS       only ``alpha viz|generate|publish``; other (older, experimental)
                              alpha subcommands are refused
bridge     -   y   refused    ``bridge convert`` runs transformer images
                              (docker/compose-bridge-kubernetes, or -t IMAGE) as containers
=========  ==  ==  =========  ==============================================================

The arguments of a PASS subcommand are passed on unread (``sub_args``). For VERIFY and
MAY_START subcommands every option is checked against the subcommand's allowlist, the
services are found, and the options that change which images are used are reported
(`ImageEffect`; e.g. ``run --entrypoint`` changes no image and is not reported).

Run compose with ``canonical_argv`` (PASS subcommands too), never with the user's words: it
writes ``--opt=value``, which docopt, pflag and cobra's traversal all read the same way.
The caller resolves the model with ``config_argv`` (the user's files, project name and
directory, env files, profiles, compatibility) and runs compose on the resolved model with
``canonical_argv(cmd, files=[resolved])``. Compose also reads COMPOSE_FILE,
COMPOSE_PROFILES, COMPOSE_PROJECT_NAME, COMPOSE_ENV_FILES (v2) and .env from the project
directory: run ``config`` in the environment compose will run in.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from safedocker.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class Flavour(enum.Enum):
    V2 = "v2"  # the docker CLI plugin `docker compose` (cobra/pflag)
    V1 = "v1"  # the standalone `docker-compose` 1.x (docopt)


class SubcommandKind(enum.Enum):
    VERIFY = "verify"  # creates, pulls, builds or starts containers from service images
    MAY_START = "may-start"  # starts existing containers: verify when they may be unverified
    PASS = "pass"  # noqa: S105 - reads, stops, removes, or uses an existing container

    @property
    def verifies(self) -> bool:
        match self:
            case SubcommandKind.VERIFY | SubcommandKind.MAY_START:
                return True
            case SubcommandKind.PASS:
                return False


class ImageEffect(enum.Enum):
    """How an option changes which images a subcommand uses."""

    BUILD = "build"  # builds images from the services' build: sections before use
    NO_BUILD = "no-build"  # never builds: a missing image is an error
    PULL = "pull"  # changes whether, when or how images are pulled
    SCOPE = "scope"  # changes which services (so which images) are acted on
    WATCH = "watch"  # keeps rebuilding and replacing containers as files change


class Arity(enum.Enum):
    FLAG = "flag"  # no value (v2: optional =true/=false)
    VALUE = "value"  # one value, given at most once
    LIST = "list"  # one value per occurrence, repeatable


class Operands(enum.Enum):
    SERVICES = "services"  # [SERVICE...]
    SERVICE_COMMAND = "service-command"  # SERVICE [COMMAND] [ARGS...]
    SCALE = "scale"  # SERVICE=N...


class ArgvProblem(enum.Enum):
    UNKNOWN_OPTION = "unknown option"
    ABBREVIATED_OPTION = "abbreviated option"
    AMBIGUOUS_FORM = "ambiguous form"
    MISSING_VALUE = "missing value"
    BAD_VALUE = "bad value"
    REPEATED_OPTION = "repeated option"
    CONFLICTING_OPTIONS = "conflicting options"
    MISPLACED = "misplaced argument"
    UNKNOWN_SUBCOMMAND = "unknown subcommand"
    UNSUPPORTED_SUBCOMMAND = "unsupported subcommand"


class ComposeArgvError(UsageError):
    """A compose command line safe-docker does not accept; ``problem`` says which rule."""

    def __init__(self, problem: ArgvProblem, what: str, *, token: str | None = None,
                 why: str = "", hint: str = "") -> None:
        super().__init__(what, why=why, hint=hint)
        self.problem = problem
        self.token = token


@dataclass(frozen=True)
class OptionSpec:
    long: str | None  # "--file"
    short: str | None  # "-f"
    arity: Arity
    effect: ImageEffect | None = None
    aliases: tuple[str, ...] = ()  # other exact long spellings compose maps to this option

    @property
    def name(self) -> str:
        """The canonical spelling: the long name, else the short one."""
        name = self.long or self.short
        assert name is not None  # noqa: S101 - every spec has one
        return name


def _flag(long: str | None, short: str | None = None, effect: ImageEffect | None = None,
          aliases: tuple[str, ...] = ()) -> OptionSpec:
    return OptionSpec(long, short, Arity.FLAG, effect, aliases)


def _value(long: str | None, short: str | None = None, effect: ImageEffect | None = None,
           aliases: tuple[str, ...] = ()) -> OptionSpec:
    return OptionSpec(long, short, Arity.VALUE, effect, aliases)


def _list(long: str | None, short: str | None = None, effect: ImageEffect | None = None,
          aliases: tuple[str, ...] = ()) -> OptionSpec:
    return OptionSpec(long, short, Arity.LIST, effect, aliases)


HELP = _flag("--help", "-h")
_BUILD, _NO_BUILD, _PULL, _SCOPE, _WATCH = (
    ImageEffect.BUILD, ImageEffect.NO_BUILD, ImageEffect.PULL, ImageEffect.SCOPE,
    ImageEffect.WATCH)

# docker-compose 1.29.2, TopLevelCommand's docstring. -h/--help come from its usage line.
V1_GLOBALS: tuple[OptionSpec, ...] = (
    _list("--file", "-f"), _value("--project-name", "-p"), _list("--profile"),
    _value("--context", "-c"), _flag("--verbose"), _value("--log-level"), _value("--ansi"),
    _flag("--no-ansi"), _flag("--version", "-v"), _value("--host", "-H"), _flag("--tls"),
    _value("--tlscacert"), _value("--tlscert"), _value("--tlskey"), _flag("--tlsverify"),
    _flag("--skip-hostname-check"), _value("--project-directory"), _flag("--compatibility"),
    _value("--env-file"), HELP,
)

# compose v2 root (compose.go addProjectFlags + RootCommand); --insecure-registry, --workdir,
# --version, --no-ansi and --verbose are hidden. -h/--help: the plugin root's persistent flag.
_DRY_RUN = _flag("--dry-run")  # persistent: also valid after the subcommand
V2_GLOBALS: tuple[OptionSpec, ...] = (
    _list("--file", "-f"), _value("--project-name", "-p"), _list("--profile"),
    _list("--insecure-registry"), _list("--env-file"),
    _value("--project-directory", aliases=("--workdir",)), _flag("--compatibility"),
    _value("--progress"), _flag("--all-resources"), _value("--ansi"), _value("--parallel"),
    _flag("--version", "-v"), _DRY_RUN, _flag("--no-ansi"), _flag("--verbose"), HELP,
)

# The global options that shape the model `config` resolves.
MODEL_OPTIONS: Mapping[Flavour, frozenset[str]] = {
    Flavour.V2: frozenset({"--file", "--project-name", "--project-directory", "--env-file",
                           "--profile", "--compatibility", "--all-resources",
                           "--insecure-registry"}),
    Flavour.V1: frozenset({"--file", "--project-name", "--project-directory", "--env-file",
                           "--profile", "--compatibility"}),
}


@dataclass(frozen=True)
class SubcommandSpec:
    name: str
    kind: SubcommandKind
    options: tuple[OptionSpec, ...] | None = None  # None: its arguments are passed on unread
    operands: Operands = Operands.SERVICES
    interspersed: bool = True  # v2: options may follow operands (pflag); not for run
    dash_dash: bool = True  # v1: the usage line admits `--` before the operands
    min_operands: int = 0


def _v2(name: str, kind: SubcommandKind, *options: OptionSpec, operands: Operands =
        Operands.SERVICES, interspersed: bool = True, min_operands: int = 0) -> SubcommandSpec:
    # Every v2 subcommand also knows the persistent --dry-run and -h/--help.
    return SubcommandSpec(name, kind, (*options, _DRY_RUN, HELP), operands, interspersed,
                          True, min_operands)


def _v1(name: str, kind: SubcommandKind, *options: OptionSpec, operands: Operands =
        Operands.SERVICES, dash_dash: bool = True, min_operands: int = 0) -> SubcommandSpec:
    return SubcommandSpec(name, kind, options, operands, True, dash_dash, min_operands)


_V, _S, _P = SubcommandKind.VERIFY, SubcommandKind.MAY_START, SubcommandKind.PASS
_YES = _flag("--yes", "-y", aliases=("--y",))  # normalize func: `--y` was a mistake kept

V2_SUBCOMMANDS: Mapping[str, SubcommandSpec] = {s.name: s for s in (
    _v2("up", _V, _flag("--detach", "-d"), _flag("--build", effect=_BUILD),
        _flag("--no-build", effect=_NO_BUILD), _value("--pull", effect=_PULL),
        _flag("--remove-orphans"), _list("--scale", effect=_SCOPE), _flag("--no-color"),
        _flag("--no-log-prefix"), _flag("--force-recreate"), _flag("--no-recreate"),
        _flag("--no-start"), _flag("--abort-on-container-exit"),
        _flag("--abort-on-container-failure"), _value("--exit-code-from"),
        _value("--timeout", "-t"), _flag("--timestamps"), _flag("--no-deps", effect=_SCOPE),
        _flag("--always-recreate-deps"), _flag("--renew-anon-volumes", "-V"),
        _flag("--quiet-pull"), _flag("--quiet-build"), _list("--attach"),
        _list("--no-attach"), _flag("--attach-dependencies"), _flag("--wait"),
        _value("--wait-timeout"), _flag("--watch", "-w", effect=_WATCH), _flag("--menu"),
        _YES),
    _v2("create", _V, _flag("--build", effect=_BUILD), _flag("--no-build", effect=_NO_BUILD),
        _value("--pull", effect=_PULL), _flag("--quiet-pull"), _flag("--force-recreate"),
        _flag("--no-recreate"), _flag("--remove-orphans"), _list("--scale", effect=_SCOPE),
        _YES),
    _v2("run", _V, _flag("--detach", "-d"), _list("--env", "-e"), _list("--env-from-file"),
        _list("--label", "-l", aliases=("--labels",)), _flag("--rm"),
        _flag("--no-tty", "-T", aliases=("--no-TTY",)), _value("--name"),
        _value("--user", "-u"), _value("--workdir", "-w"), _value("--entrypoint"),
        _list("--cap-add"), _list("--cap-drop"), _flag("--no-deps", effect=_SCOPE),
        _list("--volume", "-v", aliases=("--volumes",)), _list("--publish", "-p"),
        _flag("--use-aliases"), _flag("--service-ports", "-P"),
        _value("--pull", effect=_PULL), _flag("--quiet", "-q"), _flag("--quiet-build"),
        _flag("--quiet-pull"), _flag("--build", effect=_BUILD), _flag("--remove-orphans"),
        _flag("--interactive", "-i"), _flag("--tty", "-t"),
        operands=Operands.SERVICE_COMMAND, interspersed=False, min_operands=1),
    _v2("pull", _V, _flag("--quiet", "-q"), _flag("--include-deps", effect=_SCOPE),
        _flag("--parallel"), _flag("--no-parallel"),
        _flag("--ignore-pull-failures", effect=_PULL),
        _flag("--ignore-buildable", effect=_SCOPE), _value("--policy", effect=_PULL)),
    _v2("scale", _V, _flag("--no-deps", effect=_SCOPE), operands=Operands.SCALE,
        min_operands=1),
    _v2("watch", _V, _flag("--quiet"), _flag("--prune"), _flag("--no-up", effect=_SCOPE)),
    _v2("build", _V, _flag("--push"), _flag("--quiet", "-q"), _flag("--pull", effect=_PULL),
        _list("--build-arg"), _value("--ssh"), _value("--builder"),
        _flag("--with-dependencies", effect=_SCOPE), _value("--provenance"),
        _value("--sbom"), _flag("--parallel"), _flag("--compress"), _flag("--force-rm"),
        _flag("--no-cache"), _flag("--no-rm"), _value("--memory", "-m"),
        _value("--progress"), _flag("--print"), _flag("--check")),
    _v2("start", _S, _flag("--wait"), _value("--wait-timeout")),
    _v2("restart", _S, _value("--timeout", "-t"), _flag("--no-deps", effect=_SCOPE)),
    *(SubcommandSpec(name, _P) for name in (
        "attach", "commit", "config", "cp", "down", "events", "exec", "export", "help",
        "images", "kill", "logs", "ls", "pause", "port", "ps", "publish", "push", "rm",
        "stats", "stop", "top", "unpause", "version", "volumes", "wait", "alpha")),
)}
V2_ALPHA_PASS = frozenset({"viz", "generate", "publish"})
V2_UNSUPPORTED: Mapping[str, str] = {
    "bridge": "`compose bridge convert` runs transformer images as containers, unverified",
}

V1_SUBCOMMANDS: Mapping[str, SubcommandSpec] = {s.name: s for s in (
    _v1("up", _V, _flag("--detach", "-d"), _flag("--no-color"), _flag("--quiet-pull"),
        _flag("--no-deps", effect=_SCOPE), _flag("--force-recreate"),
        _flag("--always-recreate-deps"), _flag("--no-recreate"),
        _flag("--no-build", effect=_NO_BUILD), _flag("--no-start"),
        _flag("--build", effect=_BUILD), _flag("--abort-on-container-exit"),
        _flag("--attach-dependencies"), _value("--timeout", "-t"),
        _flag("--renew-anon-volumes", "-V"), _flag("--remove-orphans"),
        _value("--exit-code-from"), _list("--scale", effect=_SCOPE), _flag("--no-log-prefix")),
    _v1("create", _V, _flag("--force-recreate"), _flag("--no-recreate"),
        _flag("--no-build", effect=_NO_BUILD), _flag("--build", effect=_BUILD),
        dash_dash=False),
    _v1("run", _V, _flag("--detach", "-d"), _value("--name"), _value("--entrypoint"),
        _list(None, "-e"), _list("--label", "-l"), _value("--user", "-u"),
        _flag("--no-deps", effect=_SCOPE), _flag("--rm"), _list("--publish", "-p"),
        _flag("--service-ports"), _flag("--use-aliases"), _list("--volume", "-v"),
        _flag(None, "-T"), _value("--workdir", "-w"),
        operands=Operands.SERVICE_COMMAND, min_operands=1),
    _v1("pull", _V, _flag("--ignore-pull-failures", effect=_PULL), _flag("--parallel"),
        _flag("--no-parallel"), _flag("--quiet", "-q"), _flag("--include-deps", effect=_SCOPE)),
    _v1("scale", _V, _value("--timeout", "-t"), operands=Operands.SCALE, dash_dash=False),
    _v1("build", _V, _list("--build-arg"), _flag("--compress"), _flag("--force-rm"),
        _value("--memory", "-m"), _flag("--no-cache"), _flag("--no-rm"), _flag("--parallel"),
        _value("--progress"), _flag("--pull", effect=_PULL), _flag("--quiet", "-q")),
    _v1("start", _S, dash_dash=False),
    _v1("restart", _S, _value("--timeout", "-t")),
    *(SubcommandSpec(name, _P) for name in (
        "config", "down", "events", "exec", "help", "images", "kill", "logs", "pause", "port",
        "ps", "push", "rm", "stop", "top", "unpause", "version")),
)}

_GLOBALS: Mapping[Flavour, tuple[OptionSpec, ...]] = {
    Flavour.V2: V2_GLOBALS, Flavour.V1: V1_GLOBALS}
_SUBCOMMANDS: Mapping[Flavour, Mapping[str, SubcommandSpec]] = {
    Flavour.V2: V2_SUBCOMMANDS, Flavour.V1: V1_SUBCOMMANDS}
_TOOL: Mapping[Flavour, str] = {Flavour.V2: "docker compose", Flavour.V1: "docker-compose 1.x"}
_PFLAG_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go strconv.ParseBool
_PFLAG_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_REPLICAS = re.compile(r"[+-]?[0-9]{1,9}")


@dataclass(frozen=True)
class ComposeCommand:
    """One compose command line, read as compose reads it; names in canonical spelling."""

    flavour: Flavour
    globals: tuple[tuple[str, str | None], ...]  # (option, value) in the user's order
    subcommand: str | None
    kind: SubcommandKind
    sub_options: tuple[tuple[str, str | None], ...] = ()  # VERIFY/MAY_START only
    services: tuple[str, ...] = ()  # the services named (run: SERVICE; scale: the names)
    scale: tuple[tuple[str, int], ...] = ()  # `scale S=N…`, `up/create --scale S=N`
    command: tuple[str, ...] = ()  # run: COMMAND [ARGS...]
    sub_args: tuple[str, ...] = ()  # a PASS subcommand's own arguments, passed on unread
    image_options: tuple[tuple[str, str | None, ImageEffect], ...] = ()
    help: bool = False  # compose only prints (help, usage or its version), runs nothing

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of the global option ``name`` (canonical spelling)."""
        return tuple(v for n, v in self.globals if n == name and v is not None)

    @property
    def files(self) -> tuple[str, ...]:
        return self.values("--file")

    @property
    def project_name(self) -> str | None:
        return next(iter(self.values("--project-name")), None)

    @property
    def project_directory(self) -> str | None:
        return next(iter(self.values("--project-directory")), None)

    @property
    def env_files(self) -> tuple[str, ...]:
        return self.values("--env-file")

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.values("--profile")

    @property
    def needs_verification(self) -> bool:
        return self.kind.verifies and not self.help


# --- the two grammars ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    longs: Mapping[str, OptionSpec]
    shorts: Mapping[str, OptionSpec]


@functools.cache
def _table(specs: tuple[OptionSpec, ...]) -> _Table:
    longs: dict[str, OptionSpec] = {}
    shorts: dict[str, OptionSpec] = {}
    for spec in specs:
        for name in (spec.long, *spec.aliases):
            if name is not None:
                longs[name] = spec
        if spec.short is not None:
            shorts[spec.short[1:]] = spec
    return _Table(longs, shorts)


@dataclass
class _Parsed:
    options: list[tuple[OptionSpec, str | None]] = field(default_factory=list)
    operands: list[str] = field(default_factory=list)
    dash_at: int | None = None  # operands from this index came after `--`


def _error(problem: ArgvProblem, what: str, word: str, *, why: str = "",
           hint: str = "") -> ComposeArgvError:
    return ComposeArgvError(problem, what, token=word, why=why, hint=hint)


def _unknown(word: str, where: str, flavour: Flavour) -> ComposeArgvError:
    name = word.partition("=")[0]
    hint = "check the spelling; safe-docker passes only the options compose documents"
    if where != "compose" and _is_global(name, flavour):
        hint = f"global options go before the subcommand: `{_TOOL[flavour]} {name} … {where}`"
    return _error(ArgvProblem.UNKNOWN_OPTION, f"{where} option {name!r} is not known to "
                  "safe-docker", word, why=f"{_TOOL[flavour]} does not document it there",
                  hint=hint)


def _is_global(name: str, flavour: Flavour) -> bool:
    table = _table(_GLOBALS[flavour])
    return name in table.longs or (len(name) == 2 and name[1:] in table.shorts)


def _pflag_bool(value: str, word: str, where: str) -> str | None:
    """A v2 bool flag's ``=value``: None for true (the plain flag), "false" for false."""
    if value in _PFLAG_TRUE:
        return None
    if value in _PFLAG_FALSE:
        return "false"
    raise _error(ArgvProblem.BAD_VALUE, f"{where} option {word!r} has a value that is not "
                 "true or false", word, hint="write the flag alone, or =true / =false")


def _parse_pflag(tokens: Sequence[str], specs: tuple[OptionSpec, ...], *, where: str,
                 interspersed: bool, root: bool) -> _Parsed:
    """pflag's parseArgs: ``--`` ends options; a lone ``-`` or ``""`` is an operand."""
    table = _table(specs)
    parsed = _Parsed()
    index = 0
    while index < len(tokens):
        word = tokens[index]
        index += 1
        if len(word) < 2 or word[0] != "-":
            if not interspersed:
                parsed.operands += tokens[index - 1:]
                break
            parsed.operands.append(word)
        elif word == "--":
            if root:
                raise _error(ArgvProblem.MISPLACED, "`--` before the compose subcommand",
                             word, why="docker compose then finds no subcommand",
                             hint="remove the --")
            parsed.dash_at = len(parsed.operands)
            parsed.operands += tokens[index:]
            break
        elif word.startswith("--"):
            index = _pflag_long(word, tokens, index, table, parsed, where, root)
        else:
            index = _pflag_shorts(word, tokens, index, table, parsed, where, root)
    return parsed


def _pflag_long(word: str, tokens: Sequence[str], index: int, table: _Table,
                parsed: _Parsed, where: str, root: bool) -> int:
    name, eq, value = word.partition("=")
    spec = table.longs.get(name)
    if spec is None or word[2] in "-=":
        raise _unknown(word, where, Flavour.V2)
    if spec.arity is Arity.FLAG:
        parsed.options.append((spec, _pflag_bool(value, word, where) if eq else None))
        return index
    if eq:
        parsed.options.append((spec, value))
        return index
    if index >= len(tokens):
        raise _missing(word, where)
    if root:
        _check_traversal(word, tokens[index], spec)
    parsed.options.append((spec, tokens[index]))
    return index + 1


def _check_traversal(word: str, value: str, spec: OptionSpec) -> None:
    """Before the subcommand, cobra's Traverse (not pflag) picks the subcommand: it takes a
    separate value that looks like an option (``--x``, ``-x``) for an option of its own, so
    ``-p --file ps up`` runs ``up`` where pflag reads project ``--file`` and command ``ps``."""
    if (value.startswith("--") or len(value) == 2 and value.startswith("-")) and "=" not in value:
        raise _error(ArgvProblem.AMBIGUOUS_FORM, f"compose option {word} has a value that "
                     "looks like an option", value,
                     why="docker compose would look for its subcommand in the wrong place",
                     hint=f"write {spec.long}={value}" if spec.long else "")


def _pflag_shorts(word: str, tokens: Sequence[str], index: int, table: _Table,
                  parsed: _Parsed, where: str, root: bool) -> int:
    rest = word[1:]
    while rest:
        spec = table.shorts.get(rest[0])
        if spec is None:
            raise _unknown(f"-{rest[0]}", where, Flavour.V2)
        if len(rest) > 2 and rest[1] == "=":  # -f=VALUE
            value: str | None = rest[2:]
            if spec.arity is Arity.FLAG:
                value = _pflag_bool(rest[2:], word, where)
            rest = ""
        elif spec.arity is Arity.FLAG:
            value, rest = None, rest[1:]
        elif rest[1:] == "=":
            raise _error(ArgvProblem.AMBIGUOUS_FORM, f"{where} option {word!r} is ambiguous",
                         word, why=f"docker compose would read it as {spec.name} '='",
                         hint=f"write {spec.name} VALUE")
        elif len(rest) > 1:
            value, rest = rest[1:], ""
        elif index < len(tokens):
            if root and len(word) > 2:
                raise _error(ArgvProblem.AMBIGUOUS_FORM, f"compose option {word!r} takes "
                             "its value from the next word", word,
                             why="docker compose would not find its subcommand after it",
                             hint=f"write {spec.name} VALUE separately")
            if root:
                _check_traversal(word, tokens[index], spec)
            value, rest = tokens[index], ""
            index += 1
        else:
            raise _missing(word, where)
        parsed.options.append((spec, value))
    return index


def _parse_docopt(tokens: Sequence[str], specs: tuple[OptionSpec, ...], *, where: str,
                  top: bool) -> _Parsed:
    """docopt 0.6.2 parse_argv with options_first: options end at the first operand or
    ``--``. Below the top level -h/--help are undeclared, yet docopt's extras() obeys them."""
    table = _table(specs)
    parsed = _Parsed()
    index = 0
    while index < len(tokens):
        word = tokens[index]
        if word == "--":
            parsed.dash_at = 0
            parsed.operands += tokens[index + 1:]
            break
        index += 1
        if word.startswith("--"):
            index = _docopt_long(word, tokens, index, table, parsed, where, top)
        elif word.startswith("-") and word != "-":
            index = _docopt_shorts(word, tokens, index, table, parsed, where, top)
        else:
            parsed.operands += tokens[index - 1:]
            break
    return parsed


def _docopt_long(word: str, tokens: Sequence[str], index: int, table: _Table,
                 parsed: _Parsed, where: str, top: bool) -> int:
    name, eq, value = word.partition("=")
    spec = table.longs.get(name)
    if spec is None and not top and name == "--help" and not eq:
        spec = HELP
    if spec is None:
        candidates = sorted(long for long in table.longs if long.startswith(name))
        if candidates and len(name) > 2:
            meant = ("an abbreviation of " + candidates[0] if len(candidates) == 1
                     else "an ambiguous abbreviation of " + ", ".join(candidates))
            raise _error(ArgvProblem.ABBREVIATED_OPTION, f"{where} option {name!r} is not "
                         "known to safe-docker", word,
                         why=f"docker-compose 1.x would read it as {meant}",
                         hint="spell the option out in full"
                         + (f": {candidates[0]}" if len(candidates) == 1 else ""))
        raise _unknown(word, where, Flavour.V1)
    if spec.arity is Arity.FLAG:
        if eq:
            raise _error(ArgvProblem.BAD_VALUE, f"{where} option {name} takes no value", word,
                         why="docker-compose 1.x refuses it", hint=f"write {name} alone")
        parsed.options.append((spec, None))
        return index
    if eq:
        parsed.options.append((spec, value))
        return index
    if index >= len(tokens):
        raise _missing(word, where)
    parsed.options.append((spec, tokens[index]))
    return index + 1


def _docopt_shorts(word: str, tokens: Sequence[str], index: int, table: _Table,
                   parsed: _Parsed, where: str, top: bool) -> int:
    rest = word[1:]
    while rest:
        char, rest = rest[0], rest[1:]
        spec = table.shorts.get(char)
        if spec is None and not top and char == "h":
            spec = HELP
        if spec is None:
            raise _unknown(f"-{char}", where, Flavour.V1)
        if spec.arity is Arity.FLAG:
            parsed.options.append((spec, None))
            continue
        if rest.startswith("="):
            raise _error(ArgvProblem.AMBIGUOUS_FORM, f"{where} option {word!r} is ambiguous",
                         word, why=f"docker-compose 1.x reads it as {spec.name} {rest!r}",
                         hint=f"write {spec.name} {rest[1:] or 'VALUE'}"
                         + (f" or {spec.long}={rest[1:] or 'VALUE'}" if spec.long else ""))
        if rest:
            parsed.options.append((spec, rest))
            return index
        if index >= len(tokens):
            raise _missing(word, where)
        parsed.options.append((spec, tokens[index]))
        return index + 1
    return index


def _missing(word: str, where: str) -> ComposeArgvError:
    return _error(ArgvProblem.MISSING_VALUE, f"{where} option {word} needs a value", word,
                  hint=f"write {word} VALUE")


def _check_repeats(parsed: _Parsed, where: str, flavour: Flavour) -> None:
    seen: set[OptionSpec] = set()
    for spec, _ in parsed.options:
        if spec.arity is not Arity.LIST and spec is not HELP:
            if spec in seen:
                why = ("docker-compose 1.x refuses it" if flavour is Flavour.V1
                       else "docker compose would silently keep only the last one")
                raise _error(ArgvProblem.REPEATED_OPTION, f"{where} option {spec.name} is "
                             "given more than once", spec.name, why=why,
                             hint=f"give {spec.name} once")
            seen.add(spec)


def _canonical(options: list[tuple[OptionSpec, str | None]]) -> tuple[
        tuple[str, str | None], ...]:
    return tuple((spec.name, value) for spec, value in options)


def _is_set(parsed: _Parsed, spec_name: str) -> bool:
    return any(s.name == spec_name and v != "false" for s, v in parsed.options)


# --- the command line ---------------------------------------------------------------------


def parse_compose_argv(args: Sequence[str], flavour: Flavour) -> ComposeCommand:
    """Read ``safe-docker compose ARGS…`` (``args`` = ARGS) as ``flavour`` reads it.

    Raises `ComposeArgvError` for anything not on the allowlist."""
    args = list(args)
    globals_spec = _GLOBALS[flavour]
    match flavour:
        case Flavour.V2:
            top = _parse_pflag(args, globals_spec, where="compose", interspersed=False,
                               root=True)
        case Flavour.V1:
            top = _parse_docopt(args, globals_spec, where="compose", top=True)
    _check_repeats(top, "compose", flavour)
    globals_ = _canonical(top.options)
    help_ = _last_help(top.options) or (
        flavour is Flavour.V1 and any(name == "--version" for name, _ in globals_))
    if not top.operands:
        return ComposeCommand(flavour, globals_, None, SubcommandKind.PASS, help=True)
    name, rest = top.operands[0], top.operands[1:]
    spec = _subcommand(name, rest, flavour)
    if spec.options is None:
        return ComposeCommand(flavour, globals_, name, spec.kind, sub_args=tuple(rest),
                              help=help_ or name == "help")
    return _verified_subcommand(flavour, globals_, spec, rest, help_, top.options)


def _last_help(options: Sequence[tuple[OptionSpec, str | None]]) -> bool:
    """Whether -h/--help is on: pflag keeps a flag's LAST value (`--help --help=false` runs
    the command), one flag set for the plugin root and the subcommand."""
    values = [value for spec, value in options if spec is HELP]
    return bool(values) and values[-1] != "false"


def _subcommand(name: str, rest: Sequence[str], flavour: Flavour) -> SubcommandSpec:
    known = _SUBCOMMANDS[flavour]
    if flavour is Flavour.V2 and name in V2_UNSUPPORTED:
        raise _error(ArgvProblem.UNSUPPORTED_SUBCOMMAND, f"`compose {name}` is not supported "
                     "by safe-docker", name, why=V2_UNSUPPORTED[name],
                     hint="run it with the real docker if you trust what it runs")
    if flavour is Flavour.V2 and name == "alpha" and rest and rest[0] not in V2_ALPHA_PASS \
            and rest[0] not in ("-h", "--help"):
        raise _error(ArgvProblem.UNSUPPORTED_SUBCOMMAND, f"`compose alpha {rest[0]}` is not "
                     "supported by safe-docker", rest[0],
                     why="experimental alpha commands change between compose versions",
                     hint="use the top-level command (e.g. `compose watch`) if there is one")
    spec = known.get(name)
    if spec is None:
        raise _error(ArgvProblem.UNKNOWN_SUBCOMMAND, f"compose subcommand {name!r} is not "
                     "known to safe-docker", name, why=f"{_TOOL[flavour]} has no such command",
                     hint="check the spelling; known: " + ", ".join(sorted(known)))
    return spec


def _verified_subcommand(flavour: Flavour, globals_: tuple[tuple[str, str | None], ...],
                         spec: SubcommandSpec, rest: Sequence[str],
                         help_: bool,
                         top: Sequence[tuple[OptionSpec, str | None]] = ()) -> ComposeCommand:
    assert spec.options is not None  # noqa: S101 - only called for parsed subcommands
    match flavour:
        case Flavour.V2:
            sub = _parse_pflag(rest, spec.options, where=spec.name,
                               interspersed=spec.interspersed, root=False)
        case Flavour.V1:
            sub = _parse_docopt(rest, spec.options, where=spec.name, top=False)
    _check_repeats(sub, spec.name, flavour)
    if any(s is HELP for s, _ in sub.options):
        help_ = _last_help([*top, *sub.options]) if flavour is Flavour.V2 else True
    if _is_set(sub, "--build") and _is_set(sub, "--no-build"):
        raise _error(ArgvProblem.CONFLICTING_OPTIONS, f"{spec.name} options --build and "
                     "--no-build contradict each other", "--no-build",
                     why=f"{_TOOL[flavour]} refuses them together", hint="choose one")
    if flavour is Flavour.V1:
        _check_v1_operands(spec, sub)
    operands = sub.operands
    if len(operands) < spec.min_operands and not help_:
        wanted = "SERVICE" if spec.operands is Operands.SERVICE_COMMAND else "SERVICE=N"
        raise _error(ArgvProblem.MISSING_VALUE, f"`compose {spec.name}` needs a {wanted}",
                     spec.name, hint=f"write {spec.name} {wanted}")
    scale = tuple(_replicas(v, spec.name) for s, v in sub.options
                  if s.long == "--scale" and v is not None)
    services: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    match spec.operands:
        case Operands.SERVICES:
            services = tuple(operands)
        case Operands.SERVICE_COMMAND:
            services, command = tuple(operands[:1]), tuple(operands[1:])
        case Operands.SCALE:
            scale = tuple(_replicas(operand, spec.name) for operand in operands)
            services = tuple(name for name, _ in scale)
            if len(set(services)) != len(services):
                raise _error(ArgvProblem.REPEATED_OPTION, "`compose scale` names a service "
                             "twice", spec.name, hint="give each SERVICE=N once")
    effects = tuple((s.name, v, s.effect) for s, v in sub.options
                    if s.effect is not None and v != "false")
    return ComposeCommand(flavour, globals_, spec.name, spec.kind,
                          sub_options=_canonical(sub.options), services=services, scale=scale,
                          command=command, image_options=effects, help=help_)


def _check_v1_operands(spec: SubcommandSpec, sub: _Parsed) -> None:
    """docopt reads everything after the first operand as operands: `up web -d` names a
    service `-d`, and `--` after a usage without ``[--]`` is a service named `--`."""
    if sub.dash_at is not None and not spec.dash_dash:
        raise _error(ArgvProblem.MISPLACED, f"`docker-compose {spec.name}` takes no `--`",
                     "--", why="docker-compose 1.x would read -- as a service name",
                     hint="remove the --")
    if sub.dash_at is not None or spec.operands is Operands.SERVICE_COMMAND:
        return  # after `--`, or run's COMMAND: operands are taken as written
    for operand in sub.operands:
        if operand.startswith("-"):
            raise _error(ArgvProblem.MISPLACED, f"{spec.name} argument {operand!r} comes "
                         "after a service name", operand,
                         why="docker-compose 1.x reads options only before the first "
                         "service, so it would take it as a service name",
                         hint=f"put options first: docker-compose {spec.name} {operand} …")


def _replicas(text: str, where: str) -> tuple[str, int]:
    name, eq, count = text.partition("=")
    if not eq or not name or _REPLICAS.fullmatch(count) is None:
        raise _error(ArgvProblem.BAD_VALUE, f"{where}: {text!r} is not SERVICE=N", text,
                     hint="write SERVICE=N, e.g. web=2")
    return name, int(count)


# --- back to a command line -----------------------------------------------------------------


def _emit(name: str, value: str | None) -> list[str]:
    # `--name=value` is read the same by docopt and pflag, whatever the value looks like.
    if value is None:
        return [name]
    return [f"{name}={value}"] if name.startswith("--") else [name, value]


def _global_argv(cmd: ComposeCommand, replace: Mapping[str, Sequence[str]],
                 only: frozenset[str] | None = None) -> list[str]:
    """The global options: ``replace``'s first (in place of the user's), then the user's."""
    out = [f"{name}={value}" for name, values in replace.items() for value in values]
    for name, value in cmd.globals:
        if name not in replace and (only is None or name in only):
            out += _emit(name, value)
    return out


def _subcommand_argv(cmd: ComposeCommand) -> list[str]:
    if cmd.subcommand is None:
        return []
    out = [cmd.subcommand]
    spec = _SUBCOMMANDS[cmd.flavour][cmd.subcommand]
    if spec.options is None:
        return out + list(cmd.sub_args)
    for name, value in cmd.sub_options:
        out += _emit(name, value)
    match spec.operands:
        case Operands.SERVICES:
            operands = list(cmd.services)
        case Operands.SERVICE_COMMAND:
            operands = [*cmd.services, *cmd.command]
        case Operands.SCALE:
            operands = [f"{name}={count}" for name, count in cmd.scale]
    if operands and spec.dash_dash:
        out.append("--")  # operands are never read as options, whatever they look like
    return out + operands


def canonical_argv(cmd: ComposeCommand, *, files: Sequence[str] | None = None) -> list[str]:
    """The command line for compose (after ``docker compose`` / ``docker-compose``) in
    canonical spellings; ``files`` replaces every ``--file`` the user gave."""
    return [*_global_argv(cmd, {} if files is None else {"--file": files}),
            *_subcommand_argv(cmd)]


def resolved_argv(cmd: ComposeCommand, *, file: str, project_directory: str,
                  env_files: Sequence[str], project_name: str | None = None) -> list[str]:
    """The command on exactly one resolved ``file``: these files, directory, env files and
    (when given) project name replace the user's; the rest (profiles, compatibility, output
    options, the subcommand) is the user's, in canonical spellings."""
    replace: dict[str, Sequence[str]] = {
        "--file": [file], "--project-directory": [project_directory], "--env-file": env_files}
    if project_name is not None:
        replace["--project-name"] = [project_name]
    return [*_global_argv(cmd, replace), *_subcommand_argv(cmd)]


def config_argv(cmd: ComposeCommand, *, files: Sequence[str] | None = None,
                env_files: Sequence[str] | None = None, project_directory: str | None = None,
                all_profiles: bool = False) -> list[str]:
    """``config`` for the model this command would use: the user's files (or ``files``),
    project name and directory (or ``project_directory``), env files (or ``env_files``),
    profiles and compatibility;
    v2 prints JSON. ``all_profiles``: v2 resolves the services of every profile too
    (``--profile=*``); 1.x always prints every service."""
    replace: dict[str, Sequence[str]] = {}
    if files is not None:
        replace["--file"] = files
    if env_files is not None:
        replace["--env-file"] = env_files
    if project_directory is not None:
        replace["--project-directory"] = [project_directory]
    out = _global_argv(cmd, replace, MODEL_OPTIONS[cmd.flavour])
    match cmd.flavour:
        case Flavour.V2:
            return [*out, *(["--profile=*"] if all_profiles else []), "config", "--format=json"]
        case Flavour.V1:
            return [*out, "config"]
