from __future__ import annotations

import gc
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ConfigError, UsageError
from safedocker.policy.config import load_config, remove_rule, set_rule
from safedocker.policy.model import Action, Mode, ReferenceCheck, Tlog, Unmatched
from safedocker.trust.roots import is_root_name
from tests.unit.policy.support import fresh_dirs

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.policy.paths import Paths

FINGERPRINT = "sha256:" + "0" * 64
GITHUB = "https://token.actions.githubusercontent.com"


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    return fresh_dirs(tmp_path, monkeypatch)


def test_defaults_are_strict(where: Paths) -> None:
    config = load_config(where)
    assert config.mode is Mode.ENFORCE
    assert config.unmatched is Unmatched.REJECT
    assert config.offline_max_age == 30 * 86400


def test_full_schema_is_read(where: Paths) -> None:
    where.user_config_file.write_text(f'''
mode = "warn"
unmatched = "warn"
offline_max_age = "12h"
insecure_registries = ["reg.internal:5000"]
rekor_keys = ["rekor"]

[keys.pytorch]
fingerprint = "{FINGERPRINT}"
source = "https://example.com/key.pub"

[keys.rekor]
fingerprint = "{FINGERPRINT}"

[[policy]]
scope = "docker.io/pytorch/*"
action = "verify"
keys = ["pytorch"]
identities = [
  {{ issuer = "{GITHUB}", subject_regexp = "^https://github.com/pytorch/" }},
]
threshold = 2
tlog = "required"
reference = "exact"
gpu = "always"
annotations = {{ team = "ml" }}
''')
    config = load_config(where)
    assert config.mode is Mode.WARN and config.unmatched is Unmatched.WARN
    assert config.offline_max_age == 12 * 3600
    assert config.insecure_registries == ("reg.internal:5000",)
    (rule,) = config.policy.rules
    assert rule.action is Action.VERIFY and rule.threshold == 2
    assert rule.tlog is Tlog.REQUIRED and rule.reference is ReferenceCheck.EXACT
    assert rule.identities[0].subject_regexp == "^https://github.com/pytorch/"
    assert rule.annotations == {"team": "ml"}
    assert config.keys["pytorch"].path == where.user_keys_dir / "pytorch.pub"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('mode = "enforce"\nmdoe = "off"\n', 2, "mdoe: unknown key"),
        ('mode = "loose"\n', 1, "is not one of enforce | warn | off"),
        ('\n\n[[policy]]\nscope = "x"\naction = "verify"\nkyes = ["a"]\n', 6, "kyes: unknown key"),
        ('[[policy]]\nscope = "x"\naction = "verify"\n', None, "needs keys or identities"),
        ('[[policy]]\nscope = "x"\naction = "allow"\n', 3, "is not one of verify"),
        ('offline_max_age = "soon"\n', 1, "invalid duration"),
        ('locked = true\n', 1, "only the system file"),
        (f'[keys.a]\nfingerprint = "{FINGERPRINT}"\n[[policy]]\nscope = "x"\nkeys = ["a"]\n'
         'threshold = 2\n', 6, "threshold"),
        ('[[policy]]\nscope = "x"\nkeys = ["nokey"]\n', None, "unknown key 'nokey'"),
        ('this is not toml', 1, "not valid TOML: expected '=' after a key"),
        ('mode = "enforce"\n[x\n', 2, "not valid TOML"),
        # issue 11 item 8: was "internal error — RecursionError" (77)
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", None, "nested too deeply"),
        ("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", None, "nested too deeply"),
    ],
)
def test_bad_config_is_exit_78_naming_file_line_and_key(
    where: Paths, text: str, line: int | None, fragment: str
) -> None:
    where.user_config_file.write_text(text)
    # Earlier tests' garbage collected now, not deep in the nested cases' recursion: a
    # finalizer there (an unclosed socket's warning) fails for want of stack, and pytest
    # reports that as this test's failure.
    gc.collect()
    with pytest.raises(ConfigError) as caught:
        load_config(where)
    message = caught.value.line()
    assert caught.value.exit_code == 78
    assert str(where.user_config_file) in message
    if line is not None:
        assert f"{where.user_config_file}:{line}" in message
    assert fragment in message


