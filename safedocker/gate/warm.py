"""The warm path: ``run``/``create``/``pull`` of an image verified before, answered from the
verdict cache with the standard library only.

The shim calls :func:`answer` before importing the gate. It handles the common case
exactly as the full path would decide it, or returns (and the full path decides):

* IMAGE is ``repo:tag`` (no digest, not an ID-like word), the daemon is reached through a
  unix socket, the mode is not ``off``, no dry run;
* the verdict cache (cache/verdicts.py) holds an acceptance under the same inputs, the
  registry names the same digest for the tag now (one HEAD) and the same ``.sig``
  manifests (one HEAD each), or, with SAFE_DOCKER_OFFLINE=1, the cached material is
  within offline_max_age;
* no GPU is involved (the rule's GPU mode is ``never``, or ``auto`` on a host with no sign
  of an NVIDIA driver) and docker already has the pinned image.

Then the decision is written to the audit log, the tag is set through the engine API
(as ``docker tag`` would), and docker gets ``repo@digest``: ``run``/``create`` are exec'd;
``pull`` prints what ``docker pull repo@digest`` prints for an image it already has, with
no docker process at all. :func:`remember` is the full path's side: it stores the record.
"""

from __future__ import annotations

import os
import re
import sys
import time

from safedocker._docker.argv import Invocation, global_options, parse
from safedocker._docker.engine_api import (
    EngineSocket,
    EngineUnanswered,
    ImageNames,
    daemon_platform,
    global_options_of,
    unix_socket,
)
from safedocker._internal import environment
from safedocker._internal.lean import LazyPattern, sha256
from safedocker.cache.verdicts import (
    ANY_PLATFORM,
    Records,
    SignatureListing,
    Unkeyable,
    WarmRecord,
    file_digest,
    find,
    inputs_digest,
    locations,
    material_digest,
    offline_tag_digest,
    store,
    warm_key,
)
from safedocker.errors import SafeDockerError
from safedocker.gate.express import Plan
from safedocker.oci.probe import ProbeFailed, Probes, TokenCache
from safedocker.reference import Digest, ImageRef, parse_reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from safedocker.cache.store import Cache
    from safedocker.cache.verdicts import Where
    from safedocker.gate.decide import Admission, Gate
    from safedocker.policy.config import Config
    from safedocker.policy.model import Decision
    from safedocker.verify.material import SignatureMaterial
    from safedocker.verify.verdict import Verdict



def _debug(what: str, error: BaseException) -> None:
    """Why the warm path did not answer, under SAFE_DOCKER_LOG=debug (logging is not
    imported here: it costs more than the whole hit)."""
    if environment.log_level() == "DEBUG":
        sys.stderr.write(f"safe-docker: debug: {what}: {error}\n")

_ID_LIKE = LazyPattern(r"(?:sha256:)?[0-9a-f]{1,64}", re.ASCII)
_COMMANDS = frozenset({("run",), ("create",), ("pull",), ("container", "run"),
                       ("container", "create"), ("image", "pull")})
_OFFLINE_CAUSE = "SAFE_DOCKER_OFFLINE=1: registry not contacted"


class _Miss(Exception):
    """Not answerable here: the full path decides."""


