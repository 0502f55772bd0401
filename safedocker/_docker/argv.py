"""docker CLI grammar (docker/cli v28, spf13/pflag v1.0.6 rules): find and replace IMAGE.

Imported on the hot path of every docker call: standard library only, no regexes.

What the real CLI does, and this module mirrors:

* Global flags are parsed up to the first non-flag word (pflag, interspersed off). The
  global ``-h/--help`` and ``-v/--version`` do *not* stop a following subcommand:
  ``docker --help run IMG`` runs IMG.
* ``docker container|image`` then walks to the subcommand with cobra's ``Traverse``; help
  flags between the two words (``docker container --help=false run IMG``) are accepted
  and ignored, so the subcommand still runs.
* ``run``/``create`` stop at the first positional (IMAGE); everything after it belongs to
  the container command even when it looks like a flag. ``pull`` is interspersed.
* pflag: ``--flag=v``, ``--flag v``, ``-xv``, ``-x v``, ``-x=v`` (the ``=`` is dropped),
  combined shorts (``-itv a:/b``); a bool takes a value only through ``=``; ``--`` ends
  options; a shorthand run that starts with ``test.`` is silently ignored (Go test flags).
* pflag calls each flag's ``Set`` as it reads it, and docker's values refuse what they
  cannot hold (``--attach`` streams, ``--memory`` sizes by go-units ``RAMInBytes``, Go
  integers and durations, IP addresses, docker/cli's ``opts.Validate*``). Those are usage
  errors here too, found before any registry is asked. Values docker checks only later
  (``--restart``, ``--expose``...), the composite ones (``--mount``, ``--gpus``,
  ``--network``, ``--ulimit``, ``--cpus``, ``--dns-search``) and ``--ip``/``--ip6`` (a
  string that docker 20.10-28 check only after connecting) are left to docker: a lenient
  check costs a registry request, a stricter one would break a command docker runs.
"""

from __future__ import annotations

from safedocker._internal.lean import NamedTuple
from safedocker.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    # A flag value check: why docker refuses the value, or None.
    Check = Callable[[str], str | None]

# strconv.ParseBool: anything else given to a bool flag is a usage error in docker.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(value: str | None) -> bool | None:
    """pflag's reading of a bool flag's value (None means no value: true); None if invalid."""
    if value is None or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


class _Flag(NamedTuple):
    name: str  # canonical long name without dashes
    short: str | None
    boolean: bool


class FlagSet(NamedTuple):
    longs: dict[str, _Flag]  # every accepted spelling (aliases too) -> flag
    shorts: dict[str, _Flag]
    interspersed: bool
    checks: Mapping[str, Check] = {}  # canonical name -> value check (pflag's Set)

    def lookup(self, name: str) -> _Flag:
        """A flag by ``--long``, ``-s``, ``long`` or ``s``; ValueError for unknown names."""
        bare = name.lstrip("-")
        flag = self.shorts.get(bare) if len(bare) == 1 else self.longs.get(bare)
        if flag is None:
            raise ValueError(f"not a flag of this command: {name}")
        return flag


def make_flags(spec: str, *, interspersed: bool, aliases: dict[str, str] | None = None,
             checks: Mapping[str, Check] | None = None) -> FlagSet:
    """Build a flag set from ``"name/s? name ..."`` where a trailing ``!`` marks a bool."""
    longs: dict[str, _Flag] = {}
    shorts: dict[str, _Flag] = {}
    for word in spec.split():
        boolean = word.endswith("!")
        long, _, short = word.rstrip("!").partition("/")
        flag = _Flag(long, short or None, boolean)
        longs[long] = flag
        if short:
            shorts[short] = flag
    for alias, target in (aliases or {}).items():
        longs[alias] = longs[target]
    return FlagSet(longs, shorts, interspersed, checks or {})


# cli/flags/options.go + the root command's --version and cobra's persistent --help.
_GLOBAL = make_flags(
    "config context/c debug/D! host/H log-level/l tls! tlscacert tlscert tlskey tlsverify! "
    "version/v! help/h!",
    interspersed=False,
)

