"""safe-docker's own commands, and the one place where errors become exit codes.

This is the only module that imports typer. Each command parses its arguments, calls the
library, and prints; every :class:`SafeDockerError` is turned into one stderr line and
its exit code in :func:`main`.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Protocol, TypeGuard

import typer
from typer.core import TyperArgument

from safedocker import __version__
from safedocker._internal.timefmt import stamp
from safedocker.console import run_guarded, setup_logging
from safedocker.errors import ExitCode, SafeDockerError, UsageError

if TYPE_CHECKING:
    import enum

    from safedocker.cache.store import Cache
    from safedocker.policy.model import Rule
    from safedocker.verify.verdict import Verdict


HELP = """\
safe-docker: verify image signatures and pin digests before docker pulls or runs them.

Used as `docker` (alias or first on PATH), it intercepts `pull`, `run` and `create`:
the image is resolved to a digest, its signatures are checked against your trust
store and policy, and docker is handed `repo@sha256:…`. All other commands go to
docker unchanged: `safe-docker ps` is `docker ps`.
"""

app = typer.Typer(
    name="safe-docker",
    help=HELP,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
keys_app = typer.Typer(help="Manage trusted public keys.", no_args_is_help=True)
policy_app = typer.Typer(help="Manage the trust policy (scopes and their rules).",
                         no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")

JSON_HELP = "Print JSON."
SCOPE_HELP = ("Registry host, repository, namespace, repo:tag, repo@digest, or a glob "
              "(* within a component, trailing /*).")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"safe-docker {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, show_default=False,
                                         help="More output on stderr (-vv for debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print safe-docker's version.")] = False,
) -> None:
    setup_logging(verbose)


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


# --- verify ------------------------------------------------------------------------------


@app.command()
def verify(
    image: Annotated[str, typer.Argument(metavar="IMAGE",
                                         help="Image reference, e.g. pytorch/pytorch:2.7")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    platform: Annotated[str | None, typer.Option(
        metavar="PLATFORM", help="Platform, e.g. linux/arm64 (default: DOCKER_DEFAULT_PLATFORM)."
    )] = None,
) -> None:
    """Verify IMAGE against the policy without docker; exit 0 (accepted) or 77."""
    from safedocker._internal import environment
    from safedocker.policy.config import load_config
    from safedocker.reference import parse_reference
    from safedocker.verify.verifier import Verifier

    ref = parse_reference(image)
    config = load_config()
    verifier = Verifier(config, platform=platform or os.environ.get("DOCKER_DEFAULT_PLATFORM"),
                        offline=environment.offline(), cache=_cache())
    try:
        verdict = verifier.verify(ref)
    except SafeDockerError as e:  # refused before a verdict (unreachable, bad data): audited
        _record(["verify", image], None, e, reference=str(ref))
        raise
    if verdict.offline:
        typer.echo(f"safe-docker: {verdict.offline_note()}", err=True)
    if as_json:
        _print_json(verdict.to_json())
    else:
        typer.echo(f"reference: {verdict.ref}")
        typer.echo(f"digest:    {verdict.digest or '-'}")
        if verdict.platform_digest and verdict.platform_digest != verdict.digest:
            typer.echo(f"platform:  {verdict.platform_digest}")
        typer.echo(f"rule:      {verdict.decision.explain()}")
        for signer in verdict.signers:
            typer.echo(f"signer:    {signer.describe()}")
        typer.echo(f"verdict:   {'accepted' if verdict.accepted else 'refused'}"
                   f"{' (warning)' if verdict.warned else ''}")
    _record(["verify", image], verdict)
    if not verdict.accepted:
        raise verdict.refusal()


def _record(argv: list[str], verdict: Verdict | None, error: SafeDockerError | None = None,
            *, reference: str | None = None) -> None:
    from safedocker.audit import record_decision
    from safedocker.policy.paths import paths

    if verdict is None or not verdict.accepted:
        outcome = "refused"
    else:
        outcome = "warned" if verdict.warned else "accepted"
    record_decision(paths().state_dir, argv, verdict, outcome, error, reference=reference)


# --- keys ------------------------------------------------------------------------------


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(metavar="NAME",
                                        help="Name the policy will use for this key.")],
    source: Annotated[str, typer.Argument(metavar="FILE|https://URL",
                                          help="PEM public key file, or an https:// URL.")],
    fingerprint: Annotated[str | None, typer.Option(
        metavar="sha256:HEX",
        help="Expected sha256 of the key's DER SubjectPublicKeyInfo; refused on mismatch.",
    )] = None,
) -> None:
    """Trust a public key (ECDSA P-256/384/521, RSA, Ed25519)."""
    from safedocker.policy.paths import paths
    from safedocker.trust.keystore import add_key

    entry = add_key(paths(), name, source, fingerprint)
    typer.echo(f"added key {entry.name} {entry.fingerprint}")


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List trusted keys with their fingerprints."""
    from safedocker.policy.config import load_config
    from safedocker.trust.keystore import describe_keys

    rows = describe_keys(load_config())
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']}\t{row['fingerprint']}\t{row['origin']}\t{row['source']}")