def answer(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Answer ``argv`` from the verdict cache and never return, or return (a miss)."""
    env = os.environ if environ is None else environ
    try:
        command = _warm_plan(argv, env)
    except (_Miss, EngineUnanswered, ProbeFailed, Unkeyable, SafeDockerError,
            OSError, ValueError) as e:
        _debug("warm path", e)
        return
    from safedocker._docker.binary import exec_docker

    exec_docker(command)


def _not_locked() -> None:
    """A record is the user's own file and is trusted without verifying anything, so under
    a locked system policy (which nothing the user writes may weaken) only the full path
    decides."""
    from safedocker.policy.paths import default_system_is_locked

    if default_system_is_locked():
        raise _Miss("the system policy is locked: a record the user can write never decides")


def _platform(invocation: Invocation, env: Mapping[str, str], engine: EngineSocket) -> str:
    """The platform choice as the key spells it: explicit, else the daemon's os/arch."""
    explicit = invocation.values("--platform")
    chosen = (explicit[-1] if explicit else "") or env.get("DOCKER_DEFAULT_PLATFORM", "")
    if chosen:
        return f"explicit:{chosen}"
    platform = daemon_platform(engine)
    if platform is None:
        raise _Miss("the daemon's platform needs more than /version")
    return platform


def _request(argv: Sequence[str]) -> tuple[Invocation, str, ImageRef]:
    invocation = parse(argv)
    if invocation.help or not invocation.command:
        raise _Miss("help")
    if invocation.command not in _COMMANDS:
        raise _Miss(" ".join(invocation.command))
    command = invocation.command[-1]
    if command == "pull" and (invocation.flag("--all-tags") or invocation.has("--platform")):
        raise _Miss(f"{command} with these options")
    # A mount may name another image (`type=image,source=IMG`): the full path verifies it;
    # the record covers only the container's own image.
    if command != "pull" and invocation.has("--mount"):
        raise _Miss("a --mount may name an image")
    text = invocation.image
    if command != "pull" and _ID_LIKE.fullmatch(text):
        raise _Miss("may be an image ID")
    ref = parse_reference(text)
    if ref.digest is not None:
        raise _Miss("named by digest")
    return invocation, command, ref


def _docker_config(invocation: Invocation) -> str | None:
    given = [o.value for o in global_options(invocation.argv) if o.name == "--config"]
    return given[-1] if given else None


def _warm_plan(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """The docker command to exec (run/create); a pull is answered here and exits."""
    if environment.dry_run(env) or environment.mode(env) == "off":
        raise _Miss("dry run or mode off")
    _not_locked()
    invocation, command, ref = _request(argv)
    where = locations(env)
    socket_path = unix_socket(argv, env)
    if where is None or socket_path is None:
        raise _Miss("no unix socket or no known locations")
    engine = EngineSocket(socket_path)
    inputs = inputs_digest(where, env)
    # A tag that named an image manifest needs no platform (and the daemon's /version is
    # the slowest question of a hit); an index's child depends on it.
    platforms: list[str] = []
    keys = _keys(inputs, ref, lambda: _platform(invocation, env, engine), platforms)
    offline = environment.offline(env)
    records = Records(where.cache_dir)
    record = _lookup(records, keys, ref, invocation, env)
    if record is None:
        raise _Miss("no usable record")
    if record.gpu == "always" or (record.gpu == "auto" and _gpu_possible(env)):
        raise _Miss("a GPU may be involved")
    target = ref.pinned(Digest.parse(record.covered))
    local = engine.inspect_image(target)
    if local is None:
        raise _Miss("docker lacks the image")
    if not _named(local, ref):
        engine.tag(target, ref.name, ref.tag_or_default)
    engine.close()
    body = _audit(where.state_dir, argv, ref, record, target, offline=offline)
    if offline:
        _offline_note(ref, record)
    output = _pull_output(invocation, ref, record.covered) if command == "pull" else None
    rebuilt = None if output is not None else list(invocation.rebuild(target))
    if not offline:
        _keep_plan(where, argv, env, Plan(
            inputs=inputs, records=tuple(records.seen.items()), record=record,
            platform=platforms[-1], name=ref.name, tag=ref.tag_or_default,
            shown=f"{ref.familiar_name}:{ref.tag_or_default}",
            config=_docker_config(invocation), globals=global_options_of(argv),
            socket=socket_path, target=target, audit=body, output=output,
            command=None if rebuilt is None else tuple(rebuilt)))
    if output is not None:
        sys.stdout.write(output)
        sys.stdout.flush()
        sys.exit(0)
    return tuple(rebuilt or ())


def _keep_plan(where: Where, argv: Sequence[str], env: Mapping[str, str], plan: Plan) -> None:
    """Leave the express path (gate/express.py) this hit's plan; never fails the hit."""
    from safedocker.gate.express import keep

    try:
        keep(where, argv, env, plan)
    except (Unkeyable, OSError, ValueError) as e:
        _debug("express plan not kept", e)


def _keys(inputs: str, ref: ImageRef, platform: Callable[[], str],
          chosen: list[str] | None = None) -> Iterator[str]:
    """The keys to try in order; ``chosen`` gets each one's platform as it is tried."""
    def any_platform() -> str:
        return ANY_PLATFORM

    for each in (any_platform, platform):
        text = each()
        if chosen is not None:
            chosen.append(text)
        yield warm_key(inputs, ref.tagged, text)


def answer_verify(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """``safe-docker verify IMAGE`` from the verdict cache (the report's lines as the full
    path printed them, and its audit record); returns on a miss."""
    env = os.environ if environ is None else environ
    if len(argv) != 2 or argv[0] != "verify" or argv[1].startswith("-"):
        return
    try:
        ref = parse_reference(argv[1])
        where = locations(env)
        if ref.digest is not None or where is None or environment.mode(env) == "off":
            return
        _not_locked()
        chosen = env.get("DOCKER_DEFAULT_PLATFORM", "")
        key = warm_key(inputs_digest(where, env), ref.tagged,
                       f"explicit:{chosen}" if chosen else "host")
        record = _lookup(Records(where.cache_dir), key, ref, None, env)
        if record is None or not record.lines:
            return
        _audit(where.state_dir, list(argv), ref, record, None,
               offline=environment.offline(env))
    except (_Miss, ProbeFailed, Unkeyable, SafeDockerError, OSError,
            ValueError) as e:
        _debug("warm path", e)
        return
    if environment.offline(env):
        _offline_note(ref, record)
    sys.stdout.write("".join(line + "\n" for line in record.lines))
    sys.stdout.flush()
    sys.exit(0)


def _lookup(records: Records, key: str | Iterable[str], ref: ImageRef,
            invocation: Invocation | None, env: Mapping[str, str]) -> WarmRecord | None:
    cache_dir = records.cache_dir
    now = time.time()
    if environment.offline(env):
        return find(records, key, ref.name, ref.tag_or_default, now=now, registry=None,
                    offline_digest=offline_tag_digest(cache_dir, ref.name, ref.tag_or_default))
    registry = Probes(TokenCache(cache_dir),
                      None if invocation is None else _docker_config(invocation))
    try:
        return find(records, key, ref.name, ref.tag_or_default, now=now, registry=registry)
    finally:
        registry.close()


def _offline_note(ref: ImageRef, record: WarmRecord) -> None:
    from safedocker._internal.timefmt import stamp

    sys.stderr.write(f"safe-docker: decided offline for {ref} from signatures cached "
                     f"{stamp(record.material_time)} ({_OFFLINE_CAUSE})\n")


def _gpu_possible(env: Mapping[str, str]) -> bool:
    from safedocker.gpu.signs import driver_signs

    return driver_signs(env)


def _named(local: ImageNames, ref: ImageRef) -> bool:
    wanted = (ref.name, ref.tag_or_default)
    for text in local.repo_tags:
        try:
            tagged = parse_reference(text)
        except SafeDockerError:
            continue
        if (tagged.name, tagged.tag_or_default) == wanted:
            return True
    return False


def _pull_output(invocation: Invocation, ref: ImageRef, covered: str) -> str:
    """What ``docker pull repo@digest`` prints for an image docker already has."""
    shown = f"{ref.familiar_name}@{covered}"
    if invocation.flag("--quiet"):
        return shown + "\n"
    return (f"{shown}: Pulling from {ref.repository}\n"
            f"Digest: {covered}\n"
            f"Status: Image is up to date for {shown}\n{shown}\n")


def _audit(state_dir: str, argv: Sequence[str], ref: ImageRef, record: WarmRecord,
           target: str | None, *, offline: bool) -> str:
    """Write the decision's audit line; its text after the stamp (for the express plan)."""
    from safedocker.audit import AuditLog, command_of

    event: dict[str, object] = {
        "argv": list(argv), "command": command_of(argv), "outcome": "accepted",
        "reference": str(ref), "digest": record.digest, "rule": record.rule,
        "rule_source": record.rule_source, "signers": list(record.signers),
        "offline": offline, "reasons": [],
    }
    if target is not None:
        event["target"] = target
    body = AuditLog.body(event)
    try:
        AuditLog(state_dir).write(body)
    except OSError:
        raise _Miss("the audit log cannot be written: the full path reports it") from None
    return body


# --- the full path's side -----------------------------------------------------------------


def remember(gate: Gate, argv: Sequence[str], admission: Admission,
             environ: Mapping[str, str] | None = None) -> None:
    """Store an online acceptance for the warm path, when every input it depends on can be
    keyed; never raises (a record not stored only costs the next run the full path)."""
    try:
        _remember(gate, argv, admission, os.environ if environ is None else environ)
    except (_Miss, EngineUnanswered, Unkeyable, SafeDockerError, OSError,
            ValueError) as e:
        _debug("verdict not cached", e)


def _time_dependent(decision: Decision) -> bool:
    """Whether a rule may have compared a certificate with the current time (keyless or
    private-PKI signatures checked without a transparency-log time)."""
    from safedocker.policy.model import Tlog

    return any((rule.identities or rule.pki_roots) and rule.tlog is not Tlog.REQUIRED
               for rule in decision.verify_rules)


def _anchors(config: Config, decision: Decision) -> list[tuple[str, str | None]]:
    paths = [str(entry.path) for entry in config.keys.values()]
    if config.system_anchors is not None:
        paths += [str(entry.path) for entry in config.system_anchors.keys.values()]
    for rule in decision.verify_rules:
        paths += [*rule.pki_roots, *rule.pki_intermediates]
    embedded = _embedded_root()
    if embedded is not None:
        paths.append(embedded)
    return [(path, file_digest(path)) for path in dict.fromkeys(paths)]


def _embedded_root() -> str | None:
    """sigstore-python's public-good trusted_root.json file (trust/tuf.py reads it)."""
    import importlib.util
    from urllib.parse import quote

    from safedocker.trust.roots import EMBEDDED_TUF_URL

    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        return None
    base = list(spec.submodule_search_locations)[0]
    return os.path.join(base, "_store", quote(EMBEDDED_TUF_URL, safe=""), "trusted_root.json")


def _remember(gate: Gate, argv: Sequence[str], admission: Admission,
              env: Mapping[str, str]) -> None:
    from safedocker.gate.decide import Outcome

    if admission.outcome is not Outcome.ACCEPTED or admission.request.ref is None:
        raise _Miss("not an acceptance of a reference")
    if admission.verdict is None:
        raise _Miss("no verdict")

    verdict = admission.verdict

    def platform() -> str:
        if verdict.platform_digest == verdict.digest:
            return ANY_PLATFORM  # an image manifest: no platform chose anything
        socket_path = unix_socket(argv, env)
        if socket_path is None:
            raise _Miss("no unix socket")
        engine = EngineSocket(socket_path)
        try:
            return _platform(parse(argv), env, engine)
        finally:
            engine.close()

    _store(gate.config, getattr(gate.verifier, "judged", None),
           getattr(gate.verifier, "cache", None), admission.request.ref, admission.verdict,
           platform, env)


def remember_verify(config: Config, verifier: object, ref: ImageRef, verdict: Verdict,
                    platform: str | None, environ: Mapping[str, str] | None = None) -> None:
    """``safe-docker verify``'s side of :func:`remember` (the host's platform, no daemon)."""
    try:
        _store(config, getattr(verifier, "judged", None), getattr(verifier, "cache", None),
               ref, verdict, lambda: f"explicit:{platform}" if platform else "host",
               os.environ if environ is None else environ)
    except (_Miss, Unkeyable, SafeDockerError, OSError, ValueError) as e:
        _debug("verdict not cached", e)


def _store(config: Config, judged: Sequence[tuple[ImageRef, Digest, SignatureMaterial]] | None,
           cache: Cache | None, ref: ImageRef, verdict: Verdict,
           platform: Callable[[], str], env: Mapping[str, str]) -> None:
    """Store the record, after every check that can say no without asking anything;
    ``platform`` says the key's platform choice (it may ask the daemon)."""
    from safedocker.gpu.flags import resolve_mode
    from safedocker.oci.hosts import registry_scheme
    from safedocker.policy.paths import paths

    if (not verdict.accepted or verdict.warned or verdict.offline or verdict.covered is None
            or verdict.digest is None or ref.digest is not None):
        raise _Miss("not an online acceptance of a tag")
    decision = verdict.decision
    if config.notes or not judged or cache is None or _time_dependent(decision):
        raise _Miss("config notes, no material, no cache or a time-dependent check")
    # Referrers that were looked at but listed nothing like a signature did not decide:
    # the `.sig` listings a hit re-checks are all the verdict rests on.
    if any(m.from_referrers or source.registry != ref.registry
           for source, _, m in judged):
        raise _Miss("referrers or another registry")
    where = locations(env)
    if where is None or not where.same_as(paths(env)):
        raise _Miss("locations differ")
    record = WarmRecord(
        digest=str(verdict.digest), covered=str(verdict.covered),
        config_digest=str(verdict.config_digest) if verdict.config_digest else None,
        signatures=tuple(SignatureListing(
            source.name, str(digest),
            sha256(m.sig_manifest).hexdigest() if m.sig_manifest is not None else None)
            for source, digest, m in judged),
        anchors=tuple(_anchors(config, decision)),
        material_time=min(m.fetched_at for _, _, m in judged),
        offline_max_age=config.offline_max_age, valid_until=None,
        gpu=resolve_mode(decision.gpu, env).value,
        scheme=registry_scheme(ref.registry, config.insecure_registries),
        rule=verdict.rule.scope if verdict.rule else None,
        rule_source=verdict.rule.source if verdict.rule else None,
        signers=tuple(s.name for s in verdict.signers),
        material=material_digest([m.to_bytes() for _, _, m in judged]),
        lines=tuple(_verdict_lines(verdict)),
    )
    key = warm_key(inputs_digest(where, env), ref.tagged, platform())
    store(where.cache_dir, key, ref.name, record)


def _verdict_lines(verdict: Verdict) -> list[str]:
    from safedocker.ops.present import verdict_lines

    return verdict_lines(verdict)