# --- flag values: what each flag's Set refuses -------------------------------------------


def _underscores_ok(text: str) -> bool:
    """strconv's underscoreOK: ``_`` only between digits (or after a base prefix)."""
    saw, i, hexa = "^", 0, False
    if text[:1] in ("+", "-"):
        text = text[1:]
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i, saw, hexa = 2, "0", text[1].lower() == "x"
    for ch in text[i:]:
        if ch.isdigit() and ch.isascii() or hexa and ch.lower() in "abcdef":
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def _go_uint(text: str, bits: int, base0: bool = True) -> int | None:
    """strconv.ParseUint(text, 0 or 10, bits), or None."""
    digits, base = text, 10
    if base0 and digits[:1] == "0" and len(digits) > 1:
        prefix = digits[1].lower()
        if len(digits) >= 3 and prefix in "box":
            base, digits = {"b": 2, "o": 8, "x": 16}[prefix], digits[2:]
        else:
            base, digits = 8, digits[1:]
    if not text:
        return None
    value, underscores = 0, False
    for ch in digits:
        if ch == "_" and base0:
            underscores = True
            continue
        digit = "0123456789abcdef".find(ch.lower()) if ch.isascii() else -1
        if digit < 0 or digit >= base:
            return None
        value = value * base + digit
    if underscores and not _underscores_ok(text):
        return None
    return value if value < 1 << bits else None


def _go_int(text: str, bits: int = 64) -> int | None:
    """strconv.ParseInt(text, 0, bits), or None."""
    negative = text[:1] == "-"
    magnitude = _go_uint(text[1:] if text[:1] in ("+", "-") else text, bits)
    if magnitude is None or magnitude > (1 << (bits - 1)) - (0 if negative else 1):
        return None
    return -magnitude if negative else magnitude


def _int64(value: str) -> str | None:
    return None if _go_int(value) is not None else "invalid syntax (not a 64-bit integer)"


def _uint16(value: str) -> str | None:
    return None if _go_uint(value, 16) is not None else "not an integer from 0 to 65535"


def _uint64(value: str) -> str | None:
    return None if _go_uint(value, 64) is not None else "not an unsigned 64-bit integer"


_DURATION_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 10**6,
                   "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _duration(value: str) -> str | None:
    """time.ParseDuration: ``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`` within int64 nanoseconds."""
    rest = value[1:] if value[:1] in ("+", "-") else value
    if rest == "0":
        return None
    if not rest:
        return "not a duration (use e.g. 30s, 1m30s)"
    total = 0
    while rest:
        i = 0
        while i < len(rest) and rest[i] in "0123456789":
            i += 1
        whole, rest = rest[:i], rest[i:]
        fraction = ""
        if rest[:1] == ".":
            j = 1
            while j < len(rest) and rest[j] in "0123456789":
                j += 1
            fraction, rest = rest[1:j], rest[j:]
        if not whole and not fraction:
            return "not a duration (use e.g. 30s, 1m30s)"
        j = 0
        while j < len(rest) and rest[j] not in ".0123456789":
            j += 1
        unit = _DURATION_UNITS.get(rest[:j])
        if unit is None:
            return f"unknown or missing unit {rest[:j]!r} (use ns, us, ms, s, m or h)"
        rest = rest[j:]
        total += int(whole or "0") * unit
        if fraction:
            total += int(float("0." + fraction) * unit)
        if total > 1 << 63:
            return "duration out of range"
    if total > (1 << 63) - 1 and value[:1] != "-":
        return "duration out of range"
    return None


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for finite decimal and hexadecimal numbers, or None."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if "_" in body and not _underscores_ok(body):
        return None
    plain = body.replace("_", "")
    sign = -1.0 if text[:1] == "-" else 1.0
    if plain[:2].lower() == "0x":
        if "p" not in plain.lower():
            return None  # a hexadecimal float needs its p exponent
        try:
            return sign * float.fromhex(plain)
        except (ValueError, OverflowError):
            return None
    if not plain or not all(ch in "0123456789.eE+-" for ch in plain):
        return None  # also refuses inf and nan, which cannot end in a digit here anyway
    try:
        return sign * float(plain)
    except ValueError:
        return None


