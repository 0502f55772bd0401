"""docker's command tree as data: what each command can do to images. Standard library only.

ONE source of truth for routing: the Python router (:mod:`safedocker._docker.route`) and
the shell code (``safe-docker shell-init bash|zsh|fish|wrapper``, rendered from this
table by :mod:`safedocker.ops.shellinit`) both read :data:`DOCKER`.

Read from docker/cli v28.5.2 (cli/command/commands/commands.go, each group's cmd.go and
every subcommand's ``Use``/``Aliases``) and docker/buildx v0.29.1 (commands/root.go).
Every word is one of:

* ``PASS``: cannot bring an image to life (lists, inspects, stops, removes, moves images
  around without running them: ``load``, ``save``, ``import``, ``tag``, ``push``…);
  docker gets the command line unchanged.
* ``VERIFY``: pulls or runs an image the command names (``run``, ``service create``,
  ``plugin install``, ``buildx create``…): parsed with the command's grammar, every
  image verified by the gate, docker handed the pinned digest.
* ``REFUSE``: brings images to life in ways safe-docker cannot verify (``buildx bake``):
  refused in enforce mode, a warning in warn mode.
* ``UNKNOWN`` (not in the table): a CLI plugin or a word of a newer docker. Refused in
  enforce mode unless the config's ``passthrough`` list names the plugin.

A management command with no subcommand only prints its help: ``PASS``.
"""

from __future__ import annotations

import enum
import os

from safedocker._docker.argv import make_flags, parse_flags, split_globals, traverse_group
from safedocker._internal.lean import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DOCKER_CLI_VERSION = "28.5.2"  # the docker/cli tag the table was read from
BUILDX_VERSION = "0.29.1"


class Kind(enum.Enum):
    PASS = "pass"  # noqa: S105 - a routing kind, not a password
    VERIFY = "verify"
    REFUSE = "refuse"
    UNKNOWN = "unknown"


P, V, R = Kind.PASS, Kind.VERIFY, Kind.REFUSE
Group = dict[str, Kind]
Node = Kind | Group


def _words(kind: Kind, spec: str) -> Group:
    return dict.fromkeys(spec.split(), kind)


# --- docker/cli v28.5.2 ---------------------------------------------------------------------

_CONTAINER: Group = {
    **_words(P, "attach commit cp diff exec export inspect kill logs ls ps list pause port "
                "prune rename restart rm remove start stats stop top unpause update wait"),
    "create": V, "run": V,
}
_IMAGE: Group = {
    **_words(P, "history import inspect load ls list prune push rm rmi remove save tag"),
    "build": V, "pull": V,
}
_BUILDER: Group = {"build": V, "prune": P}

DOCKER: dict[str, Node] = {
    # Shorthands and the legacy top-level commands.
    **_words(P, "exec ps push images login logout search version info attach commit cp diff "
                "events export history import inspect kill load logs pause port rename "
                "restart rm rmi save start stats stop tag top unpause update wait"),
    "run": V, "create": V, "pull": V, "build": V,
    # A stub that docker turns into `buildx bake` when buildx is installed.
    "bake": R,
    # cobra's own: help prints help (a plugin's too); completion scripts and candidates.
    **_words(P, "help completion __complete __completeNoDesc"),
    # Management commands.
    "builder": _BUILDER,
    "checkpoint": _words(P, "create ls list rm remove"),
    "container": _CONTAINER,
    "context": _words(P, "create export import inspect ls list rm remove show update use"),
    "image": _IMAGE,
    "manifest": _words(P, "annotate create inspect push rm"),
    "network": _words(P, "connect create disconnect inspect ls list prune rm remove"),
    "plugin": {**_words(P, "disable enable inspect ls list push rm remove set"),
               # `enable` starts a plugin already installed, as `start` does a container.
               "install": V, "upgrade": V,
               # A plugin made of any local rootfs, which `enable` runs as root with the
               # host mounts its config.json asks for: nothing to verify.
               "create": R},
    # `dial-stdio` is a raw pipe to the daemon's API (what ssh:// contexts run on the far
    # side): through it anything can be pulled and run unchecked.
    "system": {**_words(P, "df events info prune"), "dial-stdio": R},
    # `trust key …` and `trust signer …` manage Notary keys: nothing runs.
    "trust": _words(P, "inspect key revoke sign signer"),
    "volume": _words(P, "create inspect ls list prune rm remove update"),
    # Swarm. `swarm join` makes this node run what another manager schedules: that
    # manager's commands are checked where they are typed, not here.
    "config": _words(P, "create inspect ls list rm remove"),
    "node": _words(P, "demote inspect ls list promote ps rm remove update"),
    "secret": _words(P, "create inspect ls list rm remove"),
    # `rollback` returns to the service's previous spec, which `create`/`update` set
    # (verified here); `scale` adds tasks of the current spec: like `start` of a container.
    "service": {**_words(P, "inspect logs ls list ps rm remove rollback scale"),
                "create": V, "update": V},
    "stack": {**_words(P, "config ls list ps rm remove down services"), "deploy": V, "up": V},
    "swarm": _words(P, "ca init join join-token leave unlock unlock-key update"),
    # CLI plugins safe-docker knows. compose is safe-docker's own path (gate/compose.py).
    "compose": V,
    "buildx": {
        "build": V, "b": V, "create": V,
        "bake": R, "f": R,
        # Experimental (BUILDX_EXPERIMENTAL): debug/dap run builds interactively.
        "debug": R, "dap": R,
        # A raw pipe to BuildKit: builds anything, unchecked.
        "dial-stdio": R,
        # Builders already created (their BuildKit image was pinned at `create`), build
        # records, and registry manifests (`imagetools create` writes, runs nothing).
        **_words(P, "rm ls use inspect stop install uninstall version prune du "
                    "imagetools history"),
    },
}

