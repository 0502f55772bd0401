"""What own commands print: the text a person reads and the JSON a program reads.

Each view takes the library's values and returns lines (or JSON-ready data); the CLI only
writes them out. Warnings meant for stderr are whole ``safe-docker: …`` lines.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from safedocker._internal.timefmt import age_of, stamp
from safedocker.errors import printable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from safedocker.cache.store import Cache
    from safedocker.cache.transfer import ExportSummary, ImportSummary
    from safedocker.gpu.daemon import DaemonGpu
    from safedocker.gpu.detect import HostGpu
    from safedocker.gpu.flags import GpuFlags
    from safedocker.gpu.report import Check
    from safedocker.policy.config import Config
    from safedocker.policy.model import Decision, Rule
    from safedocker.reference import ImageRef
    from safedocker.trust.roots import ImportedRoot, RootEntry
    from safedocker.verify.verdict import Verdict


def dumps(obj: Any) -> str:
    """The JSON every ``--json`` prints: indented, keys sorted."""
    return json.dumps(obj, indent=2, sort_keys=True)


# --- verify --------------------------------------------------------------------------------


def verdict_lines(verdict: Verdict) -> list[str]:
    """``safe-docker verify``'s report: reference, digest, rule, signers, verdict."""
    lines = [f"reference: {verdict.ref}", f"digest:    {verdict.digest or '-'}"]
    if verdict.platform_digest and verdict.platform_digest != verdict.digest:
        lines.append(f"platform:  {verdict.platform_digest}")
    lines.append(f"rule:      {verdict.decision.explain()}")
    lines += [f"signer:    {signer.describe()}" for signer in verdict.signers]
    lines.append(f"verdict:   {'accepted' if verdict.accepted else 'refused'}"
                 f"{' (warning)' if verdict.warned else ''}")
    # A signer's certificate subject is the certificate owner's text: shown, never obeyed.
    return [printable(line) for line in lines]


# --- keys ----------------------------------------------------------------------------------


def key_lines(rows: Iterable[Mapping[str, str]]) -> list[str]:
    return [f"{row['name']}\t{row['fingerprint']}\t{row['origin']}\t{row['source']}"
            for row in rows]


def removed_key_warning(scope: str, name: str) -> str:
    return (f"safe-docker: the rule for {scope} names key {name!r} and refuses every "
            f"image until it is trusted again (hint: `safe-docker keys add {name} "
            "FILE` restores it)")


# --- policy --------------------------------------------------------------------------------


def signature_place(rule: Rule) -> dict[str, Any]:
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


def signature_place_text(rule: Rule) -> str:
    text = ""
    if rule.signatures_repository:
        text += f" signatures in {rule.signatures_repository}"
    if not rule.signed_identity.is_default:
        text += f" signed name: {rule.signed_identity.describe()}"
    return text


def policy_json(config: Config) -> dict[str, Any]:
    """``policy list --json``: the mode, the unmatched action, the lock, every rule."""
    rows = [{"scope": r.scope, "action": r.action.value, "keys": list(r.keys),
             "identities": [i.describe() for i in r.identities], "trust_root": r.trust_root,
             "threshold": r.threshold, "tlog": r.tlog.value, "reference": r.reference.value,
             "gpu": r.gpu.value, **signature_place(r), "source": r.source}
            for r in config.policy.rules]
    return {"mode": config.mode.value, "unmatched": config.unmatched.value,
            "locked": config.policy.locked, "rules": rows}


def policy_lines(config: Config) -> list[str]:
    """``policy list``: a header line, then one line per rule, system rules first."""
    lines = [f"mode = {config.mode.value}; unmatched = {config.unmatched.value}"
             f"{'; system policy locked' if config.policy.locked else ''}"]
    for rule in config.policy.rules:
        detail = f" keys={','.join(rule.keys)}" if rule.keys else ""
        if rule.identities:
            detail += (f" identities={'; '.join(i.describe() for i in rule.identities)}"
                       f" trust_root={rule.trust_root}")
        if detail:
            detail += f" threshold={rule.threshold}"
        lines.append(f"{rule.scope}\t{rule.action.value}{detail}{signature_place_text(rule)}"
                     f"\t({rule.source})")
    return lines


def rule_added_line(scope: str, rule: Mapping[str, Any]) -> str:
    """``policy add``'s confirmation: the scope as written, and the signers, keys first."""
    names = [*rule["keys"], *(i.get("subject") or i["subject_regexp"]
                              for i in rule.get("identities", ()))]
    root = rule.get("trust_root")
    return (f"policy for {scope}: verify with {', '.join(names)}"
            f"{f' (trusted root {root})' if root else ''}")


def check_action(config: Config, decision: Decision) -> str:
    """The action ``policy check`` names: the rule's, or what unmatched images get."""
    return decision.action.value if decision.action else f"unmatched ({config.unmatched.value})"


def check_json(ref: ImageRef, action: str, decision: Decision,
               because: str | None = None) -> dict[str, Any]:
    return {"reference": str(ref), "action": action,
            "explanation": because or decision.explain(),
            "rules": [{"scope": r.scope, "action": r.action.value,
                       "keys": list(r.keys), "trust_root": r.trust_root,
                       **signature_place(r),
                       "source": r.source}
                      for r in decision.rules]}


def check_lines(ref: ImageRef, action: str, decision: Decision,
                because: str | None = None) -> list[str]:
    lines = [f"{ref}: {action}", f"because: {because or decision.explain()}"]
    for rule in decision.rules:
        place = signature_place_text(rule)
        if place:
            lines.append(f"{rule.scope}:{place}")
    lines += [f"trusted root for {rule.scope}: {rule.trust_root}"
              for rule in decision.verify_rules if rule.identities and not rule.pki_roots]
    return lines


