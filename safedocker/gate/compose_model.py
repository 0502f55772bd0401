"""The compose model: read from what compose itself resolved, written back as the ONE file
compose (or ``docker stack deploy``) then runs.

Readers, one per source (:class:`Source`), each bounded (the caller reads at most
:data:`MAX_CONFIG_OUTPUT` bytes) and alias-safe (YAML aliases may add at most
:data:`YAML_ALIAS_EXPANSION_MAX` nodes; a recursive alias is refused):

* compose v2's ``config --format json``: strict JSON (no duplicate members);
* docker-compose 1.x's ``config``: YAML read by PyYAML's safe loader (YAML 1.1), the
  loader compose 1.x itself uses;
* ``docker stack config``: YAML printed by Go (go-yaml), read with the YAML 1.2 core
  schema as Go reads it (``yes`` is a string, ``<<`` an ordinary key).

Dollars. Compose interpolates ``$VAR``/``${VAR}`` in every string *value* each time it
reads a file (never in keys), so the file we write must say, once interpolated, exactly
what the resolved model says. The readers return the model in that "file form":

* v2 escapes every ``$`` of its output (``$$``), keys too: values are kept, keys
  unescaped;
* 1.x escapes every string it prints, keys too, except what it prints through ``repr``
  (the short syntax of ``volumes``, ``volumes_from``, ``security_opt``): those are escaped
  here, keys unescaped;
* ``stack config`` escapes nothing: every value is escaped here, keys kept.

So no variable, .env file or environment at run time can change what was verified.

Writer: every command gets a :class:`Workspace`, a directory made fresh by ``mkdtemp``
under ``<state>/compose`` (0700, unpredictable name); each file in it is created with
``O_EXCL|O_NOFOLLOW`` (0600). A file found on disk is never used (attack N6: a planted
override under a predictable name). Workspaces older than a day are removed.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_CONFIG_OUTPUT = 16 * 1024 * 1024
YAML_ALIAS_EXPANSION_MAX = 100_000  # nodes that aliases may add to a resolved model
MAX_ENV_FILE = 1024 * 1024  # an env file compose reads, copied into the workspace
WORKSPACE_PREFIX = "run-"
WORKSPACE_MAX_AGE = 24 * 3600.0
# Characters a YAML reader (PyYAML, go-yaml) would not keep as they are in a double-quoted
# scalar written raw: C1 controls and DEL are not printable, NEL/LS/PS are line breaks.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# 1.x prints these service keys' short-syntax strings through repr(), unescaped.
_V1_UNESCAPED_LISTS = ("volumes", "volumes_from", "security_opt")


class Source(enum.Enum):
    """Who printed the resolved model."""

    COMPOSE_V2 = "docker compose config"
    COMPOSE_V1 = "docker-compose config"
    STACK = "docker stack config"


# --- reading -----------------------------------------------------------------------------------


def read_model(data: bytes, source: Source) -> dict[str, Any]:
    """The resolved model ``source`` printed, in file form (see the module's docstring);
    ConfigError (78) when it cannot be read or is not a model."""
    from safedocker._internal import strictjson

    if len(data) > MAX_CONFIG_OUTPUT:
        raise ConfigError(f"{source.value} output is too large",
                          why=f"more than {MAX_CONFIG_OUTPUT} bytes")
    try:
        match source:
            case Source.COMPOSE_V2:
                model = strictjson.loads(data, max_bytes=MAX_CONFIG_OUTPUT)
            case Source.COMPOSE_V1:
                model = load_yaml(data.decode("utf-8", "replace"), core_schema=False)
            case Source.STACK:
                model = load_yaml(data.decode("utf-8", "replace"), core_schema=True)
        if not isinstance(model, dict) or not isinstance(model.get("services", {}), dict):
            raise ConfigError(f"unexpected {source.value} output", why="no services table")
        match source:
            case Source.COMPOSE_V2:
                out: dict[str, Any] = _rewrite(model, key=_unescape)
            case Source.COMPOSE_V1:
                out = _rewrite(model, key=_unescape)
                _escape_v1_repr_strings(out)
            case Source.STACK:
                out = _rewrite(model, value=_escape)
        return out
    except (ValueError, RecursionError) as e:  # JSON and YAML errors alike (load_yaml)
        raise ConfigError(f"cannot parse {source.value} output",
                          why=str(e) if isinstance(e, ValueError) else "nested too deeply"
                          ) from e


def _escape(text: str) -> str:
    return text.replace("$", "$$")


def _unescape(text: str) -> str:
    return text.replace("$$", "$")


def _keep(text: str) -> str:
    return text


def _rewrite(node: Any, *, key: Callable[[str], str] = _keep,
             value: Callable[[str], str] = _keep) -> Any:
    """``node`` with ``key`` applied to every mapping key and ``value`` to every string
    value (a depth the parsers allowed may still be too deep here: RecursionError)."""
    if isinstance(node, dict):
        out = {key(k) if isinstance(k, str) else k: _rewrite(v, key=key, value=value)
               for k, v in node.items()}
        if len(out) != len(node):
            raise ValueError("two keys are the same once their $ are read")
        return out
    if isinstance(node, list):
        return [_rewrite(item, key=key, value=value) for item in node]
    return value(node) if isinstance(node, str) else node


def _escape_v1_repr_strings(model: dict[str, Any]) -> None:
    for service in (model.get("services") or {}).values():
        if not isinstance(service, dict):
            continue
        for name in _V1_UNESCAPED_LISTS:
            items = service.get(name)
            if isinstance(items, list):
                service[name] = [_escape(i) if isinstance(i, str) else i for i in items]


def load_yaml(text: str, *, core_schema: bool) -> Any:
    """One YAML document, refused (ValueError) when its aliases would add more than
    :data:`YAML_ALIAS_EXPANSION_MAX` nodes; ``core_schema``: YAML 1.2's core schema (as
    Go reads it) instead of PyYAML's YAML 1.1."""
    import yaml

    loader = (_core_loader() if core_schema else yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_alias_expansion(node)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ValueError(str(e)) from e
    finally:
        loader.dispose()


@functools.cache
def _core_loader() -> type[Any]:
    """PyYAML's safe loader with YAML 1.2's core schema: null, true/false, decimal/0o/0x
    integers, floats; everything else (``yes``, ``2024-01-01``, ``<<``, ``=``) a string."""
    import yaml

    class CoreLoader(yaml.SafeLoader):
        yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def integer(loader: Any, node: Any) -> int:
        return int(loader.construct_scalar(node), 0)

    resolvers = (
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$",
         list("-+0123456789")),
        ("tag:yaml.org,2002:float",
         r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+.0123456789")),
    )
    for tag, pattern, first in resolvers:
        CoreLoader.add_implicit_resolver(tag, re.compile(pattern), first)
    CoreLoader.add_constructor("tag:yaml.org,2002:int", integer)
    return CoreLoader


def check_alias_expansion(root: Any) -> None:
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


def refuse_special_file(name: str, *, what: str, hint: str) -> None:
    """Refuse a project file that is not a regular file (a FIFO, /dev/fd/N, a device):
    compose and ``docker stack`` read their files more than once (compose 1.29 twice for
    ``config`` alone), so a pipe could serve different projects to different reads, or
    hang the read. A file swapped later changes nothing: they run on our resolved copy
    (N5). A missing file is left to them to report."""
    try:
        info = os.stat(name)
    except OSError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"refusing the {what} {name}", why="it is not a regular file",
                          hint=hint)