# Flags a management command accepts before its subcommand (cobra's Traverse): docker's
# groups know the persistent --help, `stack` its --orchestrator, buildx its root flags.
_GROUP_FLAGS = make_flags("help/h!", interspersed=True)
_OWN_GROUP_FLAGS = {
    "stack": make_flags("orchestrator help/h!", interspersed=True),
    "buildx": make_flags("builder debug/D! help/h!", interspersed=True),
}
# Words whose meaning docker's config `aliases` (only "builder" may be aliased) and
# DOCKER_BUILDKIT change: docker forwards them to the builder plugin (cmd/docker/builder.go).
BUILDER_WORDS = frozenset({"builder", "build", "bake"})
BUILDER_ALIAS_KEY = "builder"
_UNREADABLE = "\0unreadable"  # a docker config whose aliases cannot be read for sure


class _Members(list):  # type: ignore[type-arg]
    """A JSON object's members in order (duplicates kept), as Go's decoder meets them."""


class Found(NamedTuple):
    """Where argv's command is and what it is."""

    words: tuple[str, ...]  # the command path as the table spells it: ("service", "create")
    kind: Kind
    start: int  # argv index of the first command word
    end: int  # argv index after the last command word
    plugin: str = ""  # UNKNOWN: the plugin docker would run (what `passthrough` may name)
    note: str = ""  # why the words mean what they mean (an alias), for messages


