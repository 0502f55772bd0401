"""The express path: a warm hit (gate/warm.py) replayed for exactly the same command line.

What a warm hit works out from argv and the environment alone (the command and its image,
the reference, the record's key and platform choice, the audit line's text, the command
handed to docker) is the same whenever argv, every environment variable, the working
directory and the user are. So after answering, the warm path leaves a *plan* of those
results in ``<cache>/express/<sha256>.json``, keyed by the sha256 of all of them and
safe-docker's version, and the shim asks this module first, before the router, ``re``,
``json`` or ``enum`` are imported.

A plan decides nothing by itself. Every check whose input can change between two runs of
the same command line is made again, with the warm path's own functions:

* the system policy is not locked (a record the user can write never decides then);
* the hash of every config file, key and root (``inputs_digest``) is the plan's;
* every records file the warm hit read has the same bytes, so the same record would be
  found, and it is still usable now (``usable``: its time limits and anchor files);
* docker is reached on the same unix socket (docker's config and contexts are read again);
* no GPU sign appeared, when the rule's GPU mode is ``auto``;
* the registry names the record's digest for the tag, and every ``.sig`` listing judged is
  unchanged (``signatures_unchanged``); for a record keyed by the daemon's platform, the
  daemon's ``/version`` still says it;
* docker has the pinned image (it is tagged when it lacks the tag).

The registry's questions go out as soon as the plan and the config hashes agree, and the
other checks are made while it answers. Then the audit line is written and docker gets
``repo@digest``. Anything else, a plan that is missing, damaged, not the user's own or
written for other inputs, is a miss: the warm path, then the full path, decides. Only
online hits of ``run``/``create``/``pull`` leave a plan; offline ones always take the warm
path.
"""

from __future__ import annotations

import os
import sys
import time

from safedocker import __version__
from safedocker._internal import environment
from safedocker._internal.lean import NamedTuple, loads, sha256
from safedocker._internal.names import DEFAULT_TAG, split_domain
from safedocker.cache.verdicts import (
    ANY_PLATFORM,
    PLANS_DIR,
    Records,
    Unkeyable,
    WarmRecord,
    inputs_digest,
    listing_unchanged,
    locations,
    private_bytes,
    signature_tags,
    split_name,
    usable,
)
from safedocker.oci.probe import Asked, ProbeFailed, Probes, TokenCache
from safedocker.policy.paths import default_system_is_locked

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TypeVar

    from safedocker.cache.verdicts import Where
    from safedocker.oci.probe import RegistryProbe

    _T = TypeVar("_T")

PLAN_VERSION = 1
PLAN_MAX = 256 * 1024
# Plans kept at most: a command line in an environment that differs every run (a CI
# job's build id) leaves a plan no later run reads; the oldest go first.
PLANS_MAX = 256
# The words without which no command line can have left a plan: any other argv skips even
# this module's import (a passthrough the fast table does not know costs nothing more).
WORDS = frozenset({"run", "create", "pull"})


class _Miss(Exception):
    """Not answerable here: the warm path, then the full path, decides."""