def _ram_in_bytes(value: str) -> str | None:
    """go-units RAMInBytes: a number, optionally a space, then b, k, m, g, t, p (+b/ib)."""
    sep = max(value.rfind(ch) for ch in "0123456789. ")
    if sep < 0:
        return f"invalid size: '{value}'"
    number, suffix = (value[: sep + 1], value[sep + 1 :]) if value[sep] != " " else (
        value[:sep], value[sep + 1 :])
    size = _go_float(number)
    if size is None:
        return f"invalid size: '{value}'"
    if size < 0:
        return f"invalid size: '{value}'"
    suffix = suffix.lower()
    if not suffix:
        return None
    if len(suffix) > 3 or suffix[0] not in "bkmgtp" or suffix[0] == "b" and len(suffix) > 1 \
            or len(suffix) == 2 and suffix[1] != "b" or len(suffix) == 3 and suffix[1:] != "ib":
        return f"invalid suffix: '{suffix}'"
    return None


def _swap_bytes(value: str) -> str | None:
    return None if value == "-1" else _ram_in_bytes(value)


def _stream(value: str) -> str | None:
    if value.lower() in ("stdin", "stdout", "stderr"):
        return None
    return "valid streams are STDIN, STDOUT and STDERR"


def _ip(value: str) -> str | None:
    """Go's net.ParseIP after TrimSpace: no zone, no leading zeros, no brackets."""
    import ipaddress

    text = value.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return f"failed to parse IP: {value!r}"
    return None if "%" not in text else f"failed to parse IP: {value!r}"


def _dns(value: str) -> str | None:
    return None if _ip(value) is None else f"IP address is not correctly formatted: {value}"


def _env(value: str) -> str | None:
    return None if value.partition("=")[0] else f"invalid environment variable: {value}"


def _label(value: str) -> str | None:
    key = value.partition("=")[0].lstrip(" \t")
    if not key:
        return f"invalid label '{value}': empty name"
    return f"label '{key}' contains whitespaces" if " " in key or "\t" in key else None


def _link(value: str) -> str | None:
    if not value:
        return "empty string specified for links"
    return "bad format for links: " + value if value.count(":") > 1 else None


# opts.ValidateSysctl: these names, and anything under these prefixes.
_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                      "kernel.shm_rmid_forced"})


def _sysctl(value: str) -> str | None:
    key, eq, _ = value.partition("=")
    if eq and key and (key in _SYSCTLS or key.startswith(("net.", "fs.mqueue."))):
        return None
    return f"sysctl '{value}' is not allowed"


def _extra_host(value: str) -> str | None:
    host, eq, address = value.partition("=")
    if not eq:
        host, eq, address = value.partition(":")
    if not eq or not host or ":" in host:
        return f"bad format for add-host: {value!r}"
    if address == "host-gateway":
        return None
    if len(address) > 2 and address[0] == "[" and address[-1] == "]":
        address = address[1:-1]
    return None if _ip(address) is None else f"invalid IP address in add-host: {address!r}"


def _cgroup_rule(value: str) -> str | None:
    """``^[acb] ([0-9]+|\\*):([0-9]+|\\*) [rwm]{1,3}$`` without a regex (hot path)."""
    parts = value.split(" ")
    numbers = parts[1].split(":") if len(parts) == 3 else []
    if (len(parts) == 3 and parts[0] in ("a", "b", "c") and len(numbers) == 2
            and all(n == "*" or n.isascii() and n.isdigit() for n in numbers)
            and 1 <= len(parts[2]) <= 3 and all(ch in "rwm" for ch in parts[2])):
        return None
    return f"invalid device cgroup format '{value}'"


def _device_rate(value: str, rate: Check) -> str | None:
    path, colon, amount = value.partition(":")
    if not colon or not path:
        return f"bad format: {value}"
    if not path.startswith("/dev/"):
        return f"bad format for device path: {value}"
    return None if rate(amount) is None else f"invalid rate or weight for device: {value}"


