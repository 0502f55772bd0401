"""safe-docker's own commands, and the one place where errors become exit codes.

This is the only module that imports typer. Each command parses its arguments, calls the
library, and prints; every :class:`SafeDockerError` is turned into one stderr line and
its exit code in :func:`main`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument

from safedocker import __version__
from safedocker.console import run_guarded, setup_logging
from safedocker.errors import ExitCode, SafeDockerError
from safedocker.ops import present
from safedocker.ops.args import key_value, password, prune_age
from safedocker.ops.usage import is_click_error, usage_line

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from safedocker.cache.store import Cache


HELP = """\
safe-docker: verify image signatures and pin digests before docker pulls or runs them.

Used as `docker` (alias or first on PATH), it intercepts every command that can start
an image (`pull`, `run`, `create`, builds, compose, services, plugins): each image is
resolved to a digest, its signatures are checked against your trust store and policy,
and docker is handed `repo@sha256:…`. Commands it does not know are refused. All other
commands go to docker unchanged: `safe-docker ps` is `docker ps`.
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

    typer.echo(present.dumps(obj))


def _echo(lines: Iterable[str], *, err: bool = False) -> None:
    for line in lines:
        typer.echo(line, err=err)


def _show(as_json: bool, data: Callable[[], Any], text: Callable[[], Iterable[str]]) -> None:
    """``--json``: what ``data`` returns as JSON; else the lines ``text`` renders."""
    if as_json:
        _print_json(data())
    else:
        _echo(text())


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
    from safedocker.ops.checkimage import check_image

    verdict = check_image(image, platform=platform)
    if verdict.offline:
        typer.echo(f"safe-docker: {verdict.offline_note()}", err=True)
    _show(as_json, verdict.to_json, lambda: present.verdict_lines(verdict))
    if not verdict.accepted:
        raise verdict.refusal()


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
    _show(as_json, lambda: rows, lambda: present.key_lines(rows))


@keys_app.command("remove")
def keys_remove(name: Annotated[str, typer.Argument(metavar="NAME",
                                                    help="The key's name.")]) -> None:
    """Stop trusting a key; rules naming it refuse until `keys add NAME` restores them."""
    from safedocker.policy.paths import paths
    from safedocker.trust.keystore import remove_key

    naming = remove_key(paths(), name)
    typer.echo(f"removed key {name}")
    _echo((present.removed_key_warning(scope, name) for scope in naming), err=True)


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

    generated = generate_key(paths(), name, directory, password(confirm=True))
    typer.echo(f"private key: {generated.private_path}")
    typer.echo(f"public key:  {generated.public_path}")
    typer.echo(f"trusted as {name} {generated.entry.fingerprint}")


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
    from safedocker.ops import ruleoptions
    from safedocker.policy.config import set_rule
    from safedocker.policy.paths import paths

    rule = ruleoptions.verify_rule(ruleoptions.RuleOptions(
        keys=key or (), threshold=threshold, tlog=tlog, reference=reference, gpu=gpu,
        annotations=annotation or (), identities=identity or (),
        identity_regexps=identity_regexp or (), signatures_repository=signatures_repository,
        remaps=remap or (), remap_regexps=remap_regexp or (), trust_root=trust_root))
    where = paths()
    typer.echo(present.rule_added_line(set_rule(where, scope, rule), rule))
    _echo(ruleoptions.missing_root_warnings(where, trust_root), err=True)


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
    _show(as_json, lambda: present.policy_json(config), lambda: present.policy_lines(config))