class Plan(NamedTuple):
    """What a warm hit worked out from argv and the environment, and what it stood on."""

    inputs: str  # inputs_digest then
    records: tuple[tuple[str, str | None], ...]  # each records file read: (path, sha256)
    record: WarmRecord  # the record found in them
    platform: str  # the platform part of its key
    name: str  # registry/repository
    tag: str
    shown: str  # the tag as docker lists it (RepoTags)
    config: str | None  # docker's --config
    globals: tuple[tuple[str, str | None], ...]  # docker's global options in argv
    socket: str  # the daemon's unix socket then
    target: str  # repo@digest handed to docker
    audit: str  # the audit line after its stamp
    output: str | None  # what a pull prints
    command: tuple[str, ...] | None  # what run/create exec

    def to_json(self) -> dict[str, object]:
        return {**self._asdict(), "record": self.record.to_json(),
                "records": [list(r) for r in self.records],
                "globals": [list(g) for g in self.globals],
                "command": None if self.command is None else list(self.command)}

    @classmethod
    def from_json(cls, data: object) -> Plan:
        """The plan, or _Miss when any field is not of its kind."""
        if not isinstance(data, dict):
            raise _Miss("not a plan")
        record = WarmRecord.from_json(_kind(data.get("record"), dict))
        if record is None:
            raise _Miss("not a record")
        command = data.get("command")
        return cls(
            _text(data.get("inputs")), _pairs(data.get("records")), record,
            _text(data.get("platform")), _text(data.get("name")), _text(data.get("tag")),
            _text(data.get("shown")), _text_or_none(data.get("config")),
            _pairs(data.get("globals")), _text(data.get("socket")), _text(data.get("target")),
            _text(data.get("audit")), _text_or_none(data.get("output")),
            None if command is None else tuple(_text(w) for w in _kind(command, list)),
        )


def _kind(value: object, kind: type[_T]) -> _T:
    if not isinstance(value, kind):
        raise _Miss("a plan field of another kind")
    return value


def _text(value: object) -> str:
    return _kind(value, str)


def _text_or_none(value: object) -> str | None:
    return None if value is None else _text(value)


def _pairs(value: object) -> tuple[tuple[str, str | None], ...]:
    pairs = []
    for pair in _kind(value, list):
        first, second = _kind(pair, list)
        pairs.append((_text(first), _text_or_none(second)))
    return tuple(pairs)


