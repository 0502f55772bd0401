"""``safe-docker compose``: compose runs exactly the model that was verified, pinned.

1. The command line is read with an allowlist (gate/compose_argv.py) as the compose that
   will run reads it (the v2 plugin or the standalone 1.x). Anything it does not know is
   refused in enforce mode (exit 2); in warn mode that is the gate's one warning line, and
   the user's words go to compose. Compose always gets the canonical spelling
   (``--opt=value``), never the user's words, once they are read.
2. Read-only and stop/remove subcommands (PASS) go to compose as they are.
3. For the rest (VERIFY: up, create, run, pull, scale, watch, build; MAY_START: start and
   restart when a target service has no container) the model is taken from compose ONCE:
   ``config`` with the user's files, project name and directory, profiles, and copies of
   the env files it would read (``--env-file``, COMPOSE_ENV_FILES, else ``.env``: an empty
   file when there is none), read bounded (16 MiB, 300 s: N12). Every service compose may
   act on goes through the gate (``admit_all``: one refusal refuses the whole command
   before anything is created). Services with ``build:`` are refused in enforce mode
   unless compose is told not to build (``--no-build``, ``pull``).
4. ONE resolved file of ours is written into a fresh private directory (mkdtemp under
   ``<state>/compose``, 0700; the file O_EXCL: N6): the model with each image pinned
   (``repo@sha256:…``), GPU reservations where policy says so, and only the services that
   are active (no profile, an enabled profile, named on the command line, or needed by
   one), their ``profiles`` removed, so that the services compose starts are exactly the
   services verified (R1). Compose then runs with only that file, ``--project-directory``,
   the project name and the env-file copies: never the user's files again (N5: a FIFO or a
   racing writer cannot serve one model to ``config`` and another to the run). The
   directory is removed when compose exits.
"""

from __future__ import annotations

import os
import re
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
from safedocker.gate.compose_argv import (
    ComposeArgvError,
    ComposeCommand,
    Flavour,
    ImageEffect,
    SubcommandKind,
    canonical_argv,
    config_argv,
    parse_compose_argv,
    resolved_argv,
)
from safedocker.gate.compose_model import (
    MAX_CONFIG_OUTPUT,
    Source,
    Workspace,
    dotenv_value,
    read_model,
    refuse_alias_bomb,
    refuse_special_file,
    render,
)
from safedocker.gate.handoff import Plan
from safedocker.policy.model import Action, Mode

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from safedocker.gate.decide import Admission, Gate
    from safedocker.gpu.detect import HostGpu
    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths
    from safedocker.verify.verdict import Verdict

CONFIG_TIMEOUT = 300.0  # compose config: a project with many files and remote includes
PS_TIMEOUT = 60.0
MAX_PS_OUTPUT = 1024 * 1024
DEFAULT_FILES: Mapping[Flavour, tuple[str, ...]] = {
    Flavour.V2: ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"),
    Flavour.V1: ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"),
}
OVERRIDE_FILES: Mapping[Flavour, tuple[str, ...]] = {
    Flavour.V2: ("compose.override.yaml", "compose.override.yml",
                 "docker-compose.override.yaml", "docker-compose.override.yml"),
    Flavour.V1: ("docker-compose.override.yml", "docker-compose.override.yaml",
                 "compose.override.yml", "compose.override.yaml"),
}
RESOLVED_FILE = "compose.yml"
# Top-level keys of a resolved model that act only through the services (plus x-*).
_TOP_LEVEL = frozenset({"name", "version", "services", "networks", "volumes", "secrets",
                        "configs"})
# Service keys that name another service compose then needs (it fails without it).
_SERVICE_LINKS = ("network_mode", "pid", "ipc")
_BUILD_HINT = ("build the image first with `docker build -t NAME …` through safe-docker "
               "(its base images are verified), accept it with `safe-docker policy allow "
               "NAME`, and run compose with --no-build")


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

    @property
    def flavour(self) -> Flavour:
        return Flavour.V2 if self.json_config else Flavour.V1

    @property
    def source(self) -> Source:
        return Source.COMPOSE_V2 if self.json_config else Source.COMPOSE_V1

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