@policy_app.command("check")
def policy_check(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="Image reference.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show which rule applies to IMAGE and why (no network)."""
    from safedocker.ops.catalog import check_explanation
    from safedocker.policy.config import load_config
    from safedocker.reference import parse_reference

    config = load_config()
    ref = parse_reference(image)
    decision = config.policy.decide(ref)
    action = present.check_action(config, decision)
    because = check_explanation(ref, decision)
    _show(as_json, lambda: present.check_json(ref, action, decision, because),
          lambda: present.check_lines(ref, action, decision, because))


catalog_app = typer.Typer(help="The publisher catalogue: who signs their images, and how.",
                          no_args_is_help=True)
policy_app.add_typer(catalog_app, name="catalog")
PUBLISHER_HELP = "A publisher's name in the catalogue (see `policy catalog list`)."


@catalog_app.command("list")
def catalog_list(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
                 ) -> None:
    """List the catalogue's publishers: signed, pending, and known unsigned."""
    from safedocker.ops import catalog
    from safedocker.policy.catalog import load

    _show(as_json, lambda: catalog.list_json(load()), lambda: catalog.list_lines(load()))


@catalog_app.command("show")
def catalog_show(
    name: Annotated[str, typer.Argument(metavar="NAME", help=PUBLISHER_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show a publisher's scopes, signers, sources and notes."""
    from safedocker.ops import catalog
    from safedocker.policy.catalog import load

    entry = load().get(name)
    _show(as_json, lambda: catalog.entry_json(entry), lambda: catalog.show_lines(entry))


@catalog_app.command("add")
def catalog_add(name: Annotated[str, typer.Argument(metavar="NAME", help=PUBLISHER_HELP)],
                ) -> None:
    """Trust a publisher: write its rules (and keys) into your policy."""
    from safedocker.ops import catalog
    from safedocker.policy.paths import paths

    _echo(catalog.add(paths(), name))


@policy_app.command("init")
def policy_init(
    compose: Annotated[bool, typer.Option(
        "--compose", help="Also the images of the compose project here.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Write without asking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Propose rules for the images you use (local store, compose), then write them."""
    import os

    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI
    from safedocker.ops import onboard
    from safedocker.policy.config import load_config
    from safedocker.policy.paths import paths

    where = paths()
    images = list(DockerCLI(real_docker()).image_names())
    if compose:
        images += onboard.compose_images(Path.cwd(), os.environ)
    plan = onboard.propose(load_config(where), images)
    _show(as_json, lambda: onboard.plan_json(plan), lambda: onboard.plan_lines(plan))
    if not onboard.writable(plan):
        return
    if not yes and not (sys.stdin.isatty() and typer.confirm(
            f"Write these rules to {where.user_config_file}?", err=True)):
        typer.echo("nothing written (run again with --yes to write them)", err=True)
        return
    _echo(onboard.write(where, plan), err=as_json)


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

    annotations = dict(key_value(item, "--annotation", "sign") for item in annotation or [])
    result = sign_image(image, key, password(), load_config(), annotations)
    typer.echo(f"signed {result.ref.name}@{result.digest}")
    typer.echo(f"signature: {result.signature_tag} ({result.signatures_now} signature(s))")


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

    with _cache() as cache:
        rows = present.cache_rows(cache)
    _show(as_json, lambda: rows, lambda: present.cache_lines(rows))


@cache_app.command("prune")
def cache_prune(
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="AGE", help="Remove what is older than AGE: 30d, 12h, 90m.")]
    = None,
    everything: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
) -> None:
    """Remove cached entries older than --older-than, or all of them with --all."""

    from safedocker.cache import verdicts

    seconds = prune_age(older_than, everything)
    with _cache() as cache:
        removed = cache.prune(seconds) + verdicts.prune(cache.path.parent, seconds)
    typer.echo(f"removed {removed} cached entr{'y' if removed == 1 else 'ies'}")


@cache_app.command("export")
def cache_export(file: Annotated[Path, typer.Argument(metavar="FILE",
                                                      help="File to write.")]) -> None:
    """Write mappings and signature material for an airgapped machine (no trust anchors:
    bring trusted roots and keys with `trust-root import` and `keys add`)."""
    from safedocker.cache.transfer import export_cache

    with _cache() as cache:
        summary = export_cache(cache, file)
    typer.echo(f"exported {present.transfer_counts(summary)} to {file}")


@cache_app.command("import")
def cache_import(file: Annotated[Path, typer.Argument(
        metavar="FILE", help="A file from `safe-docker cache export`.")]) -> None:
    """Load an export; everything in it is verified again under local policy before use.

    Material only: it never installs or changes a trusted root, key or Rekor key."""
    from safedocker.cache.transfer import import_cache

    with _cache() as cache:
        summary = import_cache(cache, file)
    typer.echo(f"imported {present.transfer_counts(summary)}")
    _echo((present.skipped_root_warning(name, file) for name in summary.skipped_roots), err=True)


@app.command()
def audit(
    since: Annotated[str | None, typer.Option(
        metavar="WHEN", help="Only since WHEN: 24h, 7d, 2026-11-01 or an ISO 8601 time.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show the decisions safe-docker made (pull/run/create/compose/verify)."""
    from safedocker.audit import AuditLog, parse_since
    from safedocker.policy.paths import paths

    log_file = AuditLog(paths().state_dir)
    _echo(present.audit_lines(log_file.read(parse_since(since) if since else None), as_json))
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
    from safedocker.gpu.report import report
    from safedocker.ops.gpu import gpu_situation

    found = gpu_situation(image)
    _show(as_json, lambda: report(found.host, found.daemon, found.flags),
          lambda: present.gpu_lines(found.host, found.daemon, found.flags))


@app.command()
def doctor() -> None:
    """Check the real docker, the daemon, GPU support, the trust store and permissions."""
    from safedocker.ops.doctor import doctor_failed, run_checks
    from safedocker.policy.paths import paths

    checks = run_checks(paths())
    _echo(present.doctor_lines(checks))
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

    rows = present.root_rows(list_roots(paths()))
    _show(as_json, lambda: rows, lambda: present.root_lines(rows))


@trust_root_app.command("show")
def trust_root_show(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME...", help="Roots to show (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """What is trusted (CAs, transparency logs, CT logs) and how old it is."""
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import show

    rows = show(paths(), names or None)
    _show(as_json, lambda: rows, lambda: present.root_show_lines(rows))


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
        "--replace", help="Replace a root of this name that is not the same root again "
                          "(another deployment, or more or wider anchors).")]
    = False,
) -> None:
    """Import a trusted_root.json (airgapped machines, private Sigstore deployments).

    A root of the same name is never replaced or extended silently: a file that lacks,
    adds or widens any CA or log anchor of it needs --name (a second root) or --replace.
    The same root again (or one that only ends validity windows) updates it.
    """
    from safedocker.policy.paths import paths
    from safedocker.trust.roots import import_trust_root

    typer.echo(present.root_import_line(import_trust_root(paths(), file, name, system=system,
                                                  replace=replace)))


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
    _echo((present.removed_root_warning(rule.scope, name) for rule in rules
           if rule.trust_root == name and rule.identities), err=True)


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
        if not is_click_error(e):
            raise
        if e.format_message().startswith("Usage:"):  # a group without a command: its help
            e.show()
        else:
            sys.stderr.write(usage_line(e) + "\n")
        return int(e.exit_code)
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