def lookup(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Found:
    """The command in ``argv`` (without the program name), read as docker reads it."""
    start = split_globals(argv).command_index
    if start >= len(argv) or argv[start].startswith("-") and len(argv[start]) > 1:
        # Global flags only (docker answers), or a global flag docker refuses.
        return Found((), Kind.PASS, start, start)
    word = argv[start]
    node = DOCKER.get(word)
    sub = _subcommand(argv, start, word) if isinstance(node, dict) else None
    if word in BUILDER_WORDS or word == "image" and sub is not None and argv[sub] == "build":
        return _builder(argv, start, sub, environ)
    if node is None:
        return Found((word,), Kind.UNKNOWN, start, start + 1, plugin=word)
    if isinstance(node, Kind):
        return Found((word,), node, start, start + 1)
    if sub is None:
        # Only the group's own flags: docker prints its help. Anything else is a command
        # line this table cannot follow: docker fails on it, or the table is wrong.
        flags = _OWN_GROUP_FLAGS.get(word, _GROUP_FLAGS)
        parsed = parse_flags(argv, start + 1, flags)
        kind = Kind.PASS if parsed.error is None and not parsed.positionals else Kind.UNKNOWN
        return Found((word,), kind, start, start + 1)
    kind = node.get(argv[sub], Kind.UNKNOWN)
    return Found((word, argv[sub]), kind, start, sub + 1)


def _subcommand(argv: Sequence[str], start: int, word: str) -> int | None:
    """argv index of a group's subcommand (cobra's Traverse), or None when there is none."""
    return traverse_group(argv, start + 1, _OWN_GROUP_FLAGS.get(word, _GROUP_FLAGS))


def _builder(argv: Sequence[str], start: int, sub: int | None,
             environ: Mapping[str, str] | None) -> Found:
    """``builder``, ``build``, ``bake`` and ``image build``, as docker forwards them to the
    builder plugin: the config's ``aliases.builder``, else buildx (unless DOCKER_BUILDKIT
    turns BuildKit off: then the legacy builder, except for bake)."""
    env = os.environ if environ is None else environ
    word = argv[start]
    alias = builder_alias(argv, env)
    disabled = _buildkit_disabled(env)
    if alias is not None and alias != "buildx" and (word in ("builder", "bake") or not disabled):
        plugin = "" if alias == _UNREADABLE else alias
        note = ("docker's config.json cannot be read for sure, so where docker sends it is "
                "unknown" if alias == _UNREADABLE
                else f"docker's config aliases builder to {alias!r}")
        end = start + 1 if sub is None or word != "image" else sub + 1
        return Found((word,) if word != "image" else ("image", "build"), Kind.UNKNOWN,
                     start, end, plugin=plugin, note=note)
    if word == "bake":
        return Found(("bake",), Kind.REFUSE, start, start + 1)
    if word == "build":
        return Found(("build",), Kind.VERIFY, start, start + 1)
    if word == "image":
        return Found(("image", "build"), Kind.VERIFY, start, (sub or start) + 1)
    # `builder SUB`: buildx's SUB when docker forwards there, else the built-in group's.
    # Forwarded, it is read as `buildx …`, whose root flags may precede SUB
    # (`docker builder --builder default dial-stdio`).
    forwarded = not disabled or alias == "buildx"
    if forwarded:
        sub = _subcommand(argv, start, "buildx")
    if sub is None:
        # As for any group: only its own flags (help) pass; anything else is refused.
        flags = _OWN_GROUP_FLAGS["buildx"] if forwarded else _GROUP_FLAGS
        parsed = parse_flags(argv, start + 1, flags)
        kind = Kind.PASS if parsed.error is None and not parsed.positionals else Kind.UNKNOWN
        return Found(("builder",), kind, start, start + 1)
    name = argv[sub]
    if forwarded:
        buildx = DOCKER["buildx"]
        assert isinstance(buildx, dict)  # noqa: S101 - the table above
        if name in buildx:
            return Found(("buildx", name), buildx[name], start, sub + 1,
                         note="docker runs `builder` as `buildx`")
    return Found(("builder", name), _BUILDER.get(name, Kind.UNKNOWN), start, sub + 1)


def _buildkit_disabled(environ: Mapping[str, str]) -> bool:
    """DOCKER_BUILDKIT set to a false value (strconv.ParseBool); an invalid one makes docker
    fail before it runs anything, which routing to verification covers too."""
    return environ.get("DOCKER_BUILDKIT", "") in ("0", "f", "F", "false", "False", "FALSE")


def builder_alias(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """``aliases.builder`` of the docker config this command reads (``--config``,
    DOCKER_CONFIG, ~/.docker), as Go decodes it: member names fold case, the last of a
    name wins. None when there is none; ``_UNREADABLE`` when the file exists but cannot
    be read for sure."""
    import json

    from safedocker._docker.argv import global_options
    from safedocker._docker.credentials import CONFIG_FILE, MAX_CONFIG_BYTES, config_dir
    from safedocker._internal.strictjson import go_fold

    given = [o.value for o in global_options(argv) if o.name == "--config"]
    path = config_dir(given[-1] if given else None, environ) / CONFIG_FILE
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError:
        return _UNREADABLE
    if len(raw) > MAX_CONFIG_BYTES:
        return _UNREADABLE
    try:
        pairs = json.loads(raw.decode("utf-8"), object_pairs_hook=_Members)
    except (ValueError, RecursionError):
        return None  # docker warns and goes on without the file's settings
    if not isinstance(pairs, _Members):
        return None
    found: object = None
    for key, value in pairs:
        if go_fold(key) == go_fold("aliases"):
            found = value  # Go keeps the last
    if found is None:
        return None
    if not isinstance(found, _Members):
        return _UNREADABLE
    alias: object = None
    for key, value in found:
        if key == BUILDER_ALIAS_KEY:
            alias = value
    if alias is None:
        return None
    return alias if isinstance(alias, str) and alias else _UNREADABLE