def make_plan(compose: Compose, argv: Sequence[str], workdir: Path | None = None) -> Plan:
    """A one-command plan: `docker compose …` or the standalone binary."""
    return Plan(commands=((*compose.prefix, *argv),), binary=compose.binary,
                workdir=None if workdir is None else str(workdir))


# --- the project compose would read ----------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What ``config`` and the run read besides the command line: absolute paths."""

    files: tuple[str, ...]
    project_directory: str
    env_files: tuple[str, ...]  # our copies, in the workspace
    env: Mapping[str, str]  # the copies' variables (for COMPOSE_* compose reads from them)


def _env_sources(cmd: ComposeCommand, environ: Mapping[str, str], directory: Path) -> list[str]:
    """The env files compose reads for this command (paths as given, relative to cwd)."""
    if cmd.env_files:
        return list(cmd.env_files)
    if cmd.flavour is Flavour.V2 and environ.get("COMPOSE_ENV_FILES"):
        return [f for f in environ["COMPOSE_ENV_FILES"].split(",") if f]
    dotenv = directory / ".env"
    return [str(dotenv)] if dotenv.exists() else []


def project_inputs(cmd: ComposeCommand, workspace: Workspace,
                   environ: Mapping[str, str]) -> Inputs:
    """The files, project directory and env files as compose finds them (compose 1.29's
    ``get_project_dir``/``Environment.from_env_file``; v2's ``ProjectOptions``), with every
    env file copied once into ``workspace`` (an empty one when there is none)."""
    cwd = Path.cwd()
    given = list(cmd.files) or [f for f in environ.get("COMPOSE_FILE", "").split(
        environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep) if f]
    if "-" in given:
        raise UsageError("compose file from standard input is not supported",
                         why="the project is read twice: once to verify, once to run",
                         hint="write it to a file and pass -f FILE")
    first_dir = Path(os.path.abspath(given[0])).parent if given else None
    directory = Path(os.path.abspath(cmd.project_directory)) if cmd.project_directory \
        else first_dir or cwd
    copies: list[str] = []
    env: dict[str, str] = {}
    from safedocker.gate.compose_model import read_env_file

    for index, source in enumerate(_env_sources(cmd, environ, directory)):
        data = read_env_file(str(cwd / source))
        copies.append(str(workspace.write(f"env-{index}", data)))
        for key in ("COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR", "COMPOSE_PROFILES",
                    "COMPOSE_PROJECT_NAME"):
            value = dotenv_value(data, key)
            if value is not None:
                env[key] = value
    if not copies:
        copies.append(str(workspace.write("env-0", b"")))
    if not given and env.get("COMPOSE_FILE"):  # compose reads COMPOSE_FILE from .env too
        separator = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        given = [f for f in env["COMPOSE_FILE"].split(separator) if f]
    files = [os.path.abspath(f) for f in given] or default_files(directory, cmd.flavour)
    for name in files:
        refuse_special_file(name, what="compose file",
                            hint="write the project to a file (compose reads it more than once)")
    if not cmd.project_directory:
        directory = Path(files[0]).parent
    return Inputs(tuple(files), str(directory), tuple(copies), env)


def default_files(directory: Path, flavour: Flavour) -> list[str]:
    """The files compose reads when no file is named: the first default name found in
    ``directory`` or above, and its override."""
    directory = Path(os.path.abspath(directory))
    for candidate_dir in (directory, *directory.parents):
        found = next((candidate_dir / n for n in DEFAULT_FILES[flavour]
                      if (candidate_dir / n).exists()), None)
        if found is not None:
            overrides = [candidate_dir / n for n in OVERRIDE_FILES[flavour]
                         if (candidate_dir / n).exists()]
            return [str(found), *(str(o) for o in overrides[:1])]
    raise UsageError("no compose file found",
                     why=f"none of {', '.join(DEFAULT_FILES[flavour])} in {directory} or above",
                     hint="pass -f FILE")


