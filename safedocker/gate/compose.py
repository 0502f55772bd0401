"""``safe-docker compose``: every service image verified and pinned before compose starts.

For ``up``, ``create``, ``run`` and ``pull``: the project is resolved by compose itself
(``docker compose config --format json``, or ``docker-compose config`` for the standalone
1.x, whose output is YAML) with the user's global options (``-f``, ``-p``,
``--project-directory``, ``--env-file``, ``--profile``); every service image goes through
the gate (gate/decide.py: mode, verification for the service's platform, offline, audit),
and the refusal of any one refuses the whole command before anything is created. Compose
then runs with one more ``-f``: an override file under the state dir
(``<state>/compose/<hash>.yml``, kept for inspection) that sets each service's ``image:``
to what the gate hands docker (``repo@sha256:…``) and, where policy and host say so, an
NVIDIA device reservation.
The override comes after the user's files, so it wins; when the user named no file, the
files compose would have found by itself are named explicitly before it.

Every other compose subcommand is handed to compose unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker.errors import (
    ConfigError,
    DockerNotFound,
    Refused,
    SafeDockerError,
    UsageError,
    reason_of,
)
from safedocker.gate.handoff import Plan
from safedocker.policy.model import Action, Mode

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.gate.decide import Admission, Gate, ImageVerifier
    from safedocker.gpu.detect import HostGpu
    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths
    from safedocker.verify.verdict import Verdict


VERIFIED_SUBCOMMANDS = frozenset({"up", "create", "run", "pull"})
# Compose's global options that take a value (v2 and 1.x); everything else is a flag.
VALUE_OPTIONS = frozenset({
    "-f", "--file", "-p", "--project-name", "--project-directory", "--env-file", "--profile",
    "--ansi", "--parallel", "--progress", "-H", "--host", "-c", "--context", "--log-level",
    "--tlscacert", "--tlscert", "--tlskey",
})
CONFIG_OPTIONS = frozenset({"-f", "--file", "-p", "--project-name", "--project-directory",
                            "--env-file", "--profile"})
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")
MAX_CONFIG_OUTPUT = 16 * 1024 * 1024
CONFIG_TIMEOUT = 300.0  # compose config: a project with many files and remote includes
YAML_ALIAS_EXPANSION_MAX = 100_000  # nodes that aliases may add to compose 1.x's output
# `compose run` options that take a value (so that the service is found after them).
RUN_VALUE_OPTIONS = frozenset({
    "-e", "--env", "--env-from-file", "-l", "--label", "-u", "--user", "-w", "--workdir",
    "-v", "--volume", "-p", "--publish", "--name", "--entrypoint", "--pull", "--cap-add",
    "--cap-drop",
})


def run_service(rest: Sequence[str]) -> str | None:
    """The SERVICE of ``compose run [OPTIONS] SERVICE [COMMAND]``."""
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg == "--":
            return rest[index + 1] if index + 1 < len(rest) else None
        if not arg.startswith("-"):
            return arg
        if arg in RUN_VALUE_OPTIONS:
            index += 1
        index += 1
    return None


@dataclass(frozen=True)
class ComposeArgs:
    """``safe-docker compose`` argv split as compose reads it."""

    globals: tuple[tuple[str, str | None], ...]  # (option, value) in the user's order
    subcommand: str | None
    rest: tuple[str, ...]  # the subcommand's own arguments
    help: bool = False

    def values(self, *names: str) -> list[str]:
        return [v for n, v in self.globals if n in names and v is not None]

    @property
    def files(self) -> list[str]:
        return self.values("-f", "--file")

    def global_argv(self, *, only: frozenset[str] | None = None,
                    drop_files: bool = False) -> list[str]:
        out: list[str] = []
        for name, value in self.globals:
            if (only is not None and name not in only) or (
                    drop_files and name in ("-f", "--file")):
                continue
            out += [name] if value is None else [name, value]
        return out


def parse_args(args: Sequence[str]) -> ComposeArgs:
    """Split global options (``--opt value`` / ``--opt=value`` / ``-fVALUE``) from the rest."""
    options: list[tuple[str, str | None]] = []
    index = 0
    wants_help = False
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg in ("-h", "--help"):
            wants_help = True
            options.append((arg, None))
            index += 1
            continue
        name, eq, value = arg.partition("=")
        if eq and name in VALUE_OPTIONS:
            options.append((name, value))
        elif arg in VALUE_OPTIONS:
            if index + 1 >= len(args):
                raise UsageError(f"compose option {arg} needs a value")
            options.append((arg, args[index + 1]))
            index += 1
        elif len(arg) > 2 and arg[1] != "-" and arg[:2] in VALUE_OPTIONS:
            options.append((arg[:2], arg[2:]))  # -fcompose.yml
        else:
            options.append((arg, None))
        index += 1
    subcommand = args[index] if index < len(args) else None
    rest = tuple(args[index + 1:]) if subcommand is not None else ()
    wants_help = wants_help or any(a in ("-h", "--help") for a in rest)
    return ComposeArgs(tuple(options), subcommand, rest, wants_help)


# --- which compose -------------------------------------------------------------------------


@dataclass(frozen=True)
class Compose:
    """How to run compose: the v2 plugin (``docker compose``) or a standalone binary."""

    binary: str | None  # None: the docker CLI plugin, run as `docker compose`
    version: str

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("compose",) if self.binary is None else ()

    @property
    def json_config(self) -> bool:
        """Compose v2 prints ``config --format json``; 1.x prints YAML only."""
        major = self.version.lstrip("v").split(".", 1)[0]
        return major.isdigit() and int(major) >= 2

    def argv(self, docker: str, args: Sequence[str]) -> list[str]:
        return [docker, *self.prefix, *args] if self.binary is None else [self.binary, *args]


def _version(argv: Sequence[str]) -> str | None:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60,  # noqa: S603
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    return out.splitlines()[-1].strip() if proc.returncode == 0 and out else None


def find_compose(docker: str, environ: Mapping[str, str] | None = None) -> Compose:
    """The docker compose plugin if the CLI has one, else ``docker-compose`` on PATH."""
    env = os.environ if environ is None else environ
    version = _version([docker, "compose", "version", "--short"])
    if version is not None:
        return Compose(None, version)
    standalone = shutil.which("docker-compose", path=env.get("PATH"))
    if standalone:
        version = _version([standalone, "version", "--short"])
        if version is not None:
            return Compose(standalone, version)
    raise DockerNotFound("docker compose not found",
                         why="`docker compose version` failed and no docker-compose is on PATH",
                         hint="install the docker compose plugin (or docker-compose)")


def make_plan(compose: Compose, argv: Sequence[str]) -> Plan:
    """A one-command plan: `docker compose …` or the standalone binary."""
    return Plan(commands=((*compose.prefix, *argv),), binary=compose.binary)


def load_project(compose: Compose, docker: str, args: ComposeArgs,
                 files: Sequence[str]) -> dict[str, Any]:
    """The resolved project (``config``) for exactly ``files`` and the user's project name,
    project directory, env files and profiles: what compose will run.

    Compose's output is read from the pipe with a cap (:data:`MAX_CONFIG_OUTPUT`: compose
    is stopped there, its output never held whole) and an end (:data:`CONFIG_TIMEOUT`).
    """
    from safedocker._internal.processes import OutputTooLarge, run_bounded

    for name in files:
        _refuse_alias_bomb(name)
    file_args = [a for f in files for a in ("-f", f)]
    config_args = [*file_args, *args.global_argv(only=CONFIG_OPTIONS, drop_files=True),
                   "config"]
    if compose.json_config:
        config_args += ["--format", "json"]
    argv = compose.argv(docker, config_args)
    try:
        proc = run_bounded(argv, what="compose config", timeout=CONFIG_TIMEOUT,
                           max_stdout=MAX_CONFIG_OUTPUT,
                           hint="run `docker compose config` to see what takes so long")
    except OutputTooLarge as e:
        raise ConfigError("compose config output is too large", why=e.why,
                          hint="a project that expands to this much (YAML anchors and "
                               "aliases?) cannot be verified") from e
    except OSError as e:
        raise DockerNotFound("cannot run compose config", why=reason_of(e)) from e
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError("compose cannot read the project",
                          why=detail[-1] if detail else f"compose config exited {proc.returncode}",
                          hint="run `docker compose config` to see the problem")
    return parse_config_output(proc.stdout, json_output=compose.json_config)


def parse_config_output(data: bytes, *, json_output: bool) -> dict[str, Any]:
    """Compose's resolved project: v2's JSON (strict), or 1.x's YAML through a loader
    whose aliases may not expand the document beyond :data:`YAML_ALIAS_EXPANSION_MAX`
    nodes (compose's own output needs none; a "billion laughs" is refused)."""
    from safedocker._internal import strictjson

    if len(data) > MAX_CONFIG_OUTPUT:
        raise ConfigError("compose config output is too large",
                          why=f"more than {MAX_CONFIG_OUTPUT} bytes")
    try:
        project = (strictjson.loads(data, max_bytes=MAX_CONFIG_OUTPUT) if json_output
                   else _load_yaml(data.decode("utf-8", "replace")))
    except (ValueError, RecursionError) as e:  # JSON and YAML errors alike (below)
        raise ConfigError("cannot parse compose config output",
                          why=str(e) if isinstance(e, ValueError) else "nested too deeply"
                          ) from e
    if not isinstance(project, dict) or not isinstance(project.get("services", {}), dict):
        raise ConfigError("unexpected compose config output", why="no services table")
    return project


def _refuse_alias_bomb(name: str) -> None:
    """Refuse a compose file whose YAML aliases would expand past the bound before
    compose itself expands it (compose 1.x spent minutes and ~900 MB on a 451-byte file).

    Only regular files are read (a FIFO must not be drained here), and only what PyYAML
    can compose is judged: anything else is left to compose to accept or refuse.
    """
    import stat

    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:  # pragma: no cover - a dependency; compose's output check remains
        return
    try:
        info = os.stat(name)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CONFIG_OUTPUT:
            return
        with open(name, "rb") as handle:
            text = handle.read(MAX_CONFIG_OUTPUT).decode("utf-8")
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError):
        return  # compose reads it, or says what is wrong with it
    if node is None:
        return
    try:
        _check_alias_expansion(node)
    except ValueError as e:
        raise ConfigError(f"refusing the compose file {name}", why=str(e),
                          hint="expand the anchors it repeats, or use fewer aliases") from e


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with a bound on what aliases add (ValueError beyond it)."""
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError as e:
        raise ConfigError("cannot read docker-compose 1.x output",
                          why="PyYAML is not installed",
                          hint="pip install pyyaml, or install the compose plugin") from e
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_alias_expansion(node)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ValueError(str(e)) from e
    finally:
        loader.dispose()


def _check_alias_expansion(root: Any) -> None:
    """Refuse (ValueError) a YAML node graph whose aliases would add more than
    :data:`YAML_ALIAS_EXPANSION_MAX` nodes when it is expanded as a tree.

    An alias is the same node object reached again. Each node's expanded size is computed
    once (memoized, iteratively: no recursion), so this costs one pass over the graph. A
    subtree holds at most the nodes seen so far, so an expanded size beyond that plus the
    bound is refused at once: the numbers never grow large.
    """
    limit = YAML_ALIAS_EXPANSION_MAX
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        value = node.value
        children = [c for item in value for c in (item if isinstance(item, tuple) else (item,))
                    ] if isinstance(value, list) else []
        if not children_done:
            if id(node) in visiting:
                raise ValueError("it has a recursive YAML alias")
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        size = 1 + sum(sizes[id(child)] for child in children)
        if size > len(sizes) + 1 + limit:
            raise ValueError(f"its YAML aliases expand to more than {limit} extra nodes")
        sizes[id(node)] = size
    if sizes[id(root)] - len(sizes) > limit:
        raise ValueError(f"its YAML aliases expand to more than {limit} extra nodes")


def default_files(project_directory: Path, environ: Mapping[str, str]) -> list[str]:
    """The files compose reads when no ``-f`` is given: COMPOSE_FILE, else the first of
    compose.yaml … docker-compose.yml (searching parent directories) and its override."""
    if environ.get("COMPOSE_FILE"):
        separator = environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        return [f for f in environ["COMPOSE_FILE"].split(separator) if f]
    directory = project_directory.resolve()
    for candidate_dir in (directory, *directory.parents):
        found = next((candidate_dir / n for n in DEFAULT_FILES
                      if (candidate_dir / n).is_file()), None)
        if found is not None:
            overrides = [candidate_dir / n for n in OVERRIDE_FILES if (candidate_dir / n).is_file()]
            return [str(found), *(str(o) for o in overrides[:1])]
    raise UsageError("no compose file found",
                     why=f"none of {', '.join(DEFAULT_FILES)} in {directory} or above",
                     hint="pass -f FILE")


# --- verification ------------------------------------------------------------------------------


@dataclass
class ServicePin:
    service: str
    image: str
    pinned: str | None = None  # what the gate hands docker: repo@sha256:…, an ID, a full name
    gpu_devices: tuple[str, ...] | None = None  # None: no GPU reservation
    gpu_all: bool = False
    verdict: Verdict | None = field(default=None, repr=False)


def override_document(pins: Sequence[ServicePin]) -> dict[str, Any]:
    """The compose override: pinned images and GPU device reservations."""
    services: dict[str, Any] = {}
    for pin in pins:
        entry: dict[str, Any] = {}
        if pin.pinned is not None:
            entry["image"] = pin.pinned
        if pin.gpu_all or pin.gpu_devices:
            device: dict[str, Any] = {"driver": "nvidia", "capabilities": ["gpu"]}
            if pin.gpu_devices:
                device["device_ids"] = list(pin.gpu_devices)
            else:
                device["count"] = "all"
            entry["deploy"] = {"resources": {"reservations": {"devices": [device]}}}
        if entry:
            services[pin.service] = entry
    return {"services": services}


def write_override(state_dir: Path, document: Mapping[str, Any]) -> Path:
    """Write the override (JSON, which compose reads as YAML) as ``<hash>.yml``; kept."""
    from safedocker._internal.files import atomic_write

    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    name = hashlib.sha256(text.encode()).hexdigest()[:24]
    path = state_dir / "compose" / f"{name}.yml"
    if not path.exists():
        atomic_write(path, text.encode(), 0o644)
    return path


def _service_gpu_options(service: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The service's own GPU requests, in the docker-option form gpu_flags reads."""
    options: list[tuple[str, str | None]] = []
    runtime = service.get("runtime")
    if isinstance(runtime, str):
        options.append(("--runtime", runtime))
    devices = service.get("devices") or []
    for device in devices if isinstance(devices, list) else []:
        text = device if isinstance(device, str) else str((device or {}).get("source", ""))
        options.append(("--device", text))
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        options += [("--env", f"{k}={v}") for k, v in environment.items()]
    elif isinstance(environment, list):
        options += [("--env", str(item)) for item in environment]
    deploy = service.get("deploy") or {}
    reservations = ((deploy.get("resources") or {}).get("reservations") or {}) if isinstance(
        deploy, dict) else {}
    for request in reservations.get("devices") or []:
        if isinstance(request, dict) and ("gpu" in (request.get("capabilities") or [])
                                          or request.get("driver") == "nvidia"):
            options.append(("--gpus", "compose device reservation"))
    if service.get("gpus"):
        options.append(("--gpus", str(service["gpus"])))
    return options