# --- trusted roots -------------------------------------------------------------------------


def root_rows(entries: Iterable[RootEntry]) -> list[dict[str, Any]]:
    return [{"name": e.name, "origin": e.origin, "path": str(e.path) if e.path else None,
             "in_use": e.in_use} for e in entries]


def root_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        note = "" if row["in_use"] else "\t(not used: a root of this name wins over it)"
        lines.append(f"{row['name']}\t{row['origin']}\t{row['path'] or '-'}{note}")
    return lines


def root_show_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """``trust-root show``: each root's CAs and logs, and how old it is."""
    lines = []
    for row in rows:
        lines.append(f"{row['name']} ({row['origin']}): {row['source']}")
        written = f"; file written {age_of(row['file_mtime'])}" if row["file_mtime"] else ""
        lines.append(f"  newest entry: {age_of(row['newest_valid_from'])}{written}")
        for ca in row["certificate_authorities"]:
            until = f", until {age_of(ca['valid_until'])}" if ca["valid_until"] else ""
            lines.append(f"  CA   {ca['subject']} ({ca['uri']}) from {age_of(ca['valid_from'])}"
                         f"{until}")
        for kind in ("tlogs", "ctlogs"):
            lines += [f"  {kind[:-1]:6}{entry.get('url') or ''} {entry.get('log_id') or ''}"
                      for entry in row[kind]]
    return lines


def root_import_line(imported: ImportedRoot) -> str:
    root, outcome = imported.root, imported.outcome
    return (f"{outcome} trusted root {root.name!r}: "
            f"{len(root.certificate_authorities)} CA(s), {len(root.tlogs)} transparency "
            f"log(s), {len(root.ctlogs)} CT log(s)"
            f"{f' (was {imported.previous})' if outcome == 'replaced' else ''}")


def removed_root_warning(scope: str, name: str) -> str:
    return (f"safe-docker: the rule for {scope} names trusted root {name!r} "
            "and refuses until one of that name is imported again")


# --- cache ---------------------------------------------------------------------------------


def cache_rows(cache: Cache) -> list[dict[str, Any]]:
    """``cache list``'s data: every tag mapping, and how many signatures are cached."""
    from safedocker.verify.material import cached_signatures

    return [{"name": e.name, "tag": e.tag, "digest": str(e.digest),
             "seen": stamp(e.seen_at), "material": e.has_material,
             "signatures": cached_signatures(cache, e.name, e.digest)
             if e.has_material else None}
            for e in cache.entries()]


def cache_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        name = f"{row['name']}:{row['tag']}" if row["tag"] else str(row["name"])
        if row["signatures"]:
            offline = "signatures cached"
        elif row["signatures"] == 0:
            offline = "no signature found"
        else:
            offline = "no signatures cached"
        lines.append(f"{name}\t{row['digest']}\t{row['seen']}\t{offline}")
    return lines


def transfer_counts(summary: ExportSummary | ImportSummary) -> str:
    """The counts a cache export or import names: tags, signature sets, manifests, configs."""
    return (f"{summary.tags} tag(s), {summary.material} signature set(s), "
            f"{summary.manifests} manifest(s), {summary.configs} config(s)")


def skipped_root_warning(name: str, file: object) -> str:
    return (f"safe-docker: trusted root {name!r} in {file} not installed \u2014 a cache "
            "import brings material only, never trust anchors (hint: install a root "
            "you trust with `safe-docker trust-root import FILE --name NAME`)")


# --- audit, gpu, doctor --------------------------------------------------------------------


def audit_lines(events: Iterable[Mapping[str, object]], as_json: bool) -> Iterable[str]:
    """``safe-docker audit``: one JSON object per line, or a table with a header."""
    from safedocker.audit import AUDIT_COLUMNS, event_row, format_table

    if as_json:
        return (json.dumps(event, sort_keys=True) for event in events)
    rows = [event_row(event) for event in events]
    return format_table([AUDIT_COLUMNS, *rows] if rows else [])


def gpu_lines(host: HostGpu, daemon: DaemonGpu | None, flags: GpuFlags) -> list[str]:
    """``safe-docker gpu``: the driver and devices, the daemon's runtimes, a run's flags."""
    if not host.present:
        lines = [f"no NVIDIA GPU: {host.reason}"]
    else:
        lines = [f"driver {host.driver_version}, CUDA {host.cuda}"]
        lines += [f"  {device.index}: {device.name} {device.uuid} "
                  f"cc {device.arch} {(device.memory_total or 0) // 2**20} MiB"
                  f"{' MIG' if device.mig_current else ''}" for device in host.devices]
    if daemon is not None:
        lines.append(f"daemon: nvidia runtime {'yes' if daemon.nvidia_runtime else 'no'}, "
                     f"default runtime {daemon.default_runtime or '-'}, "
                     f"CDI devices {', '.join(daemon.cdi_nvidia_devices) or 'none'}")
    # Without a GPU the reason is the line above; say it once.
    reason = flags.reason if flags.reason and host.present else ""
    lines.append(f"flags for a run: {' '.join(flags.args) or '(none)'}"
                 f"{' — ' + reason if reason else ''}")
    return lines


def doctor_lines(checks: Sequence[Check]) -> list[str]:
    lines = []
    for check in checks:
        lines.append(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if not check.ok and check.hint:
            lines.append(f"       hint: {check.hint}")
    return lines