@keys_app.command("remove")
def keys_remove(name: Annotated[str, typer.Argument(metavar="NAME",
                                                    help="The key's name.")]) -> None:
    """Stop trusting a key; rules naming it refuse until `keys add NAME` restores them."""
    from safedocker.policy.paths import paths
    from safedocker.trust.keystore import remove_key

    naming = remove_key(paths(), name)
    typer.echo(f"removed key {name}")
    for scope in naming:
        typer.echo(f"safe-docker: the rule for {scope} names key {name!r} and refuses every "
                   f"image until it is trusted again (hint: `safe-docker keys add {name} "
                   "FILE` restores it)", err=True)


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the key pair.")],
    directory: Annotated[Path, typer.Option(
        "--dir", metavar="DIR", show_default=False,
        help="Where to write NAME.key and NAME.pub (default: the current directory).")
    ] = Path(),
) -> None:
    """Write a cosign-compatible key pair and trust its public key.

    The password comes from COSIGN_PASSWORD, or is asked for on the terminal.
    """
    from safedocker.policy.paths import paths
    from safedocker.trust.keystore import generate_key

    generated = generate_key(paths(), name, directory, _password(confirm=True))
    typer.echo(f"private key: {generated.private_path}")
    typer.echo(f"public key:  {generated.public_path}")
    typer.echo(f"trusted as {name} {generated.entry.fingerprint}")