def _decimal_uint(bits: int, low: int = 0, high: int | None = None) -> Check:
    def check(amount: str) -> str | None:
        number = _go_uint(amount, bits, base0=False)
        if number is None or number and not (low <= number <= (high or number)):
            return "out of range"
        return None
    return check


_CONTAINER_CHECKS: dict[str, Check] = {
    "attach": _stream,
    "add-host": _extra_host,
    "blkio-weight": _uint16,
    "blkio-weight-device": lambda v: _device_rate(v, _decimal_uint(16, 10, 1000)),
    "cpu-count": _int64, "cpu-percent": _int64, "cpu-period": _int64, "cpu-quota": _int64,
    "cpu-rt-period": _int64, "cpu-rt-runtime": _int64, "cpu-shares": _int64,
    "device-cgroup-rule": _cgroup_rule,
    "device-read-bps": lambda v: _device_rate(v, _ram_in_bytes),
    "device-write-bps": lambda v: _device_rate(v, _ram_in_bytes),
    "device-read-iops": lambda v: _device_rate(v, _decimal_uint(64)),
    "device-write-iops": lambda v: _device_rate(v, _decimal_uint(64)),
    "dns": _dns,
    "env": _env,
    "health-interval": _duration, "health-timeout": _duration,
    "health-start-period": _duration, "health-start-interval": _duration,
    "health-retries": _int64,
    "io-maxbandwidth": _ram_in_bytes,
    "io-maxiops": _uint64,
    "kernel-memory": _ram_in_bytes,
    "label": _label,
    "link": _link,
    "memory": _ram_in_bytes, "memory-reservation": _ram_in_bytes, "shm-size": _ram_in_bytes,
    "memory-swap": _swap_bytes,
    "memory-swappiness": _int64,
    "oom-score-adj": _int64,
    "pids-limit": _int64,
    "stop-timeout": _int64,
    "sysctl": _sysctl,
}

# cli/command/container/opts.go addFlags(), shared by run and create. Hidden aliases
# (--net, --net-alias, --dns-opt) write the same option as their visible twin, so they are
# reported under the visible name.
_CONTAINER_FLAGS = (
    "attach/a device-cgroup-rule device gpus env/e env-file entrypoint group-add "
    "hostname/h domainname interactive/i! label/l label-file read-only! restart stop-signal "
    "stop-timeout sysctl tty/t! ulimit user/u workdir/w rm! "
    "cap-add cap-drop privileged! security-opt userns cgroupns "
    "add-host dns dns-option dns-search expose ip ip6 link link-local-ip mac-address "
    "publish/p publish-all/P! network network-alias "
    "log-driver volume-driver log-opt storage-opt tmpfs volumes-from volume/v mount "
    "health-cmd health-interval health-retries health-timeout health-start-period "
    "health-start-interval no-healthcheck! "
    "blkio-weight blkio-weight-device cidfile cpuset-cpus cpuset-mems cpu-count cpu-percent "
    "cpu-period cpu-quota cpu-rt-period cpu-rt-runtime cpu-shares/c cpus device-read-bps "
    "device-read-iops device-write-bps device-write-iops io-maxbandwidth io-maxiops "
    "kernel-memory memory/m memory-reservation memory-swap memory-swappiness "
    "oom-kill-disable! oom-score-adj pids-limit "
    "cgroup-parent ipc isolation pid shm-size uts runtime init! annotation "
    # create.go / run.go own flags; --help has no -h here (it is --hostname).
    "name pull quiet/q! use-api-socket! help! platform disable-content-trust!"
)
_CONTAINER_ALIASES = {"net": "network", "net-alias": "network-alias", "dns-opt": "dns-option"}
_CREATE = make_flags(_CONTAINER_FLAGS, interspersed=False, aliases=_CONTAINER_ALIASES,
                   checks=_CONTAINER_CHECKS)
_RUN = make_flags(
    _CONTAINER_FLAGS + " detach/d! sig-proxy! detach-keys",
    interspersed=False,
    aliases=_CONTAINER_ALIASES,
    checks=_CONTAINER_CHECKS,
)
# cli/command/image/pull.go; -h/--help is the root's persistent flag.
_PULL = make_flags(
    "all-tags/a! quiet/q! platform disable-content-trust! help/h!", interspersed=True
)