def _service_env(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return {str(k): "" if v is None else str(v) for k, v in environment.items()}
    return dict(str(item).partition("=")[::2] for item in environment
                if isinstance(item, str) and "=" in item)


@dataclass
class _Gpu:
    host: HostGpu | None = None

    def pin(self, pin: ServicePin, service: Mapping[str, Any], verdict: Verdict,
            verifier: ImageVerifier) -> None:
        from safedocker.gpu.detect import detect_host
        from safedocker.gpu.flags import GpuMode, gpu_flags, resolve_mode
        from safedocker.gpu.requirements import check_requirements

        mode = resolve_mode(verdict.decision.gpu)
        if mode is GpuMode.NEVER:
            return
        if self.host is None:
            self.host = detect_host()
        host = self.host
        if not host.present and mode is GpuMode.AUTO:
            return
        image_config = verifier.image_config(verdict)
        flags = gpu_flags(_service_gpu_options(service), image_config, host, None, mode)
        if flags.gives_gpus:
            check_requirements(image_config, host, run_env=_service_env(service),
                                   devices=flags.devices)
        if flags.args:
            pin.gpu_all = flags.devices is None
            pin.gpu_devices = flags.devices


def _project_name(args: ComposeArgs, project: Mapping[str, Any], files: Sequence[str]) -> str:
    given = args.values("-p", "--project-name")
    if given:
        return given[-1]
    if isinstance(project.get("name"), str):
        return str(project["name"])
    if os.environ.get("COMPOSE_PROJECT_NAME"):
        return os.environ["COMPOSE_PROJECT_NAME"]
    directory = args.values("--project-directory")
    base = Path(directory[-1]) if directory else Path(files[0]).resolve().parent if files \
        else Path.cwd()
    return "".join(c for c in base.resolve().name.lower() if c.isalnum() or c in "_-")


def verify_services(project: Mapping[str, Any], args: ComposeArgs, config: Config,
                    where: Paths, files: Sequence[str], argv: Sequence[str], *,
                    separator: str = "-", gate: Gate | None = None) -> list[ServicePin]:
    """Every service image through the gate, all or nothing: in enforce mode the first
    refusal is raised before anything runs.

    ``separator``: how compose names a built image, ``<project>-<service>`` (v2) or
    ``<project>_<service>`` (1.x)."""
    from safedocker.gate.decide import Gate, ImageRequest, Origin
    from safedocker.reference import parse_reference

    if gate is None:
        from safedocker._docker.binary import real_docker
        from safedocker._docker.engine import DockerCLI

        # docker's -H/--context reach compose (and so this engine) through the environment.
        gate = Gate.open(DockerCLI(real_docker()), config=config, where=where)
    services: Mapping[str, Any] = project.get("services") or {}
    if args.subcommand == "run":
        target = run_service(args.rest)
        if target is not None and target not in services:
            raise Refused(f"refused compose run {target}",
                          why="the service is not in the resolved project, so its image "
                          "cannot be verified", hint="check --profile and the compose files")
    gpus = _Gpu()
    pins: dict[str, ServicePin] = {}
    requests: list[ImageRequest] = []
    for service_name, service in sorted(services.items()):
        if not isinstance(service, dict):
            continue
        image = service.get("image")
        label = f"service {service_name!r}"
        if service.get("build") is not None:
            name = image if isinstance(image, str) else \
                f"{_project_name(args, project, files)}{separator}{service_name}"
            try:
                decision = config.policy.decide(parse_reference(name))
            except UsageError:
                decision = None
            if decision is None or decision.action is not Action.ACCEPT:
                gate.refuse(argv, Refused(
                    f"refused locally built image {name} ({label})",
                    why="compose builds it from source, so there is no signature to verify",
                    hint=f"`safe-docker policy allow {name}` to accept images built here, "
                    "or use a signed image without build:"))
            continue
        if not isinstance(image, str) or not image:
            continue
        platform = service.get("platform") if isinstance(service.get("platform"), str) else None
        requests.append(ImageRequest.parse(image, command=argv, origin=Origin.COMPOSE,
                                           platform=platform, label=label))
        pins[label] = ServicePin(service_name, image)

    def check(admission: Admission) -> None:
        pin = pins[admission.request.label]
        verdict = admission.verdict
        if args.subcommand == "pull" or verdict is None or not verdict.accepted:
            return
        try:
            gpus.pin(pin, services[pin.service], verdict, gate.verifier)
        except SafeDockerError as error:
            error.what = f"{error.what} ({admission.request.label})"
            raise

    for admission in gate.admit_all(requests, check=check):
        pin = pins[admission.request.label]
        pin.pinned = admission.target
        pin.verdict = admission.verdict
    return list(pins.values())


# --- the plan ----------------------------------------------------------------------------------


def compose_argv(args: ComposeArgs, files: Sequence[str], override: Path) -> list[str]:
    """The user's command with every file named and the override last."""
    file_args = [a for f in files for a in ("-f", f)]
    return [*file_args, "-f", str(override), *args.global_argv(drop_files=True),
            *([args.subcommand] if args.subcommand else []), *args.rest]


def plan_compose(args: list[str], *, config: Config | None = None,
                 where: Paths | None = None, gate: Gate | None = None) -> Plan:
    """The compose command to exec; raises :class:`SafeDockerError` to refuse."""
    from safedocker._docker.binary import real_docker
    from safedocker.policy.config import load_config
    from safedocker.policy.paths import paths

    parsed = parse_args(args)
    docker = real_docker()
    compose = find_compose(docker)
    if parsed.help or parsed.subcommand not in VERIFIED_SUBCOMMANDS:
        return make_plan(compose, args)
    where = where or paths()
    config = config or load_config(where)
    if config.mode is Mode.OFF:
        return make_plan(compose, args)
    files = parsed.files
    if "-" in files:
        raise UsageError("compose file from standard input is not supported",
                         why="the project is read twice: once to verify, once to run",
                         hint="write it to a file and pass -f FILE")
    if not files:
        directory = parsed.values("--project-directory")
        files = default_files(Path(directory[-1]) if directory else Path.cwd(), os.environ)
    project = load_project(compose, docker, parsed, files)
    argv = ["compose", *args]
    pins = verify_services(project, parsed, config, where, files, argv,
                           separator="-" if compose.json_config else "_", gate=gate)
    document = override_document(pins)
    if not document["services"]:
        return make_plan(compose, args)
    override = write_override(where.state_dir, document)
    return make_plan(compose, compose_argv(parsed, files, override))


# docker's global flags that compose honours through the environment instead.
_GLOBAL_ENV = {"--host": "DOCKER_HOST", "--context": "DOCKER_CONTEXT", "--config": "DOCKER_CONFIG"}
_GLOBAL_HARMLESS = {"--debug", "--log-level"}


def hoist_docker_globals(argv: Sequence[str]) -> list[str]:
    """``docker -H x compose up`` → ``compose up`` with DOCKER_HOST=x in the environment.

    The shim sees docker's global flags before ``compose``; passing that line through
    would start unverified images, so the flags become what compose reads from the
    environment, and a flag that cannot be carried that way is refused.
    """
    from safedocker._docker.argv import global_options, split_globals

    for option in global_options(argv):
        if option.name in _GLOBAL_ENV and option.value is not None:
            os.environ[_GLOBAL_ENV[option.name]] = option.value
        elif option.name not in _GLOBAL_HARMLESS:
            raise UsageError(
                f"cannot pass docker's {option.name} to compose through safe-docker",
                hint="use DOCKER_HOST / DOCKER_CONTEXT / DOCKER_TLS_VERIFY and DOCKER_CERT_PATH",
            )
    return list(argv[split_globals(argv).command_index:])