def _password(*, confirm: bool = False) -> bytes:
    if "COSIGN_PASSWORD" in os.environ:
        return os.environ["COSIGN_PASSWORD"].encode()
    if not sys.stdin.isatty():
        raise UsageError("no password given", hint="set COSIGN_PASSWORD or run on a terminal")
    first = getpass.getpass("Password for the private key: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise UsageError("passwords do not match")
    return first.encode()


# --- policy ------------------------------------------------------------------------------


@policy_app.command("add")
def policy_add(
    scope: Annotated[str, typer.Argument(metavar="SCOPE", help=SCOPE_HELP)],
    key: Annotated[list[str] | None, typer.Option(
        "--key", metavar="NAME", help="Trusted key that may sign (repeat).")] = None,
    threshold: Annotated[str, typer.Option(
        metavar="N", help="Distinct signers required, 1 to the number given.")] = "1",
    tlog: Annotated[str, typer.Option(
        metavar="required|optional|off", help="Transparency-log proof.")] = "optional",
    reference: Annotated[str, typer.Option(
        metavar="digest|repository|exact",
        help="What the signed docker-reference must name.")] = "repository",
    gpu: Annotated[str, typer.Option(
        metavar="auto|always|never", help="GPU flags for run/create.")] = "auto",
    annotation: Annotated[list[str] | None, typer.Option(
        "--annotation", metavar="KEY=VALUE",
        help="Signed annotation the image must carry (repeat).")] = None,
    identity: Annotated[list[str] | None, typer.Option(
        "--identity", metavar="ISSUER=SUBJECT",
        help="Keyless signer, issuer and subject exact (repeat).")] = None,
    identity_regexp: Annotated[list[str] | None, typer.Option(
        "--identity-regexp", metavar="ISSUER_REGEXP=SUBJECT_REGEXP",
        help="Keyless signer by regular expressions (Go RE2), split at the first '=' "
             "(repeat).")] = None,
    signatures_repository: Annotated[str | None, typer.Option(
        "--signatures-repository", metavar="REPO",
        help="Read signatures from this repository (like COSIGN_REPOSITORY).")] = None,
    remap: Annotated[list[str] | None, typer.Option(
        "--remap", metavar="PREFIX=SIGNED_PREFIX",
        help="Signatures may name PREFIX's images under SIGNED_PREFIX (repeat).")] = None,
    remap_regexp: Annotated[list[str] | None, typer.Option(
        "--remap-regexp", metavar="PREFIX=REGEXP",
        help="As --remap, the signed prefix a Go (RE2) regexp matched whole (repeat).")] = None,
    trust_root: Annotated[str | None, typer.Option(
        "--trust-root", metavar="NAME",
        help="Sigstore trusted root for keyless signatures and logs (default: 'default'; "
             "see `trust-root list`).")] = None,
) -> None:
    """Require signatures for SCOPE (replaces an existing rule for the same scope)."""
    from safedocker.policy.config import regexp_problem, set_rule
    from safedocker.policy.model import GpuPolicy, ReferenceCheck, Tlog
    from safedocker.policy.paths import paths

    annotations = dict(_key_value(item, "--annotation") for item in annotation or [])
    identities = [{"issuer": i, "subject": s}
                  for i, s in (_key_value(item, "--identity") for item in identity or [])]
    identities += [{"issuer_regexp": i, "subject_regexp": s}
                   for i, s in (_key_value(item, "--identity-regexp")
                                for item in identity_regexp or [])]
    _check_regexps(identities)
    if not key and not identities:
        raise UsageError("policy add needs a signer", why="no --key, --identity or "
                         "--identity-regexp given",
                         hint="name a trusted key with --key NAME, or use "
                              "`safe-docker policy allow SCOPE` to accept without signatures")
    signers = len(key or []) + len(identities)
    rule: dict[str, Any] = {
        "action": "verify", "keys": list(key or []),
        "threshold": _count("--threshold", threshold, signers),
        "tlog": _choice("--tlog", tlog, Tlog),
        "reference": _choice("--reference", reference, ReferenceCheck),
        "gpu": _choice("--gpu", gpu, GpuPolicy),
    }
    if identities:
        rule["identities"] = identities
    if annotations:
        rule["annotations"] = annotations
    if signatures_repository:
        rule["signatures_repository"] = signatures_repository
    remaps = [{"prefix": p, "signed_prefix": v}
              for p, v in (_key_value(item, "--remap") for item in remap or [])]
    remaps += [{"prefix": p, "signed_prefix_regexp": v}
               for p, v in (_key_value(item, "--remap-regexp") for item in remap_regexp or [])]
    if remaps:
        if reference == "digest":
            raise UsageError("--remap needs the signed reference checked",
                             hint="use --reference repository or exact")
        for item in remaps:
            why = (regexp_problem(item["signed_prefix_regexp"])
                   if "signed_prefix_regexp" in item else None)
            if why:
                raise UsageError(f"invalid --remap-regexp {item['signed_prefix_regexp']!r}",
                                 why=why)
        rule["signed_identity"] = {"remap": remaps}
    if trust_root is not None:
        rule["trust_root"] = trust_root
    where = paths()
    normalized = set_rule(where, scope, rule)
    names = [*(key or []), *(i.get("subject") or i["subject_regexp"] for i in identities)]
    typer.echo(f"policy for {normalized}: verify with {', '.join(names)}"
               f"{f' (trusted root {trust_root})' if trust_root else ''}")
    if trust_root is not None:
        _warn_missing_root(where, trust_root)


def _check_regexps(identities: list[dict[str, str]]) -> None:
    """A regexp cosign (RE2) would refuse or read otherwise is a usage error here."""
    from safedocker.policy.config import regexp_problem

    for identity in identities:
        for name in ("issuer_regexp", "subject_regexp"):
            why = regexp_problem(identity[name]) if name in identity else None
            if why:
                raise UsageError(f"invalid --identity-regexp {identity[name]!r}", why=why,
                                 hint="identity regexps use Go's RE2 syntax, as cosign: no "
                                      "look-arounds, back-references or possessive repeats")


def _warn_missing_root(where: Any, name: str) -> None:
    """A rule may name a root before it is imported; say that it refuses until then."""
    from safedocker.trust.roots import DEFAULT_NAME, trust_root_path

    if name != DEFAULT_NAME and not any(
        trust_root_path(where, name, system=system).is_file() for system in (True, False)
    ):
        typer.echo(f"safe-docker: no trusted root named {name!r} yet \u2014 the rule refuses "
                   f"until it is imported (hint: `safe-docker trust-root import FILE --name "
                   f"{name}`)", err=True)


@policy_app.command("allow")
def policy_allow(scope: Annotated[str, typer.Argument(metavar="SCOPE", help=SCOPE_HELP)],
                 ) -> None:
    """Accept images in SCOPE without signatures."""
    from safedocker.policy.config import set_rule
    from safedocker.policy.paths import paths

    typer.echo(f"policy for {set_rule(paths(), scope, {'action': 'accept'})}: accept")


@policy_app.command("deny")
def policy_deny(scope: Annotated[str, typer.Argument(metavar="SCOPE", help=SCOPE_HELP)],
                ) -> None:
    """Refuse every image in SCOPE."""
    from safedocker.policy.config import set_rule
    from safedocker.policy.paths import paths

    typer.echo(f"policy for {set_rule(paths(), scope, {'action': 'reject'})}: reject")


@policy_app.command("remove")
def policy_remove(scope: Annotated[str, typer.Argument(
        metavar="SCOPE", help="The scope of a rule in your user file.")]) -> None:
    """Remove the user rule for SCOPE."""
    from safedocker.policy.config import remove_rule
    from safedocker.policy.paths import paths

    typer.echo(f"removed policy for {remove_rule(paths(), scope)}")


@policy_app.command("list")
def policy_list(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
                ) -> None:
    """List every rule, system rules first."""
    from safedocker.policy.config import load_config

    config = load_config()
    rows = [{"scope": r.scope, "action": r.action.value, "keys": list(r.keys),
             "identities": [i.describe() for i in r.identities], "trust_root": r.trust_root,
             "threshold": r.threshold, "tlog": r.tlog.value, "reference": r.reference.value,
             "gpu": r.gpu.value, **_signature_place(r), "source": r.source}
            for r in config.policy.rules]
    if as_json:
        _print_json({"mode": config.mode.value, "unmatched": config.unmatched.value,
                     "locked": config.policy.locked, "rules": rows})
        return
    typer.echo(f"mode = {config.mode.value}; unmatched = {config.unmatched.value}"
               f"{'; system policy locked' if config.policy.locked else ''}")
    for rule in config.policy.rules:
        detail = f" keys={','.join(rule.keys)}" if rule.keys else ""
        if rule.identities:
            detail += (f" identities={'; '.join(i.describe() for i in rule.identities)}"
                       f" trust_root={rule.trust_root}")
        if detail:
            detail += f" threshold={rule.threshold}"
        typer.echo(f"{rule.scope}\t{rule.action.value}{detail}{_signature_place_text(rule)}"
                   f"\t({rule.source})")


def _signature_place(rule: Rule) -> dict[str, Any]:
    """Where a rule reads signatures and which signed names it accepts, for --json."""
    signed = rule.signed_identity
    return {
        "signatures_repository": rule.signatures_repository,
        "signed_identity": None if signed.is_default else {
            "exact_reference": signed.exact_reference,
            "exact_repository": signed.exact_repository,
            "remap": [{"prefix": m.prefix, "signed_prefix": m.signed_prefix,
                       "signed_prefix_regexp": m.signed_prefix_regexp}
                      for m in signed.remaps],
        },
    }


def _signature_place_text(rule: Rule) -> str:
    text = ""
    if rule.signatures_repository:
        text += f" signatures in {rule.signatures_repository}"
    if not rule.signed_identity.is_default:
        text += f" signed name: {rule.signed_identity.describe()}"
    return text


@policy_app.command("check")
def policy_check(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="Image reference.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show which rule applies to IMAGE and why (no network)."""
    from safedocker.policy.config import load_config
    from safedocker.reference import parse_reference

    config = load_config()
    ref = parse_reference(image)
    decision = config.policy.decide(ref)
    action = decision.action.value if decision.action else f"unmatched ({config.unmatched.value})"
    if as_json:
        _print_json({"reference": str(ref), "action": action, "explanation": decision.explain(),
                     "rules": [{"scope": r.scope, "action": r.action.value,
                                "keys": list(r.keys), "trust_root": r.trust_root,
                                **_signature_place(r),
                                "source": r.source}
                               for r in decision.rules]})
        return
    typer.echo(f"{ref}: {action}")
    typer.echo(f"because: {decision.explain()}")
    for rule in decision.rules:
        place = _signature_place_text(rule)
        if place:
            typer.echo(f"{rule.scope}:{place}")
    for rule in decision.verify_rules:
        if rule.identities and not rule.pki_roots:
            typer.echo(f"trusted root for {rule.scope}: {rule.trust_root}")


@policy_app.command("schema")
def policy_schema() -> None:
    """Print every configuration key, its type and its allowed values (annotated TOML)."""
    from safedocker.policy.schema import SCHEMA

    typer.echo(SCHEMA, nl=False)


# --- sign --------------------------------------------------------------------------------


@app.command()
def sign(
    image: Annotated[str, typer.Argument(metavar="IMAGE",
                                         help="Image in a registry, by tag or digest.")],
    key: Annotated[Path, typer.Option("--key", metavar="FILE",
                                      help="Private key (cosign format).")],
    annotation: Annotated[list[str] | None, typer.Option(
        "-a", "--annotation", metavar="KEY=VALUE",
        help="Annotation to sign with the image (repeat).")] = None,
) -> None:
    """Sign IMAGE in its registry with a cosign key (password: COSIGN_PASSWORD or prompt)."""
    from safedocker.ops.sign import sign_image
    from safedocker.policy.config import load_config

    annotations = dict(_key_value(item, "--annotation", "sign") for item in annotation or [])
    result = sign_image(image, key, _password(), load_config(), annotations)
    typer.echo(f"signed {result.ref.name}@{result.digest}")
    typer.echo(f"signature: {result.signature_tag} ({result.signatures_now} signature(s))")


def _key_value(item: str, flag: str, command: str = "policy add") -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UsageError(f"invalid {flag} {item!r}", why="expected two parts joined by '='",
                         hint=f"see `safe-docker {command} --help`")
    return key, value


def _choice(option: str, value: str, kind: type[enum.Enum], command: str = "policy add") -> str:
    """``value`` if it is one of ``kind``'s values, else a usage error naming ``option``."""
    allowed = [str(member.value) for member in kind]
    if value not in allowed:
        raise UsageError(f"invalid {option} {value!r}", why=f"expected {' | '.join(allowed)}",
                         hint=f"see `safe-docker {command} --help`")
    return value


def _count(option: str, value: str, most: int) -> int:
    """A whole number from 1 to ``most``, else a usage error naming ``option``."""
    number = int(value) if value.isascii() and value.isdigit() else 0
    if number > most:
        raise UsageError(f"invalid {option} {value!r}",
                         why=f"only {most} signer{'s' if most != 1 else ''} given",
                         hint="give at least as many --key/--identity/--identity-regexp")
    if number < 1:
        raise UsageError(f"invalid {option} {value!r}",
                         why="expected a whole number of at least 1", hint=f"e.g. {option} 1")
    return number


# --- cache and audit ----------------------------------------------------------------------

cache_app = typer.Typer(help="The verification cache (offline decisions).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _cache() -> Cache:
    from safedocker.cache.store import Cache
    from safedocker.policy.paths import paths

    return Cache.open(paths().cache_dir)


@cache_app.command("list")
def cache_list(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Tag → digest mappings seen, and whether signatures are cached for offline use."""
    from safedocker.verify.material import cached_signatures

    with _cache() as cache:
        rows = [{"name": e.name, "tag": e.tag, "digest": str(e.digest),
                 "seen": stamp(e.seen_at), "material": e.has_material,
                 "signatures": cached_signatures(cache, e.name, e.digest)
                 if e.has_material else None}
                for e in cache.entries()]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        name = f"{row['name']}:{row['tag']}" if row["tag"] else str(row["name"])
        if row["signatures"]:
            offline = "signatures cached"
        elif row["signatures"] == 0:
            offline = "no signature found"
        else:
            offline = "no signatures cached"
        typer.echo(f"{name}\t{row['digest']}\t{row['seen']}\t{offline}")


@cache_app.command("prune")
def cache_prune(
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="AGE", help="Remove what is older than AGE: 30d, 12h, 90m.")]
    = None,
    everything: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
) -> None:
    """Remove cached entries older than --older-than, or all of them with --all."""
    from safedocker._internal.timefmt import parse_duration

    if (older_than is None) == (not everything):
        raise UsageError("cache prune needs --older-than AGE or --all" if older_than is None
                         else "cache prune takes --older-than or --all, not both",
                         hint="e.g. `safe-docker cache prune --older-than 30d`")
    try:
        seconds = 0.0 if everything else parse_duration(older_than or "")
    except ValueError:
        raise UsageError(f"invalid --older-than {older_than!r}",
                         why="expected a number and s, m, h, d or w", hint="e.g. 30d") from None
    with _cache() as cache:
        removed = cache.prune(seconds)
    typer.echo(f"removed {removed} cached entr{'y' if removed == 1 else 'ies'}")


@cache_app.command("export")
def cache_export(file: Annotated[Path, typer.Argument(metavar="FILE",
                                                      help="File to write.")]) -> None:
    """Write mappings and signature material for an airgapped machine (no trust anchors:
    bring trusted roots and keys with `trust-root import` and `keys add`)."""
    from safedocker.cache.transfer import export_cache

    with _cache() as cache:
        summary = export_cache(cache, file)
    typer.echo(f"exported {summary.tags} tag(s), {summary.material} signature set(s), "
               f"{summary.manifests} manifest(s), {summary.configs} config(s) to {file}")


@cache_app.command("import")
def cache_import(file: Annotated[Path, typer.Argument(
        metavar="FILE", help="A file from `safe-docker cache export`.")]) -> None:
    """Load an export; everything in it is verified again under local policy before use.

    Material only: it never installs or changes a trusted root, key or Rekor key."""
    from safedocker.cache.transfer import import_cache

    with _cache() as cache:
        summary = import_cache(cache, file)
    typer.echo(f"imported {summary.tags} tag(s), {summary.material} signature set(s), "
               f"{summary.manifests} manifest(s), {summary.configs} config(s)")
    for name in summary.skipped_roots:
        typer.echo(f"safe-docker: trusted root {name!r} in {file} not installed \u2014 a cache "
                   "import brings material only, never trust anchors (hint: install a root "
                   "you trust with `safe-docker trust-root import FILE --name NAME`)", err=True)


@app.command()
def audit(
    since: Annotated[str | None, typer.Option(
        metavar="WHEN", help="Only since WHEN: 24h, 7d, 2026-11-01 or an ISO 8601 time.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show the decisions safe-docker made (pull/run/create/compose/verify)."""
    from safedocker.audit import AUDIT_COLUMNS, AuditLog, event_row, format_table, parse_since
    from safedocker.policy.paths import paths

    log_file = AuditLog(paths().state_dir)
    events = log_file.read(parse_since(since) if since else None)
    if as_json:
        for event in events:
            typer.echo(json.dumps(event, sort_keys=True))
    else:
        rows = [event_row(event) for event in events]
        for line in format_table([AUDIT_COLUMNS, *rows] if rows else []):
            typer.echo(line)
    if log_file.corrupt_lines:
        typer.echo(f"safe-docker: warning: skipped {log_file.corrupt_lines} damaged line(s) "
                   f"of {log_file.path}", err=True)


# --- gpu and doctor ----------------------------------------------------------------------


@app.command("gpu")
def gpu_command(
    image: Annotated[str | None, typer.Argument(
        metavar="IMAGE", help="Show the flags a run of IMAGE gets (verified first).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """What NVIDIA GPU support was detected, and the flags a run would get."""
    from safedocker.gpu.daemon import detect_daemon
    from safedocker.gpu.detect import detect_host
    from safedocker.gpu.flags import gpu_flags, resolve_mode
    from safedocker.gpu.report import report
    from safedocker.policy.model import GpuPolicy

    host = detect_host()
    daemon = detect_daemon() if host.present else None
    image_config: dict[str, Any] | None = None
    mode: Any = GpuPolicy.AUTO
    if image is not None:
        from safedocker.policy.config import load_config
        from safedocker.reference import parse_reference
        from safedocker.verify.verifier import Verifier

        config = load_config()
        verifier = Verifier(config, cache=_cache())
        verdict = verifier.verify(parse_reference(image))
        if not verdict.accepted:
            raise verdict.refusal()
        mode = verdict.decision.gpu
        found = verifier.image_config(verdict)
        image_config = dict(found) if found else None
    else:
        image_config = {"config": {"Env": ["NVIDIA_VISIBLE_DEVICES=all"]}}  # any CUDA image
    flags = gpu_flags([], image_config, host, daemon, resolve_mode(mode))
    data = report(host, daemon, flags)
    if as_json:
        _print_json(data)
        return
    if not host.present:
        typer.echo(f"no NVIDIA GPU: {host.reason}")
    else:
        typer.echo(f"driver {host.driver_version}, CUDA {host.cuda}")
        for device in host.devices:
            typer.echo(f"  {device.index}: {device.name} {device.uuid} "
                       f"cc {device.arch} {(device.memory_total or 0) // 2**20} MiB"
                       f"{' MIG' if device.mig_current else ''}")
    if daemon is not None:
        typer.echo(f"daemon: nvidia runtime {'yes' if daemon.nvidia_runtime else 'no'}, "
                   f"default runtime {daemon.default_runtime or '-'}, "
                   f"CDI devices {', '.join(daemon.cdi_nvidia_devices) or 'none'}")
    # Without a GPU the reason is the line above; say it once.
    reason = flags.reason if flags.reason and host.present else ""
    typer.echo(f"flags for a run: {' '.join(flags.args) or '(none)'}"
               f"{' — ' + reason if reason else ''}")


@app.command()
def doctor() -> None:
    """Check the real docker, the daemon, GPU support, the trust store and permissions."""
    from safedocker.ops.doctor import doctor_failed, run_checks
    from safedocker.policy.paths import paths

    checks = run_checks(paths())
    for check in checks:
        typer.echo(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if not check.ok and check.hint:
            typer.echo(f"       hint: {check.hint}")
    if any(not check.ok for check in checks):
        raise doctor_failed(checks)


# --- airgap -------------------------------------------------------------------------------

airgap_app = typer.Typer(
    help="Move verified images to machines without a registry (docker save/load stay "
         "docker's).",
    no_args_is_help=True)
app.add_typer(airgap_app, name="airgap")


@airgap_app.command("save")
def airgap_save(
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...",
                                                help="Images to save (verified first).")],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE",
                                         help="Archive to write.")],
) -> None:
    """Write verified images (manifests, configs, signatures, layers) into one archive."""
    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI
    from safedocker.airgap.save import save_images
    from safedocker.policy.config import load_config

    summary = save_images(images, output, config=load_config(), cache=_cache(),
                          docker=DockerCLI(real_docker()))
    typer.echo(summary.describe())


@airgap_app.command("load")
def airgap_load(
    archive: Annotated[Path, typer.Option("-i", "--input", metavar="FILE",
                                          help="Archive from `safe-docker airgap save`.")],
) -> None:
    """Verify an archive under local policy, then load a tar rebuilt from what was checked."""
    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI
    from safedocker.airgap.load import load_archive
    from safedocker.policy.config import load_config

    summary = load_archive(archive, config=load_config(), cache=_cache(),
                           docker=DockerCLI(real_docker()))
    typer.echo(summary.describe())


# --- trusted root ---------------------------------------------------------------------------

trust_root_app = typer.Typer(help="Sigstore trusted roots (keyless signatures, logs): one "
                             "per deployment, chosen per rule.", no_args_is_help=True)
app.add_typer(trust_root_app, name="trust-root")


@trust_root_app.command("list")
def trust_root_list(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
                    ) -> None:
    """Every installed trusted root: name, origin (system, user, built-in), whether used."""
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import list_roots

    rows = [{"name": e.name, "origin": e.origin, "path": str(e.path) if e.path else None,
             "in_use": e.in_use} for e in list_roots(paths())]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        note = "" if row["in_use"] else "\t(not used: a root of this name wins over it)"
        typer.echo(f"{row['name']}\t{row['origin']}\t{row['path'] or '-'}{note}")


@trust_root_app.command("show")
def trust_root_show(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME...", help="Roots to show (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """What is trusted (CAs, transparency logs, CT logs) and how old it is."""
    from safedocker._internal.timefmt import age_of
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import show

    rows = show(paths(), names or None)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']} ({row['origin']}): {row['source']}")
        typer.echo(f"  newest entry: {age_of(row['newest_valid_from'])}"
                   f"{'; file written ' + age_of(row['file_mtime']) if row['file_mtime'] else ''}")
        for ca in row["certificate_authorities"]:
            until = f", until {age_of(ca['valid_until'])}" if ca["valid_until"] else ""
            typer.echo(f"  CA   {ca['subject']} ({ca['uri']}) from {age_of(ca['valid_from'])}"
                       f"{until}")
        for kind in ("tlogs", "ctlogs"):
            for entry in row[kind]:
                typer.echo(f"  {kind[:-1]:6}{entry.get('url') or ''} "
                           f"{entry.get('log_id') or ''}")


@trust_root_app.command("update")
def trust_root_update() -> None:
    """Refresh the public-good root through TUF (online; verified before it is saved)."""
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import update_trust_root

    root = update_trust_root(paths())
    typer.echo(f"updated trusted root {root.name!r}: {root.source}")


@trust_root_app.command("import")
def trust_root_import(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A trusted_root.json file.")],
    name: Annotated[str, typer.Option(
        metavar="NAME", help="Name, for per-scope roots (policy trust_root).")] = "default",
    system: Annotated[bool, typer.Option(
        "--system", help="Install for every user (the system config dir).")] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace a root of this name that belongs to another deployment.")]
    = False,
) -> None:
    """Import a trusted_root.json (airgapped machines, private Sigstore deployments).

    A root of the same name from another deployment is never replaced silently: use
    --name for a second deployment, or --replace. The same deployment again (or a newer
    version of it: every CA and log of the installed root kept) updates it.
    """
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import import_trust_root

    imported = import_trust_root(paths(), file, name, system=system, replace=replace)
    root = imported.root
    typer.echo(f"{imported.outcome} trusted root {root.name!r}: "
               f"{len(root.certificate_authorities)} CA(s), {len(root.tlogs)} transparency "
               f"log(s), {len(root.ctlogs)} CT log(s)"
               f"{f' (was {imported.previous})' if imported.outcome == 'replaced' else ''}")


@trust_root_app.command("remove")
def trust_root_remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The root's name.")],
    system: Annotated[bool, typer.Option(
        "--system", help="Remove the system's root of this name.")] = False,
) -> None:
    """Remove an imported root (rules naming it refuse; default falls back to built-in)."""
    from safedocker.policy.config import load_config
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import DEFAULT_NAME, remove_trust_root

    where = paths()
    removed = remove_trust_root(where, name, system=system)
    typer.echo(f"removed trusted root {name!r} ({removed})")
    if name == DEFAULT_NAME:
        return
    try:
        rules = load_config(where).policy.rules
    except SafeDockerError as e:  # e.g. a locked system rule now lacks its root
        typer.echo(e.line(), err=True)
        return
    for rule in rules:
        if rule.trust_root == name and rule.identities:
            typer.echo(f"safe-docker: the rule for {rule.scope} names trusted root {name!r} "
                       "and refuses until one of that name is imported again", err=True)


# --- policy exchange, shell, compose -------------------------------------------------------


@policy_app.command("export")
def policy_export(
    fmt: Annotated[str, typer.Option(
        "--format", metavar="kyverno|policy-controller|containers-policy",
        help="The target.")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE", help="Write FILE (default: standard output).")]
    = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse (exit 78) where the target cannot express a check.")]
    = False,
) -> None:
    """Export the policy for a cluster admission engine or podman/skopeo.

    The closest policy the target can express: every check it cannot express is named on
    stderr and, in the YAML formats, as a comment in the output.
    """
    from safedocker._internal.files import atomic_write
    from safedocker.policy.config import load_config
    from safedocker.policy.export import export_policy

    exported = export_policy(load_config(), fmt, strict=strict)
    for gap in exported.gaps:
        typer.echo(f"safe-docker: warning: {gap.line()}", err=True)
    if output is None:
        typer.echo(exported.text, nl=False)
    else:
        atomic_write(output, exported.text.encode(), 0o644)
        typer.echo(f"wrote {output}", err=True)


@policy_app.command("import")
def policy_import(file: Annotated[Path, typer.Argument(
        metavar="FILE", help="podman's policy.json.")]) -> None:
    """Import podman's containers-policy.json (sigstoreSigned, reject, insecureAcceptAnything)."""
    from safedocker.policy.containers import import_containers_policy
    from safedocker.policy.paths import paths

    typer.echo(import_containers_policy(paths(), file))


@app.command("shell-init")
def shell_init(shell: Annotated[str, typer.Argument(
        metavar="bash|zsh|fish|wrapper", help="The shell to integrate with, or a POSIX "
        "`docker` wrapper for PATH.")],
        real_docker: Annotated[str | None, typer.Option(
            "--real-docker", metavar="PATH", help="wrapper: the real docker it runs "
            "(default: the first docker on PATH that is not safe-docker).")] = None) -> None:
    """Print shell code that sends to safe-docker only what may start an image.

    Use: eval "$(safe-docker shell-init bash)"
    """
    from safedocker.ops.shellinit import render

    typer.echo(render(shell, real_docker=real_docker), nl=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def compose(ctx: typer.Context) -> None:
    """docker compose with every service image verified and pinned (up, create, run, pull)."""
    from safedocker.gate.compose import plan_compose
    from safedocker.gate.handoff import execute

    execute(plan_compose(list(ctx.args)))


# --- entry ---------------------------------------------------------------------------------


class _Argument(TyperArgument):
    """A positional argument shown as docker shows them: ``IMAGE`` in the usage line (not
    typer's ``{image}``) and in the help, without a ``<str>`` type."""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or self.name or ""
        name = name if self.required else f"[{name}]"
        return [name if self.nargs == 1 or name.endswith("...") else f"{name}..."]

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def command() -> Any:
    """The click command tree of the app, with docker-style argument display."""
    root = typer.main.get_command(app)

    def restyle(node: Any) -> None:
        for param in getattr(node, "params", []):
            if type(param) is TyperArgument:
                param.__class__ = _Argument
        for sub in getattr(node, "commands", {}).values():
            restyle(sub)

    restyle(root)
    return root


class _ClickError(Protocol):
    """click's own errors (usage, bad parameter). typer vendors click from 0.26 on, so the
    class is not importable under one public name in every typer; each carries these."""

    exit_code: int

    def format_message(self) -> str: ...

    def show(self) -> None: ...


def _is_click_error(error: BaseException) -> TypeGuard[_ClickError]:
    return callable(getattr(error, "format_message", None)) and isinstance(
        getattr(error, "exit_code", None), int)


def usage_line(error: _ClickError) -> str:
    """click's usage error (``Error: Invalid value for '--x': …``) as our one line."""
    message = error.format_message().strip().rstrip(".")
    ctx = getattr(error, "ctx", None)
    where = f"`{ctx.command_path} --help`" if ctx is not None else "`safe-docker --help`"
    hint = f"see {where}"
    for marker in (" (Possible options: ", " (Did you mean "):
        message, found, guesses = message.partition(marker)
        if found and "," not in guesses:  # one close match; several are difflib's noise
            hint = f"did you mean {guesses.rstrip(')?')}? {hint}"
    what, sep, why = message.partition(": ")
    if not sep or not what.startswith(("Invalid value", "Got unexpected")):
        what, why = message, ""
    what = what[:1].lower() + what[1:]
    return SafeDockerError(what.replace("Error: ", ""), why=why, hint=hint).line()


def _run_app(argv: list[str]) -> int:
    # click's own errors become our one line; our own errors (SafeDockerError) pass through
    # to run_guarded.
    try:
        command().main(args=argv, prog_name="safe-docker", standalone_mode=False)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        sys.stderr.write("safe-docker: aborted\n")
    except Exception as e:
        if not _is_click_error(e):
            raise
        if e.format_message().startswith("Usage:"):  # a group without a command: its help
            e.show()
        else:
            sys.stderr.write(usage_line(e) + "\n")
        return int(e.exit_code)
        return 1
    return ExitCode.OK


def main(route: str, argv: list[str]) -> NoReturn:
    """Own commands and safe-docker's help (the shim handles pull/run/create itself)."""
    def run() -> int:
        args = argv if route != "help" or argv else ["--help"]
        if route == "own" and args and args[0].startswith("-") and "compose" in args and (
            args[0] not in ("-v", "-vv", "-vvv", "--verbose")
        ):
            from safedocker.gate.compose import hoist_docker_globals

            args = hoist_docker_globals(args)
        return _run_app(args)

    run_guarded(run)