def refuse_alias_bomb(name: str) -> None:
    """Refuse a compose file whose YAML aliases would expand past the bound before
    compose itself expands it (compose 1.x spent minutes and ~900 MB on a 451-byte file).

    Only regular files are read (a FIFO must not be drained here), and only what PyYAML
    can compose is judged: anything else is left to compose to accept or refuse.
    """
    import yaml

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
        check_alias_expansion(node)
    except ValueError as e:
        raise ConfigError(f"refusing the compose file {name}", why=str(e),
                          hint="expand the anchors it repeats, or use fewer aliases") from e


# --- writing -----------------------------------------------------------------------------------


def render(model: dict[str, Any], source: Source) -> bytes:
    """The model as a file its reader takes back unchanged: YAML by PyYAML for compose 1.x
    (which reads it with PyYAML), JSON for the Go readers (JSON is YAML 1.2), with the
    characters a YAML reader would change escaped."""
    try:
        match source:
            case Source.COMPOSE_V1:
                import yaml

                text: str = yaml.safe_dump(model, default_flow_style=False, sort_keys=False,
                                           allow_unicode=False, width=1 << 30)
            case Source.COMPOSE_V2 | Source.STACK:
                text = json.dumps(model, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
                text = _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    except (ValueError, TypeError, RecursionError) as e:
        raise ConfigError(f"cannot write the resolved {source.value} model",
                          why=str(e) if not isinstance(e, RecursionError)
                          else "nested too deeply") from e
    if _SURROGATE.search(text):
        raise ConfigError(f"cannot write the resolved {source.value} model",
                          why="it holds text that is not Unicode (a lone surrogate)")
    return text.encode("utf-8")


@dataclass(frozen=True)
class Workspace:
    """A directory of one command's own files, made fresh (mkdtemp: 0700, a name nobody
    can guess); nothing in it was there before this command."""

    path: Path

    @classmethod
    def create(cls, state_dir: Path) -> Workspace:
        base = state_dir / "compose"
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
            _prune(base)
            return cls(Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX, dir=base)))
        except OSError as e:
            from safedocker.errors import reason_of

            raise ConfigError(f"cannot make a private directory under {base}",
                              why=reason_of(e),
                              hint="check the state directory (SAFE_DOCKER_STATE_DIR)") from e

    def write(self, name: str, data: bytes) -> Path:
        """A new file ``name`` holding ``data``; never one that exists (O_EXCL)."""
        path = self.path / name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as e:
            from safedocker.errors import reason_of

            raise ConfigError(f"cannot write {path}", why=reason_of(e)) from e
        return path

    def copy_env_file(self, source: str, index: int) -> Path:
        """A copy of the env file compose reads, read once here (regular files only,
        at most :data:`MAX_ENV_FILE`): compose reads the copy for ``config`` and for the
        run, so a file that changes between the two (or a FIFO) cannot change either."""
        return self.write(f"env-{index}", read_env_file(source))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def read_env_file(name: str) -> bytes:
    """An env file's bytes: a regular file only, at most :data:`MAX_ENV_FILE`."""
    hint = "make it a regular file (compose reads it twice: to verify, then to run)"
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as e:
        raise UsageError(f"env file {name} not found", hint="check --env-file") from e
    except OSError as e:
        from safedocker.errors import reason_of

        raise ConfigError(f"cannot read env file {name}", why=reason_of(e)) from e
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfigError(f"refusing env file {name}", why="it is not a regular file",
                              hint=hint)
        data = handle.read(MAX_ENV_FILE + 1)
    if len(data) > MAX_ENV_FILE:
        raise ConfigError(f"refusing env file {name}",
                          why=f"it is larger than {MAX_ENV_FILE} bytes")
    return data


def _prune(base: Path) -> None:
    """Remove this user's workspaces older than :data:`WORKSPACE_MAX_AGE` (compose reads
    its file when it starts; nothing reads it a day later)."""
    cutoff = time.time() - WORKSPACE_MAX_AGE
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(WORKSPACE_PREFIX) and _older(entry, cutoff):
            shutil.rmtree(entry.path, ignore_errors=True)


def _older(entry: os.DirEntry[str], cutoff: float) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False) and \
            entry.stat(follow_symlinks=False).st_mtime < cutoff
    except OSError:
        return False


_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")


def dotenv_value(data: bytes, key: str) -> str | None:
    """``key``'s value in an env file, read simply (``KEY=value``, quotes, ``export``,
    comments): only to name the project and find its files as compose does, never to
    decide what runs (compose reads the same copy itself)."""
    found: str | None = None
    for line in data.decode("utf-8-sig", "replace").splitlines():
        match = _DOTENV_LINE.match(line)
        if match is None or match.group(1) != key:
            continue
        value = match.group(2)
        if value[:1] in ("'", '"') and value.endswith(value[0]) and len(value) >= 2:
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        found = value
    return found