_COMMANDS: dict[tuple[str, ...], FlagSet] = {
    ("run",): _RUN,
    ("create",): _CREATE,
    ("pull",): _PULL,
    ("container", "run"): _RUN,
    ("container", "create"): _CREATE,
    ("image", "pull"): _PULL,
}
_GROUPS = {"container": ("run", "create"), "image": ("pull",)}


class Option(NamedTuple):
    name: str  # canonical long name, e.g. "--env" (also for "-e" and the alias "--net")
    value: str | None  # None for a bool given without value
    start: int  # arg range in argv, end exclusive; combined shorts share one arg
    end: int


class _Parsed(NamedTuple):
    options: tuple[Option, ...]
    positionals: tuple[int, ...]  # argv indices
    dash: int | None  # argv index of the terminating "--"
    stopped: int | None  # index of the first token not parsed (error), for split_globals
    error: str | None


def parse_flags(argv: Sequence[str], start: int, flags: FlagSet) -> _Parsed:
    """pflag's parseArgs from ``argv[start]``; errors are returned, not raised."""
    options: list[Option] = []
    positionals: list[int] = []
    i = start
    n = len(argv)

    def result(error: str | None = None, stopped: int | None = None) -> _Parsed:
        return _Parsed(tuple(options), tuple(positionals), dash, stopped, error)

    dash: int | None = None
    while i < n:
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":  # "", "-" and words are positionals
            if not flags.interspersed:
                positionals.extend(range(i, n))
                return result()
            positionals.append(i)
            i += 1
            continue
        if arg == "--":
            dash = i
            positionals.extend(range(i + 1, n))
            return result()
        if arg[1] == "-":
            name, eq, attached = arg[2:].partition("=")
            if not name or name[0] in "-=":
                return result(f"bad flag syntax: {arg}", i)
            flag = flags.longs.get(name)
            if flag is None:
                return result(f"unknown flag: --{name}", i)
            if eq:
                value: str | None = attached
                end = i + 1
            elif flag.boolean:
                value, end = None, i + 1
            elif i + 1 < n:
                value, end = argv[i + 1], i + 2
            else:
                return result(f"flag needs an argument: {arg}", i)
            if flag.boolean and parse_bool(value) is None:
                return result(f'invalid argument "{value}" for "--{name}" flag', i)
            problem = _value_problem(flags, flag, value, f"--{name}")
            if problem:
                return result(problem, i)
            options.append(Option(f"--{flag.name}", value, i, end))
            i = end
            continue
        # Shorthands: walk the run of letters the way parseSingleShortArg does.
        rest = arg[1:]
        end = i + 1
        while rest:
            if rest.startswith("test."):  # pflag skips Go test flags, silently
                break
            letter, tail = rest[0], rest[1:]
            flag = flags.shorts.get(letter)
            if flag is None:
                return result(f"unknown shorthand flag: {letter!r} in -{rest}", i)
            if len(rest) > 2 and rest[1] == "=":
                value, rest = rest[2:], ""  # "-x=v": the "=" is not part of the value
            elif flag.boolean:
                value, rest = None, tail
            elif tail:
                value, rest = tail, ""  # "-xv" (note "-e=" gives "=": len("e=") is 2)
            elif i + 1 < n:
                value, end, rest = argv[i + 1], i + 2, ""
            else:
                return result(f"flag needs an argument: {letter!r} in -{rest}", i)
            if flag.boolean and parse_bool(value) is None:
                return result(f'invalid argument "{value}" for "-{letter}" flag', i)
            problem = _value_problem(flags, flag, value, f"-{letter}, --{flag.name}")
            if problem:
                return result(problem, i)
            options.append(Option(f"--{flag.name}", value, i, end))
        i = end
    return result()