def plan_key(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The sha256 of everything a warm hit's plan is a function of."""
    parts = (PLAN_VERSION, __version__, os.getuid(), os.geteuid(), os.getcwd(),
             tuple(argv), tuple(sorted(env.items())))
    return sha256(repr(parts).encode("utf-8", "surrogateescape")).hexdigest()


def plan_path(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, PLANS_DIR, key + ".json")


def answer(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Replay the plan for ``argv`` and never return (docker is exec'd, or a pull is
    answered and the process exits 0), or return: a miss."""
    env = os.environ if environ is None else environ
    try:
        command, docker = _replay(argv, env)
    # A damaged plan (wrong shapes, deep nesting) is a miss like a missing one.
    except (_Miss, ProbeFailed, Unkeyable, OSError, ValueError,
            LookupError, TypeError, AttributeError, RecursionError) as e:
        if environment.log_level(env) == "DEBUG":
            sys.stderr.write(f"safe-docker: debug: express path: {e}\n")
        return
    from safedocker._docker.binary import exec_docker

    exec_docker(command, docker)


def _plan(where: Where, argv: Sequence[str], env: Mapping[str, str]) -> Plan:
    key = plan_key(argv, env)
    data = private_bytes(where.cache_dir, os.path.join(where.cache_dir, PLANS_DIR),
                         plan_path(where.cache_dir, key), PLAN_MAX)
    if data is None:
        raise _Miss("no plan")
    document = loads(data)
    if not isinstance(document, dict) or document.get("v") != PLAN_VERSION or document.get(
            "key") != key:
        raise _Miss("not a plan for this command line")
    # The command is kept as the words that differ from argv (see keep): put argv back.
    command = document.get("command")
    if isinstance(command, list):
        if len(command) != len(argv):
            raise _Miss("not a plan for this command line")
        document["command"] = [was if word is None else word
                               for word, was in zip(command, argv, strict=True)]
    return Plan.from_json(document)


def _replay(argv: Sequence[str], env: Mapping[str, str]) -> tuple[list[str], str | None]:
    """The docker command to exec and the docker found to exec it (None: not found, which
    exec_docker reports); a pull is answered here and exits."""
    if default_system_is_locked():
        raise _Miss("the system policy is locked")
    where = locations(env)
    if where is None:
        raise _Miss("no known locations")
    plan = _plan(where, argv, env)
    record = plan.record
    if plan.target != f"{plan.name}@{record.covered}":
        raise _Miss("the plan's target is not the record's")
    # Before any network question: a config changed to offline must not wait on one.
    if inputs_digest(where, env) != plan.inputs:
        raise _Miss("a config file, key or root changed")
    # The registry's questions go out now and their answers are read last: the local
    # checks (and the imports only they need) run while it answers, which takes longer
    # than all of them. Asking decides nothing; every check below still must pass.
    registry = _RegistryQuestions(where, plan)
    try:
        records = Records(where.cache_dir)
        if any(records.fingerprint(path) != digest for path, digest in plan.records):
            raise _Miss("the verdict records changed")
        if not usable(record, time.time(), offline=False):
            raise _Miss("the record is not usable now")
        from safedocker._docker.binary import find_real_docker
        from safedocker._docker.engine_api import EngineUnanswered, socket_for
        from safedocker._internal.logfile import (
            AUDIT_BACKUPS,
            AUDIT_MAX_BYTES,
            AUDIT_NAME,
            RotatingLog,
            stamped,
            user_name,
        )

        socket_path = socket_for(plan.globals, env)
        if socket_path is None or socket_path != plan.socket:
            raise _Miss("docker is reached elsewhere")
        if record.gpu != "never":
            from safedocker.gpu.signs import driver_signs

            if record.gpu != "auto" or driver_signs(env):
                raise _Miss("a GPU may be involved")
        # Looked up while the registry answers, not after: what follows its answer is
        # the only part of a hit nothing else overlaps.
        docker = None if plan.output is not None else find_real_docker()
        user = user_name()
        try:
            _docker_agrees(socket_path, plan, registry)
        except EngineUnanswered as e:
            raise _Miss(f"docker: {e}") from e
    finally:
        registry.close()
    try:
        RotatingLog(where.state_dir, AUDIT_NAME, AUDIT_MAX_BYTES, AUDIT_BACKUPS).append(
            stamped(plan.audit, user))
    except OSError:
        raise _Miss("the audit log cannot be written: the full path reports it") from None
    if plan.output is not None:
        sys.stdout.write(plan.output)
        sys.stdout.flush()
        sys.exit(0)
    return _handed(argv, plan.command, plan.target, (plan.name, plan.tag)), docker


def _docker_agrees(socket_path: str, plan: Plan, registry: _RegistryQuestions) -> None:
    """The daemon's platform is the record's (when it is keyed by it), the registry agrees,
    and docker has the pinned image (tagged, when it lacks the tag)."""
    from safedocker._docker.engine_api import EngineSocket, daemon_platform

    engine = EngineSocket(socket_path)
    try:
        if plan.platform != ANY_PLATFORM and not plan.platform.startswith("explicit:") and (
                daemon_platform(engine) != plan.platform):
            raise _Miss("the daemon's platform is not the record's")
        engine.ask_image(plan.target)  # answered while the registry's answers are read
        registry.agrees()
        local = engine.inspect_image(plan.target)
        if local is None:
            raise _Miss("docker lacks the image")
        if plan.shown not in local.repo_tags:
            engine.tag(plan.target, plan.name, plan.tag)
    finally:
        engine.close()


def _handed(argv: Sequence[str], command: Sequence[str] | None, target: str,
            image: tuple[str, str]) -> list[str]:
    """The plan's command, when it is argv with one word made ``target`` and nothing else
    changed, as the warm path rebuilds it, and that word of argv names ``image`` (name,
    tag); a miss otherwise. Without the last check a plan (the user's own file, but
    written by no one else than the warm path) could pin a container argument and leave
    the image docker runs another, unverified one, under an audit line naming
    ``image``."""
    if command is None or len(command) != len(argv):
        raise _Miss("the plan's command is not this command line's")
    changed = [i for i, (word, was) in enumerate(zip(command, argv, strict=True))
               if word != was]
    if len(changed) != 1 or command[changed[0]] != target or (
            tagged(argv[changed[0]]) != image):
        raise _Miss("the plan's command is not this command line's")
    return [str(word) for word in command]


def tagged(word: str) -> tuple[str, str]:
    """(name, tag) of ``word`` read as a reference by tag, normalized as reference.py reads
    one (``ubuntu`` is ``docker.io/library/ubuntu``, ``latest``), without the ``re`` its
    parser needs: what the word a plan pins must name."""
    domain, remainder = split_domain(word)
    path, colon, tag = remainder.partition(":")
    return f"{domain}/{path}", tag if colon else DEFAULT_TAG


class _RegistryQuestions:
    """Whether the tag still names the record's digest and its signatures are as they
    were: asked when made, answered at :meth:`agrees`."""

    def __init__(self, where: Where, plan: Plan) -> None:
        record = plan.record
        self.record = record
        self.listings = signature_tags(record)
        self._probes = Probes(TokenCache(where.cache_dir), plan.config)
        try:
            host, repository = split_name(plan.name)
            self._probe: RegistryProbe = self._probes(host, record.scheme)
            self._wanted = [(repository, plan.tag)]
            self._asked: Asked | None = None
            if all(each[0] == host for each in self.listings):  # one registry: all at once
                self._asked = self._probe.ask(
                    self._wanted + [(r, t) for _, r, t, _ in self.listings])
        except BaseException:
            self._probes.close()
            raise

    def agrees(self) -> None:
        record = self.record
        if self._asked is not None:
            answers = self._asked.answers()
        else:
            answers = [self._probe.manifest_digest(*self._wanted[0])] + [
                self._probes(h, record.scheme).manifest_digest(r, t)
                for h, r, t, _ in self.listings]
        if answers[0] is None or answers[0][0] != record.digest:
            raise _Miss("the tag names another digest now")
        if not all(listing_unchanged(expected, seen)
                   for (_, _, _, expected), seen in zip(self.listings, answers[1:], strict=True)):
            raise _Miss("a signature listing changed")

    def close(self) -> None:
        self._probes.close()


def keep(where: Where, argv: Sequence[str], env: Mapping[str, str], plan: Plan) -> None:
    """Store the plan of a warm hit that just answered ``argv`` (mode 0600, atomically);
    a plan not stored only costs the next run the warm path."""
    import json

    from safedocker._internal.files import atomic_write

    # Neither argv nor the command is kept as written: only the words that differ from argv
    # (the pinned image), so an ``-e PASSWORD=…`` or a container argument the audit line
    # masks (audit.summarize_argv) is never left on disk; the key binds the plan to argv.
    key = plan_key(argv, env)
    command = None if plan.command is None else [
        None if i < len(argv) and word == argv[i] else word
        for i, word in enumerate(plan.command)]
    text = json.dumps({"v": PLAN_VERSION, "key": key, **plan.to_json(), "command": command},
                      separators=(",", ":"), allow_nan=False).encode()
    if len(text) > PLAN_MAX:
        raise Unkeyable("the plan is too large to keep")
    os.makedirs(os.path.join(where.cache_dir, PLANS_DIR), mode=0o700, exist_ok=True)
    atomic_write(plan_path(where.cache_dir, key), text, mode=0o600)
    _trim(os.path.join(where.cache_dir, PLANS_DIR), key + ".json")


def _trim(directory: str, written: str) -> None:
    """Remove the oldest plans past PLANS_MAX, never the one just ``written`` (a plan lost
    to a race only costs a warm path)."""
    names = os.listdir(directory)
    if len(names) <= PLANS_MAX:
        return
    aged = sorted((_age(os.path.join(directory, name)), name) for name in names
                  if name != written)
    for _, name in aged[:len(aged) - PLANS_MAX + 1]:
        _unlink(os.path.join(directory, name))


def _age(path: str) -> int:
    try:
        return os.lstat(path).st_mtime_ns
    except FileNotFoundError:
        return 0  # gone already: removing it again is harmless


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # another process trimmed it first
