"""docker/cli's and pflag's own tests (dockerargs_vectors.json) against dockerargs.parse.

Each vector is an argv as the Go test builds it (``strings.Split`` of the test string,
pflag's tests translated to docker run flags) and what docker does with it. The outcomes
map onto :func:`safedocker._docker.argv.parse` like this:

* ``ok``: parse finds IMAGE at the same argv index (and the same options, where the vector
  lists them; ``pulled_ref`` is the familiar ``name:tag`` docker pulls, our
  :func:`parse_reference` with the default tag).
* ``help``: parse reports help (docker prints usage and runs nothing).
* ``grammar-error`` (pflag/cobra refuse the line) and ``value-error`` (a flag's ``Set``
  refuses its value, e.g. ``--attach`` streams, ``--memory`` sizes): a :class:`UsageError`,
  exit 2, raised by parse, i.e. before any registry request. pflag's own message is
  checked where the vector quotes it.
* ``semantic-error``: docker refuses the line only after parsing its flags
  (``opts.parse``: ``--expose`` ranges, ``--restart`` policies, option conflicts, env
  files...) with its own status. safe-docker does not repeat those checks: parse must find
  IMAGE where docker does, and docker reports the error after the hand-off. Where the
  error is the image reference itself (``pull UPPERCASE_REPO``), our
  :func:`parse_reference` must refuse it as docker does.

The three Go tests listed under ``not_mapped`` in the vector file call Go functions with
options and no argv; there is nothing of ours to run them against.
"""

from __future__ import annotations

from typing import Any

import pytest

from safedocker._docker.argv import parse
from safedocker.errors import UsageError
from safedocker.reference import parse_reference
from tests.unit.conformance.vectors import load

VECTORS = load("dockerargs_vectors.json")


def _params() -> list[Any]:
    return [pytest.param(v, id=f"{i}:{v['source'].split(' ', 1)[-1]}")
            for i, v in enumerate(VECTORS["vectors"])]


def test_the_unmapped_go_tests_take_no_argv() -> None:
    """Documents why three Go tests are not vectors: each calls Go code without an argv."""
    assert len(VECTORS["not_mapped"]) == 3
    assert all("no argv" in note or "without the command's argument" in note
               for note in VECTORS["not_mapped"])


@pytest.mark.parametrize("vector", _params())
def test_docker_cli_vector(vector: dict[str, Any]) -> None:
    argv, outcome = vector["argv"], vector["outcome"]
    if outcome in ("grammar-error", "value-error"):
        with pytest.raises(UsageError) as caught:
            parse(argv)
        assert caught.value.exit_code == 2
        if outcome == "value-error":
            assert "invalid argument" in caught.value.line()
        note = vector.get("note", "")
        if note.startswith(("unknown shorthand flag", "flag needs an argument")):
            assert note in caught.value.line()
        return
    invocation = parse(argv)
    if outcome == "help":
        assert invocation.help
        return
    assert outcome in ("ok", "semantic-error"), outcome
    assert invocation.image == vector["image"]
    if "image_index" in vector:
        assert invocation.image_index == vector["image_index"]
    if "options" in vector:
        assert [[o.name, o.value] for o in invocation.options] == vector["options"]
    if "pulled_ref" in vector:
        ref = parse_reference(invocation.image)
        assert f"{ref.familiar_name}:{ref.tag_or_default}" == vector["pulled_ref"]
    if outcome == "semantic-error" and "invalid reference format" in vector.get("note", ""):
        with pytest.raises(UsageError, match="must be lowercase"):
            parse_reference(invocation.image)


# --- values pflag refuses, beyond the vectors (checked against docker 28's CLI) -------------


@pytest.mark.parametrize(("flag", "value"), [
    ("--attach", "all"), ("-a", "in"), ("--memory", "1x"), ("--memory", "-1"),
    ("--memory", "1kbb"), ("--memory-swap", "-2"), ("--shm-size", ""), ("--kernel-memory", "x"),
    ("--stop-timeout", "1.5"), ("--stop-timeout", "08"), ("--stop-timeout", "1__0"),
    ("--cpu-shares", "9223372036854775808"), ("--blkio-weight", "65536"),
    ("--health-interval", "1d"), ("--health-timeout", "5"), ("--dns", "01.2.3.4"),
    ("--dns", "x"), ("--env", "=x"), ("--label", "a b=c"), ("--link", "a:b:c"),
    ("--sysctl", "vm.x=1"), ("--add-host", "a"), ("--device-cgroup-rule", "d 1:3 r"),
    ("--blkio-weight-device", "/dev/sda:5"), ("--device-read-bps", "/tmp:1"),
    ("--device-write-iops", "/dev/sda:1k"),
])
def test_values_docker_refuses_are_usage_errors(flag: str, value: str) -> None:
    with pytest.raises(UsageError, match="invalid argument") as caught:
        parse(["run", f"{flag}={value}" if flag.startswith("--") else flag, *(
            [] if flag.startswith("--") else [value]), "img"])
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("flag", "value"), [
    ("--attach", "STDIN"), ("--memory", "1_000"), ("--memory", "0x1p3"), ("--memory", "1 g"),
    ("--memory", "1.5GiB"), ("--memory", "1e3k"), ("--memory-swap", "-1"),
    ("--stop-timeout", "0x10"), ("--stop-timeout", "-0b101"), ("--stop-timeout", "0_7"),
    ("--health-interval", "1h2m3.5s"), ("--health-interval", "1\u00b5s"),
    ("--health-interval", "0"), ("--ip", "x"), ("--dns", "::ffff:1.2.3.4"), ("--dns", " ::1"),
    ("--env", "A"), ("--label", "  a=b c"), ("--sysctl", "fs.mqueue.x=1"),
    ("--add-host", "h:host-gateway"), ("--add-host", "h=[::1]"),
    ("--device-cgroup-rule", "b 7:* rmw"), ("--blkio-weight-device", "/dev/sda:0"),
    ("--device-read-bps", "/dev/sda:1mb"),
])
def test_values_docker_accepts_still_parse(flag: str, value: str) -> None:
    assert parse(["run", f"{flag}={value}", "img"]).image == "img"
