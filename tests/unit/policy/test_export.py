"""Policy export (Kyverno, policy-controller, containers-policy.json).

The Kubernetes exports are validated against the projects' own CRD schemas (vendored in
tests/data/crds, see SOURCE.md), parsed back, and compared rule by rule; Kyverno's
matching is simulated to show that the exported precedence gives safe-docker's decisions.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from safedocker.errors import UsageError
from safedocker.policy.export import (
    UnexportablePolicy,
    export_policy,
    kyverno_policy,
)
from safedocker.policy.model import Action
from safedocker.reference import parse_reference
from tests.unit.policy.support import config_from

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

CRDS = Path(__file__).resolve().parents[2] / "data" / "crds"


NONTRIVIAL = """
unmatched = "reject"
[[policy]]
scope = "docker.io/pytorch/*"
keys = ["alpha"]
reference = "digest"
tlog = "off"
[[policy]]
scope = "docker.io/pytorch/special"
action = "accept"
[[policy]]
scope = "ghcr.io/acme"
keys = ["alpha", "beta"]
threshold = 2
reference = "digest"
tlog = "required"
[[policy]]
scope = "ubuntu"
identities = [{ issuer = "https://accounts.google.com", subject_regexp = "^.*@example\\\\.com$" }]
reference = "digest"
annotations = { team = "ml" }
[[policy]]
scope = "quay.io"
action = "reject"
[[policy]]
scope = "quay.io/trusted/*"
keys = ["gamma"]
reference = "digest"
"""


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load((CRDS / name).read_text())
    return schema


# --- Kyverno -------------------------------------------------------------------------------


def test_kyverno_export_validates_against_the_crd_and_round_trips(tmp_path: Path) -> None:
    config, pems = config_from(tmp_path, NONTRIVIAL)
    exported = export_policy(config, "kyverno", strict=True)
    assert exported.gaps == ()
    document = yaml.safe_load(exported.text)
    jsonschema.validate(document, _schema("kyverno.io_clusterpolicies.v1.schema.yaml"))
    assert document == kyverno_policy(config)  # the YAML emitter loses nothing

    verify = {r["name"]: r["verifyImages"][0] for r in document["spec"]["rules"]
              if "verifyImages" in r}
    assert set(verify) == {"all-0-verify", "all-2-verify", "all-3-verify", "all-5-verify"}
    pytorch = verify["all-0-verify"]
    assert pytorch["imageReferences"] == ["docker.io/pytorch/*"]
    assert pytorch["skipImageReferences"] == [
        "docker.io/pytorch/special:*", "docker.io/pytorch/special@*",
        "docker.io/pytorch/special/*"]
    assert pytorch["mutateDigest"] and pytorch["verifyDigest"] and pytorch["required"]
    [attestor] = pytorch["attestors"]
    assert attestor["count"] == 1
    assert [e["keys"]["publicKeys"] for e in attestor["entries"]] == [pems["alpha"].decode()]
    assert attestor["entries"][0]["keys"]["rekor"] == {"ignoreTlog": True}

    acme = verify["all-2-verify"]["attestors"][0]
    assert acme["count"] == 2
    assert sorted(e["keys"]["publicKeys"] for e in acme["entries"]) == sorted(
        pems[n].decode() for n in ("alpha", "beta"))
    assert acme["entries"][0]["keys"]["rekor"] == {"url": "https://rekor.sigstore.dev"}

    ubuntu = verify["all-3-verify"]
    assert "docker.io/ubuntu:*" in ubuntu["imageReferences"]  # Kyverno's name for `ubuntu`
    assert "docker.io/library/ubuntu:*" in ubuntu["imageReferences"]
    [entry] = ubuntu["attestors"][0]["entries"]
    assert entry["keyless"]["issuer"] == "https://accounts.google.com"
    assert entry["keyless"]["subjectRegExp"] == r"^.*@example\.com$"
    assert entry["annotations"] == {"team": "ml"}


def _kyverno_string(image: str) -> str:
    """How Kyverno names an image (pkg/utils/image ImageInfo.String, default registry)."""
    ref = parse_reference(image)
    name = ref.name
    if image.split("/")[0] not in ("docker.io", "index.docker.io") and "/" not in image.split(
            ":")[0].split("@")[0]:
        name = "docker.io/" + ref.repository.removeprefix("library/")
    return f"{name}@{ref.digest}" if ref.digest else f"{name}:{ref.tag or 'latest'}"


def _wild(pattern: str, text: str) -> bool:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match(f"^{body}$", text) is not None


def _kyverno_outcome(document: dict[str, Any], image: str) -> str:
    """accept | reject | verify:<rule name> as the exported ClusterPolicy decides."""
    text = _kyverno_string(image)
    verifies = []
    for rule in document["spec"]["rules"]:
        if "verifyImages" in rule:
            entry = rule["verifyImages"][0]
            if any(_wild(p, text) for p in entry["imageReferences"]) and not any(
                    _wild(p, text) for p in entry.get("skipImageReferences", [])):
                verifies.append(rule["name"])
        else:
            conditions = rule["validate"]["foreach"][0]["deny"]["conditions"]["all"]
            if all(any(_wild(p, text) for p in c["value"]) == (c["operator"] == "AnyIn")
                   for c in conditions):
                return "reject"
    assert len(verifies) <= 1, verifies
    return f"verify:{verifies[0]}" if verifies else "accept"


def test_yaml_is_plain_block_style_with_keys_as_literal_blocks(tmp_path: Path) -> None:
    config, pems = config_from(tmp_path, NONTRIVIAL)
    text = export_policy(config, "kyverno").text
    assert text == export_policy(config, "kyverno").text  # stable
    assert "&id" not in text and "*id" not in text  # no anchors for shared values
    assert "{" not in text.replace("{{ ", "").replace(" }}", "")  # no flow style
    first_key = pems["alpha"].decode().splitlines()[1]
    assert "publicKeys: |\n" in text and f"\n              {first_key}\n" in text


@pytest.mark.parametrize("image", [
    "docker.io/pytorch/pytorch:2.1", "pytorch/special:1", "pytorch/special/sub:1",
    "ghcr.io/acme/app:1", "ghcr.io/acme:1", "ghcr.io/acmex/app:1", "ubuntu:22.04",
    "docker.io/library/ubuntu@sha256:" + "a" * 64, "quay.io/x/y:1", "quay.io/trusted/z:1",
    "nginx", "127.0.0.1:5000/demo/app:v1",
])
def test_kyverno_export_decides_like_safe_docker(tmp_path: Path, image: str) -> None:
    config, _ = config_from(tmp_path, NONTRIVIAL)
    document = kyverno_policy(config)
    decision = config.policy.decide(parse_reference(image))
    outcome = _kyverno_outcome(document, image)
    if decision.action is Action.VERIFY:
        index = config.policy.rules.index(decision.rules[0])
        assert outcome == f"verify:all-{index}-verify"
    elif decision.action is Action.ACCEPT:
        assert outcome == "accept"
    else:
        assert outcome == "reject"


KYVERNO_GAPS = [
    ('scope = "ghcr.io/acme/*"\nkeys = ["alpha"]', "the signed repository name",
     ["ghcr.io/acme/*"]),
    ('scope = "ghcr.io/acme/app:v1"\nkeys = ["alpha"]\nreference = "digest"',
     "the tag of an image given with a digest", ["ghcr.io/acme/app:v1"]),
    ('scope = "ghcr.io/*/app"\nkeys = ["alpha"]\nreference = "digest"',
     "inside a path component", ["ghcr.io/*/app"]),
    ('scope = "docker.io/library/*"\naction = "reject"', "one-component names", None),
]


@pytest.mark.parametrize(("rule", "why", "references"), KYVERNO_GAPS)
def test_kyverno_strict_refuses_what_it_cannot_express(tmp_path: Path, rule: str, why: str,
                                                       references: list[str] | None) -> None:
    config, _ = config_from(tmp_path, f"[[policy]]\n{rule}")
    with pytest.raises(UnexportablePolicy) as raised:
        export_policy(config, "kyverno", strict=True)
    assert why in raised.value.line()
    assert raised.value.exit_code == 78


@pytest.mark.parametrize(("rule", "why", "references"), KYVERNO_GAPS)
def test_kyverno_exports_the_closest_and_names_each_gap_in_a_comment(
        tmp_path: Path, rule: str, why: str, references: list[str] | None) -> None:
    config, _ = config_from(tmp_path, f"[[policy]]\n{rule}")
    exported = export_policy(config, "kyverno")
    [gap] = exported.gaps
    assert why in gap.check and gap.target == "Kyverno"
    comment = [line for line in exported.text.splitlines() if line.startswith("#")]
    assert any(why in line and repr(gap.scope) in line for line in comment), comment
    document = yaml.safe_load(exported.text)
    jsonschema.validate(document, _schema("kyverno.io_clusterpolicies.v1.schema.yaml"))
    if references is not None:
        [verify] = [r["verifyImages"][0] for r in document["spec"]["rules"]
                    if "verifyImages" in r]
        assert verify["imageReferences"][: len(references)] == references


DEFAULT_RULE = '[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]'  # policy add's defaults


def test_a_rule_with_policy_add_defaults_exports_to_kyverno_and_policy_controller(
        tmp_path: Path) -> None:
    config, pems = config_from(tmp_path, DEFAULT_RULE)
    kyverno = export_policy(config, "kyverno")
    [gap] = kyverno.gaps
    assert "the signed repository name" in gap.line() and "signed digest only" in gap.line()
    [verify] = [r["verifyImages"][0] for r in yaml.safe_load(kyverno.text)["spec"]["rules"]
                if "verifyImages" in r]
    assert verify["attestors"][0]["entries"][0]["keys"]["publicKeys"] == pems["alpha"].decode()
    controller = export_policy(config, "policy-controller")
    assert [g.check for g in controller.gaps] == [gap.check]
    docs = list(yaml.safe_load_all(controller.text))
    assert docs[0]["spec"]["images"][0]["glob"] == "ghcr.io/a:**"
    assert controller.text.startswith("# Exported by `safe-docker policy export")
    for fmt in ("kyverno", "policy-controller"):
        with pytest.raises(UnexportablePolicy, match="cannot export rule 'ghcr.io/a'"):
            export_policy(config, fmt, strict=True)


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    config, _ = config_from(tmp_path, "")
    with pytest.raises(UsageError):
        export_policy(config, "opa")


# --- policy-controller ---------------------------------------------------------------------

PC_POLICY = """
unmatched = "reject"
[[policy]]
scope = "ghcr.io/acme"
keys = ["alpha", "beta"]
threshold = 2
reference = "digest"
tlog = "required"
[[policy]]
scope = "registry.example.com/team/*"
keys = ["gamma"]
identities = [{ issuer_regexp = "^https://accounts\\\\.", subject = "ci@example.com" }]
reference = "digest"
[[policy]]
scope = "quay.io"
action = "reject"
[[policy]]
scope = "docker.io/library/busybox"
action = "accept"
"""


def test_policy_controller_export_validates_and_round_trips(tmp_path: Path) -> None:
    config, pems = config_from(tmp_path, PC_POLICY)
    docs = list(yaml.safe_load_all(export_policy(config, "policy-controller", strict=True).text))
    schema = _schema("policy.sigstore.dev_clusterimagepolicies.v1beta1.schema.yaml")
    cips = [d for d in docs if d["kind"] == "ClusterImagePolicy"]
    for doc in cips:
        assert doc["apiVersion"] == "policy.sigstore.dev/v1beta1"
        jsonschema.validate(doc, schema)
    by_glob = {tuple(i["glob"] for i in d["spec"]["images"]): d for d in cips}

    acme = [d for d in cips if d["spec"]["images"][0]["glob"].startswith("ghcr.io/acme")]
    assert len(acme) == 2  # threshold 2 of 2: two policies, each must pass
    assert sorted(d["spec"]["authorities"][0]["key"]["data"] for d in acme) == sorted(
        pems[n].decode() for n in ("alpha", "beta"))
    assert all(d["spec"]["authorities"][0]["ctlog"] == {"url": "https://rekor.sigstore.dev"}
               for d in acme)
    assert [i["glob"] for i in acme[0]["spec"]["images"]] == [
        "ghcr.io/acme:**", "ghcr.io/acme@**", "ghcr.io/acme/**"]

    team = by_glob[("registry.example.com/team/**",)]["spec"]["authorities"]
    assert team[0]["key"]["data"] == pems["gamma"].decode()
    assert team[1]["keyless"]["identities"] == [
        {"issuerRegExp": "^https://accounts\\.", "subject": "ci@example.com"}]
    assert "ctlog" not in team[0]

    quay = by_glob[("quay.io/**",)]["spec"]["authorities"]
    assert quay == [{"name": "fail", "static": {"action": "fail"}}]
    busybox = by_glob[("index.docker.io/library/busybox:**", "index.docker.io/library/busybox@**",
                       "index.docker.io/library/busybox/**")]
    assert busybox["spec"]["authorities"][0]["static"] == {"action": "pass"}
    [configmap] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert configmap["data"] == {"no-match-policy": "deny"}


@pytest.mark.parametrize(("body", "why"), [
    ('[[policy]]\nscope = "ghcr.io/acme"\nkeys = ["alpha", "beta", "gamma"]\nthreshold = 2\n'
     'reference = "digest"', "CUE/Rego"),
    ('[[policy]]\nscope = "ghcr.io"\naction = "reject"\n[[policy]]\nscope = "ghcr.io/ok"\n'
     'action = "accept"', "applies every matching policy"),
    ('[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]\nreference = "digest"\n'
     'annotations = { a = "b" }', "annotations"),
])
def test_policy_controller_strict_refuses_what_it_cannot_express(tmp_path: Path, body: str,
                                                                 why: str) -> None:
    config, _ = config_from(tmp_path, body)
    with pytest.raises(UnexportablePolicy) as raised:
        export_policy(config, "policy-controller", strict=True)
    assert why in raised.value.line()
    exported = export_policy(config, "policy-controller")
    assert any(why in gap.line() for gap in exported.gaps)
    schema = _schema("policy.sigstore.dev_clusterimagepolicies.v1beta1.schema.yaml")
    for doc in yaml.safe_load_all(exported.text):
        if doc["kind"] == "ClusterImagePolicy":
            jsonschema.validate(doc, schema)


def test_policy_controller_threshold_it_cannot_express_becomes_all_signers(
        tmp_path: Path) -> None:
    config, _ = config_from(tmp_path, '[[policy]]\nscope = "ghcr.io/acme"\n'
                            'keys = ["alpha", "beta", "gamma"]\nthreshold = 2\n'
                            'reference = "digest"')
    exported = export_policy(config, "policy-controller")
    cips = [d for d in yaml.safe_load_all(exported.text) if d["kind"] == "ClusterImagePolicy"]
    assert len(cips) == 3 and all(len(d["spec"]["authorities"]) == 1 for d in cips)
    [gap] = exported.gaps
    assert "exported as all 3 signers" in gap.line()


# --- containers-policy.json ----------------------------------------------------------------

CP_POLICY = """
unmatched = "reject"
[[policy]]
scope = "127.0.0.1:5000/demo"
keys = ["alpha"]
[[policy]]
scope = "127.0.0.1:5000/pair"
keys = ["alpha", "beta"]
threshold = 2
reference = "exact"
[[policy]]
scope = "127.0.0.1:5000/any"
keys = ["alpha", "beta"]
[[policy]]
scope = "*.example.com/*"
action = "reject"
[[policy]]
scope = "busybox"
action = "accept"
"""


def test_containers_policy_export_matches_expected_json(tmp_path: Path) -> None:
    config, pems = config_from(tmp_path, CP_POLICY)
    exported = export_policy(config, "containers-policy", strict=True)
    assert exported.gaps == ()
    data = json.loads(exported.text)

    def b64(name: str) -> str:
        return base64.b64encode(pems[name].decode().strip().encode() + b"\n").decode()

    repo = {"type": "matchRepository"}
    assert data == {
        "default": [{"type": "reject"}],
        "transports": {"docker": {
            "*.example.com": [{"type": "reject"}],
            "127.0.0.1:5000/any": [{"type": "sigstoreSigned",
                                    "keyDatas": [b64("alpha"), b64("beta")],
                                    "signedIdentity": repo}],
            "127.0.0.1:5000/demo": [{"type": "sigstoreSigned", "keyData": b64("alpha"),
                                     "signedIdentity": repo}],
            "127.0.0.1:5000/pair": [
                {"type": "sigstoreSigned", "keyData": b64("alpha"),
                 "signedIdentity": {"type": "matchExact"}},
                {"type": "sigstoreSigned", "keyData": b64("beta"),
                 "signedIdentity": {"type": "matchExact"}}],
            "docker.io/library/busybox": [{"type": "insecureAcceptAnything"}],
        }},
    }


@pytest.mark.parametrize(("body", "why"), [
    ('[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha", "beta", "gamma"]\nthreshold = 2',
     "threshold 2 of 3"),
    ('[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]\nreference = "digest"',
     "always checks the signed name"),
    ('[[policy]]\nscope = "ghcr.io/*/a"\nkeys = ["alpha"]', "not globs"),
    ('[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]\ntlog = "required"', "rekor_keys"),
    ('unmatched = "warn"', "unmatched = 'warn'"),
    ('[[policy]]\nscope = "ghcr.io/a"\nidentities = [{ issuer = "https://x", '
     'subject_regexp = ".*" }]', "not regular expressions"),
    # The namespace scope would also cover the repository ghcr.io/ns, which safe-docker
    # rejects (unmatched): containers-policy would be weaker there.
    ('[[policy]]\nscope = "ghcr.io/ns/*"\nkeys = ["alpha"]', "is both"),
])
def test_containers_policy_strict_refuses_what_it_cannot_express(tmp_path: Path, body: str,
                                                                 why: str) -> None:
    config, _ = config_from(tmp_path, body)
    with pytest.raises(UnexportablePolicy) as raised:
        export_policy(config, "containers-policy", strict=True)
    assert why in raised.value.line()
    exported = export_policy(config, "containers-policy")  # the closest, and the gap named
    assert any(why in gap.line() for gap in exported.gaps)
    assert set(json.loads(exported.text)) == {"default", "transports"}


def test_a_namespace_scope_exports_to_containers_policy_with_a_note(tmp_path: Path) -> None:
    config, pems = config_from(tmp_path, '[[policy]]\nscope = "ghcr.io/ns/*"\nkeys = ["alpha"]')
    exported = export_policy(config, "containers-policy")
    data = json.loads(exported.text)
    [requirement] = data["transports"]["docker"]["ghcr.io/ns"]
    assert requirement["type"] == "sigstoreSigned"
    assert base64.b64decode(requirement["keyData"]).strip() == pems["alpha"].strip()
    [gap] = exported.gaps
    assert gap.line().startswith("containers-policy.json cannot express rule 'ghcr.io/ns/*': ")
    assert "the repository 'ghcr.io/ns' gets this rule's requirements" in gap.line()


@pytest.mark.parametrize(("body", "expected"), [
    # an inexpressible keyless signer among any-of signers drops out (stricter)
    ('[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]\nidentities = [{ issuer = "https://x",'
     ' subject_regexp = ".*" }]', ["sigstoreSigned"]),
    # the only signer cannot be named: reject (stricter)
    ('[[policy]]\nscope = "ghcr.io/a"\nidentities = [{ issuer = "https://x", '
     'subject_regexp = ".*" }]', ["reject"]),
    # a threshold containers-policy cannot express: all signers (stricter)
    ('[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha", "beta", "gamma"]\nthreshold = 2',
     ["sigstoreSigned"] * 3),
])
def test_containers_policy_closest_is_the_stricter(tmp_path: Path, body: str,
                                                   expected: list[str]) -> None:
    config, _ = config_from(tmp_path, body)
    exported = export_policy(config, "containers-policy")
    assert [r["type"] for r in json.loads(exported.text)["transports"]["docker"]["ghcr.io/a"]
            ] == expected
    assert exported.gaps


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_parses_the_exported_policy(tmp_path: Path) -> None:
    # skopeo 1.9 (Debian 12) predates keyDatas: export only single-key rules here.
    body = CP_POLICY.replace('[[policy]]\nscope = "127.0.0.1:5000/any"\n'
                             'keys = ["alpha", "beta"]\n', "")
    config, _ = config_from(tmp_path, body)
    policy = tmp_path / "policy.json"
    policy.write_text(export_policy(config, "containers-policy").text)
    bad = tmp_path / "bad.json"
    bad.write_text('{"default": [{"type": "sigstoreSigned"}]}')

    def load(path: Path) -> str:
        # The policy is parsed before the (missing) source is opened.
        proc = subprocess.run(["skopeo", "--policy", str(path), "copy", "dir:/nonexistent",
                               f"dir:{tmp_path / 'out'}"], capture_output=True, text=True,
                              timeout=60, check=False)
        return proc.stderr

    assert "trust policy" in load(bad)
    assert "trust policy" not in load(policy), load(policy)
    assert "nonexistent" in load(policy)


@pytest.mark.parametrize(("identity", "expected"), [
    ('{ exact_reference = "docker.io/library/busybox:1" }',
     {"type": "exactReference", "dockerReference": "docker.io/library/busybox:1"}),
    ('{ exact_repository = "busybox" }',
     {"type": "exactRepository", "dockerRepository": "docker.io/library/busybox"}),
    ('{ remap = { prefix = "ghcr.io/a", signed_prefix = "gcr.io/b" } }',
     {"type": "remapIdentity", "prefix": "ghcr.io/a", "signedPrefix": "gcr.io/b"}),
])
def test_containers_policy_export_carries_the_signed_identity(tmp_path: Path, identity: str,
                                                              expected: dict[str, str]) -> None:
    config, _ = config_from(tmp_path, f'[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]\n'
                                      f'signed_identity = {identity}\n')
    exported = export_policy(config, "containers-policy")
    assert exported.gaps == ()
    [requirement] = json.loads(exported.text)["transports"]["docker"]["ghcr.io/a"]
    assert requirement["signedIdentity"] == expected


@pytest.mark.parametrize(("body", "fmt", "why"), [
    ('signed_identity = { remap = { prefix = "ghcr.io/a", signed_prefix_regexp = "x" } }',
     "containers-policy", "not several or a regexp"),
    ('signatures_repository = "ghcr.io/a/sigs"', "containers-policy", "signatures_repository"),
    ('signed_identity = { exact_repository = "busybox" }', "kyverno", "the signed identity"),
])
def test_what_a_format_cannot_say_about_signed_names_is_a_gap_and_refused_when_strict(
        tmp_path: Path, body: str, fmt: str, why: str) -> None:
    config, _ = config_from(tmp_path, f'[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]\n'
                                      f'{body}\n')
    closest = export_policy(config, fmt)
    assert any(why in gap.check for gap in closest.gaps), closest.gaps
    with pytest.raises(UnexportablePolicy) as raised:
        export_policy(config, fmt, strict=True)
    assert why in raised.value.line()


def test_signatures_repository_is_exported_where_the_format_has_one(tmp_path: Path) -> None:
    config, _ = config_from(tmp_path, '[[policy]]\nscope = "ghcr.io/a"\nkeys = ["alpha"]\n'
                                      'reference = "digest"\n'
                                      'signatures_repository = "ghcr.io/a/sigs"\n')
    kyverno = yaml.safe_load(export_policy(config, "kyverno").text)
    [verify] = [r for r in kyverno["spec"]["rules"] if "verifyImages" in r][0]["verifyImages"]
    assert verify["repository"] == "ghcr.io/a/sigs"
    documents = list(yaml.safe_load_all(export_policy(config, "policy-controller").text))
    authorities = [a for d in documents if d["kind"] == "ClusterImagePolicy"
                   for a in d["spec"]["authorities"]]
    assert authorities and all(a["source"] == [{"oci": "ghcr.io/a/sigs"}] for a in authorities)