def test_locked_system_file_keeps_the_strictest_settings(where: Paths,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    where.system_config_file.write_text(
        'locked = true\nmode = "enforce"\nunmatched = "reject"\noffline_max_age = "1d"\n'
    )
    where.user_config_file.write_text(
        'mode = "off"\nunmatched = "accept"\noffline_max_age = "30d"\n'
        'insecure_registries = ["evil:5000"]\n'
    )
    config = load_config(where)
    assert config.mode is Mode.ENFORCE
    assert config.unmatched is Unmatched.REJECT
    assert config.offline_max_age == 86400
    assert config.insecure_registries == ()
    monkeypatch.setenv("SAFE_DOCKER_MODE", "off")
    assert load_config(where).mode is Mode.ENFORCE


def test_unlocked_user_file_overrides_and_env_mode_wins(where: Paths,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    where.system_config_file.write_text('mode = "enforce"\n')
    where.user_config_file.write_text('mode = "warn"\n')
    assert load_config(where).mode is Mode.WARN
    monkeypatch.setenv("SAFE_DOCKER_MODE", "off")
    assert load_config(where).mode is Mode.OFF
    monkeypatch.setenv("SAFE_DOCKER_MODE", "bogus")
    with pytest.raises(ConfigError):
        load_config(where)


def test_rules_are_written_atomically_and_replaced_by_scope(where: Paths) -> None:
    assert set_rule(where, "ubuntu", {"action": "accept"}) == "docker.io/library/ubuntu"
    set_rule(where, "docker.io/library/ubuntu", {"action": "reject"})
    (rule,) = load_config(where).policy.rules
    assert rule.action is Action.REJECT
    with pytest.raises(UsageError, match="invalid --key 'missing'"):
        set_rule(where, "x", {"action": "verify", "keys": ["missing"]})
    assert len(load_config(where).policy.rules) == 1  # the invalid rule was not written
    remove_rule(where, "ubuntu")
    assert load_config(where).policy.rules == ()
    with pytest.raises(UsageError):
        remove_rule(where, "ubuntu")
    leftovers = [p.name for p in where.config_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_reading_the_config_imports_no_cryptography(where: Paths) -> None:
    (where.config_dir / "config.toml").write_text(
        '[[policy]]\nscope = "*"\naction = "accept"\ntrust_root = "corp-1.2"\n')
    dirs = [str(p) for p in (where.config_dir, where.cache_dir, where.state_dir,
                             where.system_config_dir)]
    code = ("import sys; from pathlib import Path\n"
            "from safedocker.policy.config import load_config\n"
            "from safedocker.policy.paths import Paths\n"
            f"load_config(Paths(*(Path(p) for p in {dirs!r})))\n"
            "print(sorted(m for m in sys.modules if m.startswith('cryptography')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("name", "valid"), [("default", True), ("corp-1.2_x", True),
                                             ("_hidden", False), ("a" * 65, False), ("a/b", False)])
def test_one_rule_for_trusted_root_names(where: Paths, name: str, valid: bool) -> None:
    (where.config_dir / "config.toml").write_text(
        f'[[policy]]\nscope = "*"\naction = "accept"\ntrust_root = "{name}"\n')
    if valid:
        assert load_config(where).policy.rules[0].trust_root == name
    else:
        with pytest.raises(ConfigError, match="trust_root"):
            load_config(where)
    assert is_root_name(name) is valid


@pytest.mark.parametrize("pattern", ["^(?!evil).*$", r"(a)\1", "a*+", "(?>a)", r"\pL"])
def test_identity_regexp_re2_lacks_is_a_config_error_naming_the_file(where: Paths,
                                                                    pattern: str) -> None:
    where.user_config_file.write_text(f'''
[[policy]]
scope = "ghcr.io/org/*"
identities = [{{ issuer = "{GITHUB}", subject_regexp = '{pattern}' }}]
''')
    with pytest.raises(ConfigError) as refused:
        load_config(where)
    assert refused.value.exit_code == 78
    assert str(where.user_config_file) in refused.value.line()
    assert "RE2" in refused.value.line()


def test_policy_add_refuses_an_identity_regexp_re2_lacks_with_usage_2(where: Paths) -> None:
    env = {"SAFE_DOCKER_CONFIG_DIR": str(where.config_dir),
           "SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(where.system_config_dir),
           "SAFE_DOCKER_CACHE_DIR": str(where.cache_dir),
           "SAFE_DOCKER_STATE_DIR": str(where.state_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "safedocker", "policy", "add", "ghcr.io/org",
                           "--identity-regexp", f"{GITHUB}=^(?!evil)"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "look-ahead" in proc.stderr
    assert not where.user_config_file.exists()


def test_signed_identity_and_signatures_repository_are_read(where: Paths) -> None:
    where.user_config_file.write_text(f'''
[[policy]]
scope = "registry.k8s.io"
identities = [{{ issuer = "{GITHUB}", subject = "krel@example.com" }}]
signatures_repository = "ghcr.io/kyverno/signatures"
reference = "exact"
signed_identity = {{ remap = [
  {{ prefix = "registry.k8s.io", signed_prefix = "us-docker.pkg.dev/k8s/images" }},
  {{ prefix = "registry.k8s.io", signed_prefix_regexp = '^[a-z0-9-]+-docker\\.pkg\\.dev/k8s$' }},
] }}

[[policy]]
scope = "example.com/mirror"
identities = [{{ issuer = "{GITHUB}", subject = "krel@example.com" }}]
signed_identity = {{ remap = {{ prefix = "example.com/mirror", signed_prefix = "docker.io" }} }}

[[policy]]
scope = "example.com/fixed"
identities = [{{ issuer = "{GITHUB}", subject = "krel@example.com" }}]
signed_identity = {{ exact_reference = "busybox:1" }}
''')
    remapped, one, fixed = load_config(where).policy.rules
    assert remapped.signatures_repository == "ghcr.io/kyverno/signatures"
    assert [r.signed_prefix or r.signed_prefix_regexp for r in remapped.signed_identity.remaps
            ] == ["us-docker.pkg.dev/k8s/images", r"^[a-z0-9-]+-docker\.pkg\.dev/k8s$"]
    assert one.signed_identity.remaps[0].signed_prefix == "docker.io"
    assert fixed.signed_identity.exact_reference == "docker.io/library/busybox:1"


@pytest.mark.parametrize(("fields", "why"), [
    ('signatures_repository = "ghcr.io/a/sigs:latest"', "without a tag"),
    ('signatures_repository = "Not A Repo"', "not a repository name"),
    ('signed_identity = { remap = { prefix = "registry.k8s.io" } }', "exactly one of"),
    ('signed_identity = { remap = { prefix = "k8s", signed_prefix = "x.io" } }',
     "not a registry host"),
    ('signed_identity = { remap = { prefix = "a.io", signed_prefix_regexp = "(?=x)" } }',
     "RE2"),
    ('signed_identity = { exact_reference = "busybox" }', "neither a tag nor a digest"),
    ('signed_identity = { exact_reference = "busybox:1" }\nreference = "exact"',
     "does not apply"),
    ('signed_identity = { remap = { prefix = "a.io", signed_prefix = "b.io" } }\n'
     'reference = "digest"', "never be checked"),
    ('signed_identity = { exact_reference = "a:1", exact_repository = "a" }', "exactly one"),
    ('signed_identity = { remaps = [] }', "unknown key"),
])
def test_invalid_signed_identity_or_signatures_repository_is_a_config_error(
        where: Paths, fields: str, why: str) -> None:
    where.user_config_file.write_text(f'''
[[policy]]
scope = "example.com/app"
identities = [{{ issuer = "{GITHUB}", subject = "dev@example.com" }}]
{fields}
''')
    with pytest.raises(ConfigError) as refused:
        load_config(where)
    assert why in refused.value.line()


def _cli(where: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"SAFE_DOCKER_CONFIG_DIR": str(where.config_dir),
           "SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(where.system_config_dir),
           "SAFE_DOCKER_CACHE_DIR": str(where.cache_dir),
           "SAFE_DOCKER_STATE_DIR": str(where.state_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "safedocker", *args], env=env,
                          capture_output=True, text=True)


def test_policy_add_writes_signatures_repository_and_remaps_and_list_shows_them(
        where: Paths) -> None:
    added = _cli(where, "policy", "add", "registry.k8s.io", "--identity",
                 "https://accounts.google.com=krel@example.com",
                 "--signatures-repository", "ghcr.io/k8s/signatures",
                 "--remap", "registry.k8s.io=us-docker.pkg.dev/k8s/images",
                 "--remap-regexp", r"registry.k8s.io=^[a-z0-9-]+-docker\.pkg\.dev/k8s$")
    assert added.returncode == 0, added.stderr
    [rule] = load_config(where).policy.rules
    assert rule.signatures_repository == "ghcr.io/k8s/signatures"
    assert len(rule.signed_identity.remaps) == 2
    listed = _cli(where, "policy", "list")
    assert "signatures in ghcr.io/k8s/signatures" in listed.stdout
    assert "registry.k8s.io signed as us-docker.pkg.dev/k8s/images" in listed.stdout
    checked = _cli(where, "policy", "check", "registry.k8s.io/pause:3.10", "--json")
    assert '"signatures_repository": "ghcr.io/k8s/signatures"' in checked.stdout
    bad = _cli(where, "policy", "add", "registry.k8s.io", "--identity", "https://i=s",
               "--remap-regexp", "registry.k8s.io=(?<=x)")
    assert bad.returncode == 2 and "look-behind" in bad.stderr


# --- usage errors at `policy add`, configuration errors in the file ---------------------


@pytest.mark.parametrize(("rule", "option", "why"), [
    ({"action": "verify", "identities": [{"issuer": GITHUB, "subject_regexp": "("}]},
     "--identity/--identity-regexp", "invalid regular expression"),
    ({"action": "verify", "identities": [{"issuer": GITHUB, "subject": "x"}], "threshold": 2},
     "--threshold", "larger than the number of signers"),
    ({"action": "verify", "identities": [{"issuer": GITHUB, "subject": "x"}], "tlog": "maybe"},
     "--tlog", "'maybe' is not one of required | optional | off"),
    ({"action": "verify", "keys": [], "identities": []}, "--key", "needs keys or identities"),
])
def test_a_bad_new_rule_is_a_usage_error_naming_the_option_and_nothing_is_written(
        where: Paths, rule: dict[str, object], option: str, why: str) -> None:
    where.user_config_file.write_text('mode = "enforce"\n')
    with pytest.raises(UsageError) as caught:
        set_rule(where, "ghcr.io/acme/*", rule)
    assert caught.value.exit_code == 2
    assert caught.value.what == f"invalid {option}"
    assert why in caught.value.why
    assert "config.toml" not in caught.value.line()  # no file or line that was never written
    assert where.user_config_file.read_text() == 'mode = "enforce"\n'


def test_a_broken_file_stays_a_configuration_error_with_its_own_line(where: Paths) -> None:
    where.user_config_file.write_text('mode = "enforce"\n\n[[policy]]\nscope = "x"\n'
                                      'action = "accept"\n\ntlog = "maybe"\n')
    with pytest.raises(ConfigError) as caught:
        set_rule(where, "y", {"action": "accept"})
    assert caught.value.exit_code == 78
    assert f"{where.user_config_file}:7" in caught.value.line()
    assert "policy[0].tlog" in caught.value.line()
    assert "`safe-docker policy schema`" in caught.value.line()


def test_the_schema_documents_every_key_the_reader_accepts() -> None:
    from safedocker.policy import config
    from safedocker.policy.schema import schema_keys

    expected = set(config._TOP_KEYS)
    expected |= {f"keys.{k}" for k in config._KEY_KEYS}
    expected |= {f"policy.{k}" for k in config._RULE_KEYS}
    expected |= {f"policy.identities.{k}" for k in config._IDENTITY_KEYS}
    expected |= {f"policy.attestations.{k}" for k in config._ATTESTATION_KEYS}
    assert schema_keys() == expected