def _value_problem(flags: FlagSet, flag: _Flag, value: str | None, spelled: str) -> str | None:
    """pflag's InvalidValueError text when the flag's Set refuses ``value``, else None."""
    check = flags.checks.get(flag.name)
    why = check(value) if check is not None and value is not None else None
    if why is None:
        return None
    if flag.short and not spelled.startswith(f"-{flag.short}"):
        spelled = f"-{flag.short}, --{flag.name}"
    return f'invalid argument "{value}" for "{spelled}" flag: {why}'


def traverse_group(argv: Sequence[str], start: int, flags: FlagSet) -> int | None:
    """cobra's ``Command.Traverse``: the index of the next command word, or None when
    docker would fail (the collected flags do not parse, or no word follows).

    Traverse guesses which flags take a value by shape alone (an unknown ``--x`` or ``-x``
    takes one, ``-xy`` never does, ``--`` swallows the next word), then pflag-parses what
    it collected, where ``--`` just ends the flags. So ``docker -- -- x run IMG`` and
    ``docker container -- x run IMG`` both run IMG.
    """
    in_flag = False
    for i in range(start, len(argv)):
        arg = argv[i]
        if arg.startswith("--") and "=" not in arg:
            long = flags.longs.get(arg[2:])
            in_flag = long is None or not long.boolean
        elif arg.startswith("-") and "=" not in arg and len(arg) == 2:
            short = flags.shorts.get(arg[1])
            in_flag = short is None or not short.boolean
        elif in_flag:
            in_flag = False
        elif not (len(arg) >= 2 and arg[0] == "-"):
            collected = parse_flags(argv[start:i], 0, _interspersed(flags))
            return i if collected.error is None else None
    return None


def _interspersed(flags: FlagSet) -> FlagSet:
    return flags._replace(interspersed=True)


class GlobalSplit(NamedTuple):
    command_index: int  # argv index of the first non-global-flag token; len(argv) if none
    globals: tuple[str, ...]  # argv[:index]


def split_globals(argv: Sequence[str]) -> GlobalSplit:
    """Split off docker's global flags; a bad global flag ends the split at its token.

    docker's first pass (pflag) stops at ``--``; cobra then reads global flags once more
    (``docker -- -D run IMG`` runs IMG). When that second reading fails, the split ends
    just after the ``--`` (on a flag, so no command is recognized).
    """
    parsed = parse_flags(argv, 0, _GLOBAL)
    if parsed.error is None and parsed.dash is not None:
        after = traverse_group(argv, parsed.dash + 1, _GLOBAL)
        index = parsed.dash + 1 if after is None else after
    elif parsed.stopped is not None:
        index = parsed.stopped
    elif parsed.positionals:
        index = parsed.positionals[0]
    else:
        index = len(argv)
    return GlobalSplit(index, tuple(argv[:index]))


def global_options(argv: Sequence[str]) -> tuple[Option, ...]:
    """docker's global flags given before the command, parsed (``--host``, ``--context``…)."""
    split = split_globals(argv)
    return parse_flags(argv[: split.command_index], 0, _GLOBAL).options


# ``docker container`` and ``docker image`` know only the (persistent) help flag.
_GROUP_FLAGS = make_flags("help/h!", interspersed=True)


def find_command(argv: Sequence[str]) -> tuple[tuple[str, ...], int, int] | None:
    """The intercepted command in argv: (words, index of first word, index after last).

    None when argv does not run pull/run/create. Use this rather than comparing
    ``argv[i:i+2]``: ``docker container --help=false run IMG`` runs IMG.
    """
    index = split_globals(argv).command_index
    if index >= len(argv):
        return None
    word = argv[index]
    if (word,) in _COMMANDS:
        return (word,), index, index + 1
    subcommands = _GROUPS.get(word)
    if subcommands is None:
        return None
    j = traverse_group(argv, index + 1, _GROUP_FLAGS)
    if j is not None and argv[j] in subcommands:
        return (word, argv[j]), index, j + 1
    return None