def load_model(compose: Compose, docker: str, args: Sequence[str],
               files: Sequence[str]) -> dict[str, Any]:
    """The resolved model compose prints for ``config`` ``args`` (the files ``files``).

    Compose's output is read from the pipe with a cap (:data:`MAX_CONFIG_OUTPUT`: compose
    is stopped there, its output never held whole) and an end (:data:`CONFIG_TIMEOUT`).
    """
    from safedocker._internal.processes import OutputTooLarge, run_bounded

    for name in files:
        refuse_alias_bomb(name)
    argv = compose.argv(docker, args)
    try:
        with open(os.devnull, "rb") as nothing:
            proc = run_bounded(argv, what="compose config", timeout=CONFIG_TIMEOUT,
                               max_stdout=MAX_CONFIG_OUTPUT, stdin=nothing,
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
    return read_model(proc.stdout, compose.source)


def read_project(directory: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The resolved model of the compose project in ``directory`` (COMPOSE_FILE, else the
    default file compose picks there or above), as compose's ``config`` prints it: for
    reading which images a project names (``policy init --compose``), never for running."""
    from safedocker._docker.binary import real_docker

    docker = real_docker()
    compose = find_compose(docker, environ)
    given = [f for f in environ.get("COMPOSE_FILE", "").split(
        environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep) if f]
    files = [os.path.join(directory, f) for f in given] or default_files(directory,
                                                                          compose.flavour)
    for name in files:
        refuse_special_file(name, what="compose file",
                            hint="write the project to a file (compose reads it more than once)")
    cmd = parse_compose_argv(["config"], compose.flavour)
    return load_model(compose, docker, config_argv(cmd, files=files), files)


# --- which services compose acts on ----------------------------------------------------------


def _profiles(cmd: ComposeCommand, environ: Mapping[str, str],
              inputs: Inputs) -> frozenset[str]:
    if cmd.profiles:
        return frozenset(p for v in cmd.profiles for p in v.split(",") if p)
    value = environ.get("COMPOSE_PROFILES") or inputs.env.get("COMPOSE_PROFILES") or ""
    return frozenset(p.strip() for p in value.split(",") if p.strip())


def _needs(service: Mapping[str, Any]) -> set[str]:
    """The services ``service`` needs: depends_on, links, volumes_from, service:NAME."""
    needed: set[str] = set()
    depends = service.get("depends_on") or {}
    needed.update(str(d) for d in depends)  # a list or a mapping of names
    for link in service.get("links") or []:
        needed.add(str(link).split(":", 1)[0])
    for source in service.get("volumes_from") or []:
        text = str(source)
        if not text.startswith("container:"):
            needed.add(text.removeprefix("service:").split(":", 1)[0])
    for key in _SERVICE_LINKS:
        value = service.get(key)
        if isinstance(value, str) and value.startswith("service:"):
            needed.add(value.removeprefix("service:"))
    return needed


def active_services(model: Mapping[str, Any], cmd: ComposeCommand,
                    profiles: frozenset[str]) -> list[str]:
    """The services compose may act on: those without a profile or with an enabled one,
    those named on the command line (compose enables their profiles), and everything they
    need, transitively. A named service the model lacks is refused."""
    services: Mapping[str, Any] = model.get("services") or {}
    for name in cmd.services:
        if name not in services:
            raise Refused(f"refused compose {cmd.subcommand} {name}",
                          why="the service is not in the resolved project, so its image "
                          "cannot be verified", hint="check --profile and the compose files")
    wanted = [name for name, service in services.items() if isinstance(service, dict) and (
        "*" in profiles or not service.get("profiles")
        or profiles.intersection(map(str, service.get("profiles") or ())))]
    return closure(services, [*wanted, *cmd.services])


def closure(services: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """``names`` and every service they need, transitively, sorted."""
    wanted = list(names)
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen or name not in services:
            continue  # compose itself fails on a missing dependency
        seen.add(name)
        service = services[name]
        if isinstance(service, dict):
            wanted.extend(_needs(service))
    return sorted(seen)


def resolved_model(model: Mapping[str, Any], active: Iterable[str],
                   pins: Sequence[ServicePin]) -> dict[str, Any]:
    """The file compose runs: only the ``active`` services, without profiles, each image
    pinned and GPUs reserved as the gate said."""
    services: Mapping[str, Any] = model.get("services") or {}
    out = {key: value for key, value in model.items() if key != "services"}
    kept: dict[str, Any] = {}
    for name in active:
        service = dict(services[name])
        service.pop("profiles", None)
        kept[name] = service
    for pin in pins:
        service = kept[pin.service]
        if pin.pinned is not None:
            service["image"] = pin.pinned
        if pin.gpu_all or pin.gpu_devices:
            device: dict[str, Any] = {"driver": "nvidia", "capabilities": ["gpu"]}
            if pin.gpu_devices:
                device["device_ids"] = list(pin.gpu_devices)
            else:
                device["count"] = "all"
            deploy = dict(service.get("deploy") or {})
            resources = dict(deploy.get("resources") or {})
            reservations = dict(resources.get("reservations") or {})
            reservations["devices"] = [*(reservations.get("devices") or []), device]
            resources["reservations"] = reservations
            deploy["resources"] = resources
            service["deploy"] = deploy
    out["services"] = kept
    return out


# --- verification ------------------------------------------------------------------------------


@dataclass
class ServicePin:
    service: str
    image: str
    pinned: str | None = None  # what the gate hands docker: repo@sha256:…, an ID, a full name
    gpu_devices: tuple[str, ...] | None = None  # None: no GPU reservation
    gpu_all: bool = False
    verdict: Verdict | None = field(default=None, repr=False)


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
            gate: Gate) -> None:
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
        image_config = gate.image_config(verdict)
        flags = gpu_flags(_service_gpu_options(service), image_config, host, None, mode)
        if flags.gives_gpus:
            check_requirements(image_config, host, run_env=_service_env(service),
                                   devices=flags.devices)
        if flags.args:
            pin.gpu_all = flags.devices is None
            pin.gpu_devices = flags.devices



def _project_name(cmd: ComposeCommand, model: Mapping[str, Any], inputs: Inputs,
                  environ: Mapping[str, str]) -> str:
    """The project name compose uses: -p, the model's (v2), COMPOSE_PROJECT_NAME (the
    environment, then the env file), else the project directory's name, normalized."""
    if cmd.project_name:
        return cmd.project_name
    if isinstance(model.get("name"), str) and model["name"]:
        return str(model["name"])
    given = environ.get("COMPOSE_PROJECT_NAME") or inputs.env.get("COMPOSE_PROJECT_NAME")
    base = given or Path(inputs.project_directory).name
    return re.sub(r"[^-_a-z0-9]", "", base.lower())


def _builds(cmd: ComposeCommand) -> bool:
    """Whether compose may build images for this command (``build:`` sections)."""
    if cmd.subcommand == "pull":
        return False
    return not any(effect is ImageEffect.NO_BUILD for _, _, effect in cmd.image_options)


def _refuse_unverifiable(model: Mapping[str, Any], active: Sequence[str],
                        argv: Sequence[str], gate: Gate) -> None:
    """What compose would run besides the services' images: an allowlist of top-level keys
    (a newer compose's ``models:`` pulls and serves models through docker's model runner),
    and no ``provider:`` service (compose runs the plugin or binary its ``type`` names)."""
    for key in model:
        if key not in _TOP_LEVEL and not str(key).startswith("x-"):
            gate.refuse(argv, Refused(
                f"refused compose project with top-level {str(key)!r}",
                why="compose would act on it beyond the services' images, which is not "
                "verified", hint="remove it from the compose files"))
    services: Mapping[str, Any] = model.get("services") or {}
    for name in active:
        service = services[name]
        if isinstance(service, dict) and service.get("provider") is not None:
            gate.refuse(argv, Refused(
                f"refused compose provider service {name!r}",
                why="compose runs the plugin or binary it names, with nothing to verify",
                hint="run the provider yourself, or use a service with a signed image"))


def verify_services(model: Mapping[str, Any], active: Sequence[str], cmd: ComposeCommand,
                    config: Config, project: str, argv: Sequence[str], *,
                    gate: Gate) -> list[ServicePin]:
    """Every active service's image through the gate, all or nothing: in enforce mode the
    first refusal is raised before anything runs.

    A service with ``build:`` is refused when compose may build it (its base images would
    be pulled unverified); else its image (``image:``, or the name compose gives what it
    builds: ``<project>-<service>`` in v2, ``<project>_<service>`` in 1.x) is decided."""
    from safedocker.gate.decide import ImageRequest, Origin
    from safedocker.reference import parse_reference

    services: Mapping[str, Any] = model.get("services") or {}
    _refuse_unverifiable(model, active, argv, gate)
    separator = "-" if cmd.flavour is Flavour.V2 else "_"
    gpus = _Gpu()
    pins: dict[str, ServicePin] = {}
    requests: list[ImageRequest] = []
    for service_name in active:
        service = services[service_name]
        if not isinstance(service, dict):
            continue
        image = service.get("image")
        label = f"service {service_name!r}"
        if service.get("build") is not None:
            name = image if isinstance(image, str) and image else \
                f"{project}{separator}{service_name}"
            if _builds(cmd):
                gate.refuse(argv, Refused(
                    f"refused compose build of {name} ({label})",
                    why="compose would build it, pulling its base images unverified",
                    hint=_BUILD_HINT))
                continue
            if not isinstance(image, str) or not image:
                try:
                    decision = config.policy.decide(parse_reference(name))
                except UsageError:
                    decision = None
                if decision is None or decision.action is not Action.ACCEPT:
                    gate.refuse(argv, Refused(
                        f"refused locally built image {name} ({label})",
                        why="compose builds it from source, so there is no signature to "
                        "verify", hint=f"`safe-docker policy allow {name}` to accept images "
                        "built here, or use a signed image without build:"))
                continue
        if not isinstance(image, str) or not image:
            continue
        platform = service.get("platform") if isinstance(service.get("platform"), str) else None
        requests.append(ImageRequest.parse(image, command=argv, origin=Origin.COMPOSE,
                                           platform=platform, label=label))
        pins[label] = ServicePin(service_name, image)
    # compose v2 (2.35+) `volumes: - type: image`: another image's files in the container
    # (pulled when missing), so its source is verified and pinned as a service's image is.
    mounts: dict[str, dict[str, Any]] = {}
    for service_name in active:
        service = services[service_name]
        volumes = service.get("volumes") if isinstance(service, dict) else None
        for number, volume in enumerate(volumes if isinstance(volumes, list) else ()):
            if not isinstance(volume, dict) or volume.get("type") != "image":
                continue
            source, label = volume.get("source"), f"service {service_name!r} volume {number}"
            if not isinstance(source, str) or not source:
                gate.refuse(argv, Refused(f"refused compose image volume ({label})",
                                          why="it names no image to verify",
                                          hint="give the volume a source image"))
                continue
            requests.append(ImageRequest.parse(source, command=argv, origin=Origin.COMPOSE,
                                               label=label))
            mounts[label] = volume

    def check(admission: Admission) -> None:
        pin = pins.get(admission.request.label)
        if pin is None:
            return  # an image volume: no GPU of its own
        verdict = admission.verdict
        if cmd.subcommand == "pull" or verdict is None or not verdict.accepted:
            return
        try:
            gpus.pin(pin, services[pin.service], verdict, gate)
        except SafeDockerError as error:
            error.what = f"{error.what} ({admission.request.label})"
            raise

    for admission in gate.admit_all(requests, check=check):
        mount = mounts.get(admission.request.label)
        if mount is not None:
            mount["source"] = admission.target  # the resolved file mounts what was verified
            continue
        pin = pins[admission.request.label]
        pin.pinned = admission.target
        pin.verdict = admission.verdict
    return list(pins.values())


def all_have_containers(docker: str, project: str, services: Iterable[str]) -> bool:
    """Whether every one of ``services`` of ``project`` has a container (any state), asked
    of the engine by compose's labels."""
    from safedocker._internal.processes import run_bounded

    for service in services:
        argv = [docker, "ps", "-a", "-q", "--filter",
                f"label=com.docker.compose.project={project}", "--filter",
                f"label=com.docker.compose.service={service}"]
        try:
            proc = run_bounded(argv, what="docker ps", timeout=PS_TIMEOUT,
                               max_stdout=MAX_PS_OUTPUT)
        except (OSError, SafeDockerError):
            return False  # not known: verify
        if proc.returncode != 0 or not proc.stdout.strip():
            return False
    return True


# --- the plan ----------------------------------------------------------------------------------


def _open_gate(config: Config, where: Paths) -> Gate:
    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI
    from safedocker.gate.decide import Gate

    # docker's -H/--context reach compose (and so this engine) through the environment.
    return Gate.open(DockerCLI(real_docker()), config=config, where=where)


def plan_compose(args: list[str], *, config: Config | None = None,
                 where: Paths | None = None, gate: Gate | None = None,
                 environ: Mapping[str, str] | None = None) -> Plan:
    """The compose command to run; raises :class:`SafeDockerError` to refuse."""
    from safedocker._docker.binary import real_docker
    from safedocker.policy.config import load_config
    from safedocker.policy.paths import paths

    env = os.environ if environ is None else environ
    docker = real_docker()
    compose = find_compose(docker)
    where = where or paths()
    config = config or load_config(where)
    if config.mode is Mode.OFF:
        return make_plan(compose, args)
    argv = ["compose", *args]
    try:
        cmd = parse_compose_argv(args, compose.flavour)
    except ComposeArgvError as error:
        gate = gate or _open_gate(config, where)
        gate.refuse(argv, error)  # raised in enforce mode; one warning line in warn mode
        return make_plan(compose, args)
    if not cmd.needs_verification:
        return make_plan(compose, canonical_argv(cmd))
    gate = gate or _open_gate(config, where)
    workspace = Workspace.create(where.state_dir)
    try:
        return _plan_verified(cmd, compose, docker, config, gate, workspace, env, argv)
    except BaseException:
        workspace.remove()
        raise


def _plan_verified(cmd: ComposeCommand, compose: Compose, docker: str, config: Config,
                   gate: Gate, workspace: Workspace, environ: Mapping[str, str],
                   argv: Sequence[str]) -> Plan:
    inputs = project_inputs(cmd, workspace, environ)
    model = load_model(compose, docker, config_argv(
        cmd, files=inputs.files, env_files=inputs.env_files,
        project_directory=inputs.project_directory, all_profiles=cmd.flavour is Flavour.V2),
        inputs.files)
    active = active_services(model, cmd, _profiles(cmd, environ, inputs))
    project = _project_name(cmd, model, inputs, environ)
    pins: list[ServicePin] = []
    match cmd.kind:
        case SubcommandKind.MAY_START:
            targets = closure(model.get("services") or {}, cmd.services or active)
            if not all_have_containers(docker, project, targets):
                pins = verify_services(model, active, cmd, config, project, argv, gate=gate)
        case SubcommandKind.VERIFY:
            pins = verify_services(model, active, cmd, config, project, argv, gate=gate)
        case SubcommandKind.PASS:  # pragma: no cover - not verified: plan_compose
            pass
    document = resolved_model(model, active, pins)
    ours = workspace.write(RESOLVED_FILE, render(document, compose.source))
    run = resolved_argv(cmd, file=str(ours), project_directory=inputs.project_directory,
                        env_files=inputs.env_files, project_name=project)
    return make_plan(compose, run, workspace.path)


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
