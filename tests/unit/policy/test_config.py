from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ConfigError, UsageError
from safedocker.policy.config import load_config, remove_rule, set_rule
from safedocker.policy.model import Action, Mode, ReferenceCheck, Tlog, Unmatched
from safedocker.policy.paths import Paths
from safedocker.trust.roots import is_root_name

if TYPE_CHECKING:
    from pathlib import Path

FINGERPRINT = "sha256:" + "0" * 64
GITHUB = "https://token.actions.githubusercontent.com"


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.delenv("SAFE_DOCKER_MODE", raising=False)
    result = Paths(config_dir=tmp_path / "user", cache_dir=tmp_path / "cache",
                   state_dir=tmp_path / "state", system_config_dir=tmp_path / "system")
    result.config_dir.mkdir()
    result.system_config_dir.mkdir()
    return result


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
        ('this is not toml', None, "must be valid TOML"),
        # issue 11 item 8: was "internal error — RecursionError" (77)
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", None, "nested too deeply"),
        ("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", None, "nested too deeply"),
    ],
)
def test_bad_config_is_exit_78_naming_file_line_and_key(
    where: Paths, text: str, line: int | None, fragment: str
) -> None:
    where.user_config_file.write_text(text)
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
    with pytest.raises(ConfigError):
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
