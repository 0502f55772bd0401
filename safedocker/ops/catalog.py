"""``policy catalog list|show|add``, and what ``policy check`` says of catalogued images.

``add`` writes ordinary rules through the config writer (:func:`set_rule`) and the
publisher's keys through the key store, pinned to the fingerprints the catalogue was
reviewed with: the user reads and changes them like any rule. It never replaces a rule of
the user's that verifies or refuses (only an ``accept``, which it makes stricter), and never
trusts a key under a name already holding another key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safedocker.errors import UsageError
from safedocker.policy.catalog import Catalog, Entry, Kind, load, rule_tables
from safedocker.policy.config import load_config, load_user_document, set_rule
from safedocker.policy.model import normalize_scope

if TYPE_CHECKING:
    from collections.abc import Mapping

    from safedocker.policy.model import Decision
    from safedocker.policy.paths import Paths
    from safedocker.reference import ImageRef


def signer_text(entry: Entry) -> str:
    """Who signs, in one phrase: the identities or the keys, or why there is nothing."""
    if entry.kind is Kind.UNSIGNED:
        return "published unsigned"
    if entry.kind is Kind.PENDING:
        return f"pending: {entry.why}"
    if entry.keys:
        return "key " + ", ".join(f"{k.name} ({k.fingerprint})" for k in entry.keys)
    return "; ".join(i.describe() + "".join(f", {k.removeprefix('github_')} {v}"
                                            for k, v in i.claims.items())
                     for i in entry.identities)


def entry_json(entry: Entry) -> dict[str, Any]:
    data: dict[str, Any] = {"name": entry.name, "title": entry.title,
                            "status": entry.kind.value, "scopes": list(entry.scopes),
                            "source": entry.source, "sources": list(entry.sources),
                            "notes": entry.notes}
    if entry.kind is Kind.SIGNED:
        data.update({
            "signing": entry.signing.value if entry.signing else None,
            "identities": [{k: v for k, v in vars(i).items() if v is not None}
                           for i in entry.identities],
            "keys": [{"name": k.name, "fingerprint": k.fingerprint} for k in entry.keys],
            "tlog": entry.tlog.value,
            "signatures_repository": entry.signatures_repository,
            "remaps": [r.describe() for r in entry.remaps],
            "remap_confidence": entry.remap_confidence,
            "requires": list(entry.requires),
            "missing_features": list(entry.missing_features),
        })
    elif entry.kind is Kind.PENDING:
        data["why"] = entry.why
        data["key_urls"] = dict(entry.key_urls or {})
    return data


def list_json(catalog: Catalog) -> dict[str, Any]:
    return {"version": catalog.version, "reviewed": catalog.reviewed,
            "publishers": [entry_json(e) for e in catalog.entries]}


def list_lines(catalog: Catalog) -> list[str]:
    lines = [f"publisher catalogue {catalog.version} (reviewed {catalog.reviewed})"]
    for entry in catalog.entries:
        status = entry.kind.value
        if entry.kind is Kind.SIGNED:
            status = entry.signing.value if entry.signing else status
            if entry.missing_features:
                status += " (needs a newer safe-docker)"
        lines.append(f"{entry.name}\t{status}\t{' '.join(entry.scopes)}")
    return lines


def show_lines(entry: Entry) -> list[str]:
    lines = [f"{entry.name}: {entry.title} ({entry.kind.value})",
             f"scopes: {' '.join(entry.scopes)}",
             f"source: {entry.source}", *(f"also: {s}" for s in entry.sources)]
    if entry.kind is Kind.SIGNED:
        lines.append(f"signers: {signer_text(entry)}")
        lines.append(f"transparency log: {entry.tlog.value}")
        if entry.signatures_repository:
            lines.append(f"signatures in: {entry.signatures_repository}")
        lines += [f"may also sign as: {remap.describe()} ({entry.remap_confidence})"
                  for remap in entry.remaps]
        if entry.missing_features:
            lines.append("not addable: needs " + ", ".join(entry.missing_features))
        else:
            lines.append(f"add with: safe-docker policy catalog add {entry.name}")
    elif entry.kind is Kind.PENDING:
        lines.append(f"not addable yet: {entry.why}")
    else:
        lines.append(f"not signed: accept knowingly with `safe-docker policy allow "
                     f"{entry.scopes[0]}`")
    if entry.notes:
        lines.append(f"notes: {entry.notes}")
    return lines


def add(where: Paths, name: str) -> list[str]:
    """Trust ``name``'s keys and write its rules; the lines saying what was done.

    Everything is checked before anything is written: an unsigned, pending or unsupported
    entry, a key name taken by another key, or a user rule for one of the scopes that
    verifies or refuses otherwise (``policy remove`` it first) is a :class:`UsageError`.
    """
    from safedocker.ops.present import rule_added_line
    from safedocker.trust.keystore import trust_key

    entry = load().get(name)
    tables = rule_tables(entry)  # refuses unsigned, pending and unsupported entries
    config = load_config(where)
    for key in entry.keys:
        held = config.keys.get(key.name)
        if key.name in config.removed_keys or (held and held.fingerprint != key.fingerprint):
            raise UsageError(f"cannot trust {entry.name}'s key as {key.name!r}",
                             why="that name holds another key, or a key you removed",
                             hint=f"compare `safe-docker keys list`; this key is "
                                  f"{key.fingerprint}")
    existing = _user_rules(where)
    plans = []
    for scope, table in zip(entry.scopes, tables, strict=True):
        current = existing.get(normalize_scope(scope))
        if current is not None and _same(current, table):
            continue
        if current is not None and current.get("action") != "accept":
            raise UsageError(f"you already have a rule for {scope}",
                             why="catalog add does not replace a rule that verifies or "
                                 "refuses",
                             hint=f"`safe-docker policy remove {scope}` first, or edit it")
        plans.append((scope, table, current is not None))
    lines = []
    for key in entry.keys:
        if key.name not in config.keys:
            trust_key(where, key.name, key.pem.encode("ascii"),
                      f"catalogue {entry.name}: {entry.source}", key.fingerprint)
            lines.append(f"trusted key {key.name} ({key.fingerprint})")
    for scope, table, replaced in plans:
        written = set_rule(where, scope, table)
        lines.append(rule_added_line(written, table)
                     + (" (was: accept without signatures)" if replaced else ""))
    if not plans:
        lines.append(f"{entry.name}: your policy already has these rules")
    elif entry.remaps and entry.remap_confidence:
        lines.append(f"note: signed names {', '.join(r.describe() for r in entry.remaps)}"
                     f" — {entry.remap_confidence}")
    return lines


def _user_rules(where: Paths) -> dict[str, Mapping[str, Any]]:
    rules = load_user_document(where).get("policy", [])
    return {normalize_scope(str(r.get("scope", ""))): r for r in rules if isinstance(r, dict)}


def _same(current: Mapping[str, Any], table: Mapping[str, Any]) -> bool:
    return {k: v for k, v in current.items() if k != "scope"} == dict(table)


def check_explanation(ref: ImageRef, decision: Decision) -> str:
    """``policy check``'s "because": for an image no rule covers, what the catalogue knows
    (published unsigned, or who signs it and how to add that), else the rule's own."""
    generic = decision.explain()
    if decision.rules:
        return generic
    entry = load().covering(ref)
    if entry is None:
        return generic
    tail = f"; unmatched images: {decision.unmatched.value}"
    if entry.kind is Kind.UNSIGNED:
        return (f"{ref.name} is published unsigned ({entry.title} are not signed today; "
                f"see {entry.source}){tail}")
    if entry.kind is Kind.SIGNED and not entry.missing_features:
        return (f"{generic} (the publisher catalogue knows its signer: "
                f"`safe-docker policy catalog add {entry.name}`)")
    return generic