class Invocation(NamedTuple):
    argv: tuple[str, ...]  # the original argv, without the program name
    globals: tuple[str, ...]
    command: tuple[str, ...]  # ("run",), ("container", "create"), ("image", "pull"), ...
    command_index: int  # argv index of the command's first word
    options: tuple[Option, ...]  # the subcommand's options, in order
    image_index: int | None  # argv index of IMAGE; None only when help was asked for
    args_index: int = 0  # argv index of the first arg after the command words
    dash_index: int | None = None  # argv index of the "--" that ended the options
    flagset: FlagSet = _RUN

    @property
    def image(self) -> str:
        if self.image_index is None:
            raise UsageError(f"docker {' '.join(self.command)}: no IMAGE given")
        return self.argv[self.image_index]

    @property
    def container_command(self) -> tuple[str, ...]:
        """The tokens after IMAGE (run/create); always empty for pull."""
        if self.image_index is None or self.command[-1] == "pull":
            return ()
        return self.argv[self.image_index + 1 :]

    @property
    def help(self) -> bool:
        """docker will print the command's usage and do nothing else (``--help``)."""
        return self.flag("--help")

    def _selected(self, names: Iterable[str]) -> list[Option]:
        wanted = {f"--{self.flagset.lookup(name).name}" for name in names}
        return [option for option in self.options if option.name in wanted]

    def values(self, *names: str) -> list[str]:
        """Every value given for a flag under any of its names; a bare bool gives "true"."""
        return ["true" if o.value is None else o.value for o in self._selected(names)]

    def has(self, *names: str) -> bool:
        return bool(self._selected(names))

    def flag(self, *names: str) -> bool:
        """A bool flag's effective value: the last occurrence wins, absent is false."""
        selected = self._selected(names)
        return bool(selected) and parse_bool(selected[-1].value) is True

    def rebuild(self, image: str, extra_options: Sequence[str] = ()) -> list[str]:
        """argv with IMAGE replaced and ``extra_options`` inserted just before it (before
        a ``--`` that precedes it); every other token unchanged."""
        if self.image_index is None:
            raise UsageError(f"docker {' '.join(self.command)}: no IMAGE given")
        at = self.image_index
        if self.dash_index is not None and self.dash_index < at:
            at = self.dash_index  # only IMAGE can follow "--" before the command
        tokens = list(self.argv)
        tokens[self.image_index] = image
        tokens[at:at] = extra_options
        return tokens


def parse(argv: Sequence[str]) -> Invocation:
    """Parse a docker pull/run/create command line exactly as docker/cli v28 would."""
    argv = tuple(argv)
    split = split_globals(argv)
    if split.command_index < len(argv) and argv[split.command_index].startswith("-"):
        error = parse_flags(argv, 0, _GLOBAL).error or f"unexpected {argv[split.command_index]}"
        raise UsageError(f"docker: {error}", hint="see 'docker --help'")
    found = find_command(argv)
    if found is None:
        word = argv[split.command_index] if split.command_index < len(argv) else ""
        raise UsageError(
            f"not a pull/run/create command: {word or '(none)'}",
            hint="safe-docker checks only pull, run and create; run docker for the rest",
        )
    command, command_index, args_index = found
    flags = _COMMANDS[command]
    name = "docker " + " ".join(command)
    parsed = parse_flags(argv, args_index, flags)
    if parsed.error is not None:
        raise UsageError(f"{name}: {parsed.error}", hint=f"see '{name} --help'")
    invocation = Invocation(
        argv=argv,
        globals=split.globals,
        command=command,
        command_index=command_index,
        options=parsed.options,
        image_index=parsed.positionals[0] if parsed.positionals else None,
        args_index=args_index,
        dash_index=parsed.dash,
        flagset=flags,
    )
    if invocation.help:
        return invocation  # cobra shows usage before it checks the arguments
    if not parsed.positionals:
        raise UsageError(f"{name}: no IMAGE given", hint=f"usage: {name} [OPTIONS] IMAGE")
    if flags.interspersed and len(parsed.positionals) != 1:
        raise UsageError(
            f"{name}: requires exactly 1 argument, got {len(parsed.positionals)}",
            hint=f"usage: {name} [OPTIONS] NAME[:TAG|@DIGEST]",
        )
    return invocation
