"""Import of podman's containers-policy.json (``policy import``) into the user configuration.

What cannot be represented exactly is refused whole (:class:`UnimportablePolicy`, nothing is
written); a requirement is never read as weaker than podman would apply it.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker._internal.encoding import b64decode
from safedocker.errors import ConfigError, UsageError
from safedocker.policy.export import WILDCARD_DOMAIN
from safedocker.policy.model import Action, ReferenceCheck, Tlog, Unmatched, normalize_scope

if TYPE_CHECKING:
    from collections.abc import Mapping

    from safedocker.policy.paths import Paths
    from safedocker.reference import ImageRef

MAX_IMPORT_BYTES = 4 * 1024 * 1024


class UnimportablePolicy(ConfigError):
    """A containers-policy.json that safe-docker cannot represent (nothing is written)."""


_REQUIREMENT_FIELDS = {
    "reject": {"type"},
    "insecureAcceptAnything": {"type"},
    "sigstoreSigned": {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
                       "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                       "rekorPublicKeyDatas", "signedIdentity"},
}
# containers/image (newPRSigstoreSigned): exactly one key source, at most one Rekor source.
_KEY_SOURCES = ("keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki")
_REKOR_SOURCES = ("rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                  "rekorPublicKeyDatas")
_MAX_KEY_FILE_BYTES = 1024 * 1024
# Every signedIdentity type and exactly the fields it takes.
_IDENTITY_FIELDS = {
    "matchRepository": {"type"},
    "matchExact": {"type"},
    "matchRepoDigestOrExact": {"type"},
    "exactReference": {"type", "dockerReference"},
    "exactRepository": {"type", "dockerRepository"},
    "remapIdentity": {"type", "prefix", "signedPrefix"},
}
_IDENTITY_TYPES = {
    "matchRepository": ReferenceCheck.REPOSITORY,
    "matchExact": ReferenceCheck.EXACT,
    # By tag: the exact reference; by digest: the repository. safe-docker's "exact" is
    # the stricter of the two, so the import never accepts what podman refuses.
    "matchRepoDigestOrExact": ReferenceCheck.EXACT,
}


@dataclass
class _Imported:
    """What one scope becomes, before it is written."""

    scope: str
    action: Action
    keys: list[str]
    identities: list[dict[str, str]]
    threshold: int
    tlog: Tlog
    reference: ReferenceCheck
    signed_identity: dict[str, Any] | None = None  # the config's signed_identity table

    def document(self) -> dict[str, Any]:
        if self.action is not Action.VERIFY:
            return {"scope": self.scope, "action": self.action.value}
        rule: dict[str, Any] = {"scope": self.scope, "action": "verify", "keys": self.keys,
                                "threshold": self.threshold, "tlog": self.tlog.value}
        fixed = self.signed_identity is not None and "remap" not in self.signed_identity
        if not fixed:  # exact_reference / exact_repository replace the reference check
            rule["reference"] = self.reference.value
        if self.signed_identity is not None:
            rule["signed_identity"] = self.signed_identity
        if self.identities:
            rule["identities"] = self.identities
        return rule


class _Importer:
    def __init__(self, where: Paths, source: Path) -> None:
        from safedocker.policy.config import load_user_document

        self.where = where
        self.source = source
        self.document = load_user_document(where)
        self.existing = {str(entry.get("fingerprint")): name
                         for name, entry in self.document.get("keys", {}).items()
                         if isinstance(entry, dict)}
        self.new_keys: dict[str, tuple[bytes, str]] = {}  # name -> (pem, fingerprint)
        self.rekor: dict[str, str] = {}  # fingerprint -> key name

    def refuse(self, where: str, why: str, hint: str = "") -> UnimportablePolicy:
        return UnimportablePolicy(
            f"cannot import {self.source}", why=f"{where}: {why}",
            hint=hint or "nothing was written; edit the file or add the rule by hand")

    # keys -----------------------------------------------------------------------------

    def _name(self, where: str, path: object) -> str:
        if not isinstance(path, str) or not path:
            raise self.refuse(where, "must be a file name (a non-empty string)")
        return path

    def _check_name(self, where: str, path: object) -> bytes:
        self._name(where, path)
        return b""  # podman reads the file only when it verifies

    def _read(self, where: str, path: object) -> bytes:
        name = self._name(where, path)
        try:
            with Path(name).open("rb") as file:
                data = file.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError as e:
            raise self.refuse(where, f"cannot read {path}: {e.strerror or e}") from e
        if len(data) > _MAX_KEY_FILE_BYTES:
            raise self.refuse(where, f"{path} is too large for a key or certificate file")
        return data

    def _decode(self, where: str, data: object) -> bytes:
        if not isinstance(data, str):
            raise self.refuse(where, "key data must be a base64 string")
        try:
            return b64decode(data)
        except (binascii.Error, ValueError) as e:
            raise self.refuse(where, "key data is not valid base64") from e

    def key_name(self, where: str, pem: bytes, prefix: str = "imported") -> str:
        from safedocker.trust.keys import load_public_key

        try:
            fingerprint = load_public_key(pem, "imported").fingerprint
        except ConfigError as e:
            raise self.refuse(where, e.what, e.hint) from None
        if fingerprint in self.existing:
            return str(self.existing[fingerprint])
        name = f"{prefix}-{fingerprint[7:19]}"
        self.new_keys[name] = (pem, fingerprint)
        self.existing[fingerprint] = name
        return name

    def keys_of(self, where: str, item: Mapping[str, Any], single: str, plural: str,
                prefix: str = "imported") -> list[str]:
        return [self.key_name(where, pem, prefix)
                for pem in self.pems_of(where, item, single, plural)]

    def pems_of(self, where: str, item: Mapping[str, Any], single: str, plural: str,
                *, read_files: bool = True) -> list[bytes]:
        """The PEMs of the ``{single}Path/Data`` and ``{plural}Paths/Datas`` fields; without
        ``read_files`` only checked as podman loads them (paths are names, data base64)."""
        pems: list[bytes] = []
        path_reader = self._read if read_files else self._check_name
        for field_name, read in ((f"{single}Path", path_reader), (f"{single}Data", self._decode)):
            if field_name in item:
                pems.append(read(f"{where}.{field_name}", item[field_name]))
        for field_name, read in ((f"{plural}Paths", path_reader),
                                 (f"{plural}Datas", self._decode)):
            if field_name in item:
                values = item[field_name]
                if not isinstance(values, list) or not values:
                    raise self.refuse(f"{where}.{field_name}", "must be a non-empty list")
                pems.extend(read(f"{where}.{field_name}", v) for v in values)
        return pems

    # requirements -----------------------------------------------------------------------

    def scope(self, key: str) -> str:
        where = f"transports.docker[{key!r}]"
        if WILDCARD_DOMAIN.match(key):
            return f"{key}/*"
        if "*" in key or key != key.strip():
            raise self.refuse(where, "not a valid containers-policy scope")
        if "/" not in key:
            candidate = f"{key}/*"
            if normalize_scope(candidate) != candidate:
                raise self.refuse(where, f"safe-docker would read host {key!r} as a Docker "
                                  "Hub name")
            return key
        if normalize_scope(key) != key:
            raise self.refuse(where, "containers-policy scopes are fully qualified; "
                              f"safe-docker would read {key!r} as {normalize_scope(key)!r}")
        return key

    def rule(self, scope: str, where: str, requirements: object) -> _Imported:
        if not isinstance(requirements, list) or not requirements:
            raise self.refuse(where, "must be a non-empty list of requirements")
        kinds = []
        for number, item in enumerate(requirements):
            item_where = f"{where}[{number}]"
            kind = item.get("type") if isinstance(item, dict) else item
            if kind == "signedBy":
                raise self.refuse(item_where, "signedBy (GPG or X.509 signatures) is not "
                                  "supported: safe-docker verifies sigstore signatures",
                                  hint="nothing was written; sign the images with cosign and "
                                  "use sigstoreSigned")
            if not isinstance(item, dict) or not isinstance(kind, str) \
                    or kind not in _REQUIREMENT_FIELDS:
                what = "has no type" if kind is None else f"type {kind!r} is not supported"
                raise self.refuse(item_where, f"the requirement {what}",
                                  hint="safe-docker imports sigstoreSigned, reject and "
                                  "insecureAcceptAnything (not signedBy GPG signatures)")
            unknown = set(item) - _REQUIREMENT_FIELDS[kind]
            if unknown:
                raise self.refuse(item_where, f"unsupported fields {sorted(unknown)}")
            if kind == "sigstoreSigned":
                self.check_sigstore(item_where, item, scope)
            kinds.append(kind)
        if "reject" in kinds:
            return _Imported(scope, Action.REJECT, [], [], 1, Tlog.OFF, ReferenceCheck.REPOSITORY)
        signed = [(n, i) for n, i in enumerate(requirements) if i["type"] == "sigstoreSigned"]
        if not signed:
            return _Imported(scope, Action.ACCEPT, [], [], 1, Tlog.OFF, ReferenceCheck.REPOSITORY)
        keys: list[str] = []
        identities: list[dict[str, str]] = []
        references: list[ReferenceCheck] = []
        signed_identities: list[dict[str, Any] | None] = []
        tlog = Tlog.OFF
        any_of = False
        for number, item in signed:
            item_where = f"{where}[{number}]"
            check, signed_identity = self.identity(item_where, item.get("signedIdentity"),
                                                   scope)
            references.append(check)
            signed_identities.append(signed_identity)
            rekor = self.keys_of(item_where, item, "rekorPublicKey", "rekorPublicKey", "rekor")
            if rekor:
                tlog = Tlog.REQUIRED
                for name in rekor:
                    self.rekor[name] = name
            item_keys = self.keys_of(item_where, item, "key", "key")
            if "fulcio" in item:
                if item_keys:
                    raise self.refuse(item_where, "both keys and fulcio")
                identities.append(self.fulcio(f"{item_where}.fulcio", item["fulcio"]))
            elif not item_keys:
                raise self.refuse(item_where, "sigstoreSigned needs a key or fulcio")
            if len(item_keys) > 1:
                any_of = True
            keys.extend(item_keys)
        signers = len(keys) + len(identities)
        if len(set(keys)) != len(keys):
            raise self.refuse(where, "the same key is required twice")
        if any_of and len(signed) > 1:
            raise self.refuse(where, "an AND of requirements where one lists several keys "
                              "(any of them) cannot be expressed as one threshold")
        if tlog is Tlog.REQUIRED and any(not self.keys_of("", i, "rekorPublicKey",
                                                          "rekorPublicKey", "rekor")
                                         for _, i in signed):
            raise self.refuse(where, "a Rekor key on some requirements only")
        threshold = 1 if any_of or signers == 1 else signers
        reference = (ReferenceCheck.EXACT if ReferenceCheck.EXACT in references
                     else ReferenceCheck.REPOSITORY)
        if any(other != signed_identities[0] for other in signed_identities):
            raise self.refuse(where, "requirements that name different signed identities "
                              "(exactReference, exactRepository, remapIdentity) cannot be one "
                              "rule")
        return _Imported(scope, Action.VERIFY, keys, identities, threshold, tlog, reference,
                         signed_identities[0])

    def check_sigstore(self, where: str, item: Mapping[str, Any], scope: str) -> None:
        """containers/image's rules for one sigstoreSigned requirement (newPRSigstoreSigned),
        checked whole even where a reject next to it decides (podman refuses the file)."""
        sources = [name for name in _KEY_SOURCES if name in item]
        if len(sources) != 1:
            given = f" (given: {', '.join(sources)})" if sources else ""
            raise self.refuse(where, "exactly one of keyPath, keyPaths, keyData, keyDatas, "
                              f"fulcio and pki must be given{given}")
        rekor = [name for name in _REKOR_SOURCES if name in item]
        if len(rekor) > 1:
            raise self.refuse(where, f"at most one Rekor key field may be given (given: "
                              f"{', '.join(rekor)})")
        if "pki" in item:
            raise self.refuse(f"{where}.pki", "pki (certificates from a private CA) cannot "
                              "be imported", hint="nothing was written; write a rule with "
                              "pki_roots and identities by hand")
        if "fulcio" in item and not rekor:
            raise self.refuse(where, "fulcio needs a Rekor public key (rekorPublicKeyPath, "
                              "rekorPublicKeyPaths, rekorPublicKeyData or rekorPublicKeyDatas)")
        if "signedIdentity" in item and item["signedIdentity"] is None:
            raise self.refuse(f"{where}.signedIdentity", "must be an object, not null")
        self.check_identity(f"{where}.signedIdentity", item.get("signedIdentity"))
        self.pems_of(where, item, "key", "key", read_files=False)
        self.pems_of(where, item, "rekorPublicKey", "rekorPublicKey", read_files=False)
        if "fulcio" in item:
            self.fulcio(f"{where}.fulcio", item["fulcio"], read_files=False)

    def check_identity(self, where: str, value: object) -> tuple[str, Mapping[str, object]] | None:
        """The signedIdentity's type and fields once their shape is valid (None: absent)."""
        if value is None:
            return None
        kind = value.get("type") if isinstance(value, dict) else value
        if not isinstance(value, dict) or not isinstance(kind, str) \
                or kind not in _IDENTITY_FIELDS:
            what = "has no type" if kind is None else f"type {kind!r} is not supported"
            raise self.refuse(where, f"the signedIdentity {what}",
                              hint="use matchRepository, matchExact, matchRepoDigestOrExact, "
                              "exactReference or exactRepository")
        if set(value) != _IDENTITY_FIELDS[kind]:
            raise self.refuse(where, f"{kind} takes exactly the fields "
                              f"{sorted(_IDENTITY_FIELDS[kind])}")
        if kind in ("exactReference", "exactRepository"):
            self.fixed_reference(where, kind, value)
        if kind == "remapIdentity":
            from safedocker.reference import is_name_prefix

            for name in ("prefix", "signedPrefix"):
                if not isinstance(value[name], str) or not is_name_prefix(value[name]):
                    raise self.refuse(f"{where}.{name}", f"remapIdentity {name} "
                                      f"{value[name]!r} is not a registry host or a fully "
                                      "qualified repository")
        return kind, value

    def identity(self, where: str, value: object, scope: str
                 ) -> tuple[ReferenceCheck, dict[str, Any] | None]:
        """The reference check for a signedIdentity (None: absent) under ``scope``, and
        the config's ``signed_identity`` table where one is needed."""
        where = f"{where}.signedIdentity"
        checked = self.check_identity(where, value)
        if checked is None:
            return ReferenceCheck.EXACT, None  # podman's default: matchRepoDigestOrExact
        kind, fields = checked
        if kind in _IDENTITY_TYPES:
            return _IDENTITY_TYPES[kind], None
        if kind == "remapIdentity":
            # Then matchRepoDigestOrExact on the remapped name: "exact" is the stricter.
            return ReferenceCheck.EXACT, {"remap": [{"prefix": fields["prefix"],
                                                     "signed_prefix": fields["signedPrefix"]}]}
        return self.fixed_identity(where, kind, fields, scope)

    def fixed_reference(self, where: str, kind: str, value: Mapping[str, object]) -> ImageRef:
        """The reference an exactReference / exactRepository names, once it is valid."""
        from safedocker.reference import parse_reference

        field_name = "dockerReference" if kind == "exactReference" else "dockerRepository"
        text = value[field_name]
        if not isinstance(text, str):
            raise self.refuse(f"{where}.{field_name}", "must be a string")
        try:
            fixed = parse_reference(text)
        except UsageError as e:
            raise self.refuse(f"{where}.{field_name}", f"{kind} {text!r} is not a valid "
                              f"reference ({e.what})") from None
        if kind == "exactReference" and fixed.tag is None and fixed.digest is None:
            raise self.refuse(f"{where}.{field_name}", f"{kind} {text!r} has neither a tag "
                              "nor a digest")
        return fixed

    def fixed_identity(self, where: str, kind: str, value: Mapping[str, object],
                       scope: str) -> tuple[ReferenceCheck, dict[str, Any] | None]:
        """exactReference / exactRepository name what every signature must say: the
        config's ``signed_identity.exact_reference`` / ``exact_repository``. Where the scope
        is that very image, the plain reference check says the same."""
        fixed = self.fixed_reference(where, kind, value)
        pulled = _scope_reference(scope)
        if kind == "exactReference":
            if pulled is not None and str(pulled) == str(fixed):
                return ReferenceCheck.EXACT, None
            return ReferenceCheck.EXACT, {"exact_reference": str(fixed)}
        if pulled is not None and pulled.name == fixed.name:
            return ReferenceCheck.REPOSITORY, None
        return ReferenceCheck.REPOSITORY, {"exact_repository": fixed.name}

    def fulcio(self, where: str, value: object, *, read_files: bool = True) -> dict[str, str]:
        if not isinstance(value, dict) or set(value) - {"caPath", "caData", "oidcIssuer",
                                                          "subjectEmail"}:
            raise self.refuse(where, "unsupported fulcio fields")
        issuer, email = value.get("oidcIssuer"), value.get("subjectEmail")
        if not isinstance(issuer, str) or not isinstance(email, str) or not issuer or not email:
            raise self.refuse(where, "oidcIssuer and subjectEmail are required")
        if "caPath" in value and "caData" in value:
            raise self.refuse(where, "caPath and caData cannot both be given")
        if "caPath" in value:
            ca = (self._read if read_files else self._check_name)(f"{where}.caPath",
                                                                  value["caPath"])
        elif "caData" in value:
            ca = self._decode(f"{where}.caData", value["caData"])
        else:
            raise self.refuse(where, "caPath or caData is required")
        if read_files:
            self.check_ca(where, ca)
        return {"issuer": issuer, "subject": email}

    def check_ca(self, where: str, ca_pem: bytes) -> None:
        """The Fulcio CA must be one safe-docker's trust root already trusts."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from safedocker.trust.roots import trust_root

        try:
            certs = x509.load_pem_x509_certificates(ca_pem)
        except ValueError as e:
            raise self.refuse(where, "the Fulcio CA is not PEM certificates") from e
        known = {cert.public_bytes(serialization.Encoding.DER)
                 for ca in trust_root(self.where).certificate_authorities for cert in ca.chain}
        if not any(cert.public_bytes(serialization.Encoding.DER) in known for cert in certs):
            raise self.refuse(where, "its Fulcio CA is not in safe-docker's trust root",
                              hint="import that Sigstore instance first with "
                              "`safe-docker trust-root import`")

    def run(self, data: object) -> tuple[list[_Imported], Unmatched | None, list[str]]:
        if not isinstance(data, dict) or "default" not in data:
            raise self.refuse("policy", "not a containers-policy.json (no \"default\")")
        unknown = set(data) - {"default", "transports"}
        if unknown:
            raise self.refuse("policy", f"unknown top-level fields {sorted(unknown)}")
        rules: list[_Imported] = []
        unmatched: Unmatched | None = None
        default = self.rule("*", "default", data["default"])
        if default.action is Action.VERIFY:
            rules.append(default)
        else:
            unmatched = Unmatched.REJECT if default.action is Action.REJECT else Unmatched.ACCEPT
        ignored: list[str] = []
        transports = data.get("transports", {})
        if not isinstance(transports, dict):
            raise self.refuse("transports", "must be an object")
        for transport, table in transports.items():
            if not isinstance(table, dict):
                raise self.refuse(f"transports.{transport}", "must be an object")
            if transport != "docker":
                # Checked like docker's (podman would refuse a broken one), then ignored
                # only when it accepts anything.
                actions = {self.rule("*", f"transports.{transport}[{key!r}]", value).action
                           for key, value in table.items()}
                if actions <= {Action.ACCEPT}:
                    ignored.append(transport)
                    continue
                raise self.refuse(f"transports.{transport}", "requirements for transports "
                                  "other than docker (registries) cannot be represented")
            for key, requirements in table.items():
                where = f"transports.docker[{key!r}]"
                if key == "":
                    rule = self.rule("*", where, requirements)
                    rules = [r for r in rules if r.scope != "*"]
                    if rule.action is Action.VERIFY:
                        rules.append(rule)
                    else:
                        unmatched = (Unmatched.REJECT if rule.action is Action.REJECT
                                     else Unmatched.ACCEPT)
                    continue
                rules.append(self.rule(self.scope(key), where, requirements))
        return rules, unmatched, ignored


def _scope_reference(scope: str) -> ImageRef | None:
    """The one image a tag or digest scope covers, else None (hosts, namespaces, globs)."""
    from safedocker.reference import parse_reference

    if "*" in scope:
        return None
    try:
        ref = parse_reference(scope)
    except UsageError:
        return None
    return ref if (ref.tag or ref.digest) and str(ref) == scope else None


def import_containers_policy(where: Paths, path: Path) -> str:
    """Read podman's ``policy.json`` into the user configuration; returns a summary."""
    from safedocker._internal.files import atomic_write
    from safedocker.policy.config import save_user_document

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UnimportablePolicy(f"cannot read {path}", why=e.strerror or str(e)) from e
    if len(raw) > MAX_IMPORT_BYTES:
        raise UnimportablePolicy(f"cannot import {path}", why="the file is too large")
    from safedocker._internal.strictjson import loads_strict
    from safedocker.errors import VerificationError

    try:
        data = loads_strict(raw, "policy")  # duplicate members refused, as podman does
    except VerificationError as e:
        raise UnimportablePolicy(f"cannot import {path}", why=f"not valid JSON: {e.why}",
                                 hint="nothing was written; fix the file") from e
    importer = _Importer(where, path)
    rules, unmatched, ignored = importer.run(data)

    document = importer.document
    keys_table = dict(document.get("keys", {}))
    for name, (_pem, fingerprint) in importer.new_keys.items():
        keys_table[name] = {"fingerprint": fingerprint, "source": f"imported from {path}"}
    if keys_table:
        document["keys"] = keys_table
    if importer.rekor:
        existing = list(document.get("rekor_keys", []))
        document["rekor_keys"] = existing + [k for k in importer.rekor if k not in existing]
    if unmatched is not None:
        document["unmatched"] = unmatched.value
    scopes = {normalize_scope(r.scope) for r in rules}
    kept = [r for r in document.get("policy", [])
            if normalize_scope(str(r.get("scope", ""))) not in scopes]
    document["policy"] = kept + [r.document() for r in rules]

    written: list[Path] = []
    try:
        for name, (pem, _fingerprint) in importer.new_keys.items():
            target = where.user_keys_dir / f"{name}.pub"
            if not target.exists():
                atomic_write(target, pem, 0o644)
                written.append(target)
        save_user_document(where, document)
    except BaseException:
        for target in written:
            target.unlink(missing_ok=True)
        raise

    actions = {a: sum(1 for r in rules if r.action is a) for a in Action}
    parts = [f"imported {len(rules)} rule(s) from {path}: {actions[Action.VERIFY]} verify, "
             f"{actions[Action.REJECT]} reject, {actions[Action.ACCEPT]} accept"]
    if unmatched is not None:
        parts.append(f"images no scope covers: {unmatched.value}")
    if importer.new_keys:
        parts.append(f"new keys: {', '.join(sorted(importer.new_keys))}")
    if kept:
        parts.append(f"kept {len(kept)} existing rule(s) for other scopes")
    if ignored:
        parts.append(f"ignored accept-anything transports: {', '.join(sorted(ignored))}")
    if any(r.signed_identity and "remap" in r.signed_identity for r in rules):
        parts.append("remapIdentity became signed_identity.remap (a signature naming the "
                     "pulled image itself is accepted too)")
    if any(r.action is Action.VERIFY and r.reference is ReferenceCheck.EXACT for r in rules):
        parts.append("matchRepoDigestOrExact and matchExact became reference = exact (for "
                     "pulls by digest this is stricter than podman)")
    return "; ".join(parts) + "."


__all__ = [
    "UnimportablePolicy",
    "import_containers_policy",
]
