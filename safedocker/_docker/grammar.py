"""The grammar of the docker commands that name images besides run/create/pull: swarm
services, plugins, ``buildx create``; and docker's CSV option values (``--mount``,
``--driver-opt``). Standard library only.

The flag tables are an allowlist read from docker/cli v28.5.2 (cli/command/service/
create.go, update.go, opts.go; cli/command/plugin/install.go, upgrade.go) and docker/buildx
v0.29.1 (commands/create.go, commands/root.go): an option docker does not know is a usage
error (2) here, found before any registry is asked, as docker itself would refuse it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from safedocker._docker.argv import FlagSet, Option, make_flags, parse_bool, parse_flags
from safedocker.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker._docker.commands import Found

# addServiceFlags (opts.go): shared by `service create` and `service update`.
_SERVICE_COMMON = (
    "detach/d! quiet/q! workdir/w user/u credential-spec hostname entrypoint cap-add cap-drop "
    "limit-cpu limit-memory reserve-cpu reserve-memory limit-pids stop-grace-period replicas "
    "max-concurrent replicas-max-per-node restart-condition restart-delay "
    "restart-max-attempts restart-window update-parallelism update-delay update-monitor "
    "update-failure-action update-max-failure-ratio update-order rollback-parallelism "
    "rollback-delay rollback-monitor rollback-failure-action rollback-max-failure-ratio "
    "rollback-order endpoint-mode with-registry-auth! no-resolve-image! log-driver log-opt "
    "health-cmd health-interval health-timeout health-retries health-start-period "
    "health-start-interval no-healthcheck! tty/t! read-only! stop-signal isolation help/h! "
)
SERVICE_CREATE = make_flags(
    _SERVICE_COMMON
    + "mode name label/l container-label env/e env-file mount constraint placement-pref "
      "network secret config publish/p group dns dns-option dns-search host init! sysctl "
      "ulimit oom-score-adj generic-resource",
    interspersed=False,  # IMAGE, then the container's command and its own flags
)
SERVICE_UPDATE = make_flags(
    _SERVICE_COMMON
    + "image args rollback! force! env-rm group-rm label-rm container-label-rm mount-rm "
      "publish-rm constraint-rm dns-rm dns-option-rm dns-search-rm host-rm label-add "
      "container-label-add env-add secret-rm secret-add config-rm config-add mount-add "
      "constraint-add placement-pref-add placement-pref-rm network-add network-rm "
      "publish-add group-add dns-add dns-option-add dns-search-add host-add init! "
      "sysctl-add sysctl-rm ulimit-add ulimit-rm oom-score-adj generic-resource-rm "
      "generic-resource-add",
    interspersed=True,
)
PLUGIN_INSTALL = make_flags(
    "grant-all-permissions! disable-content-trust! disable! alias help/h!", interspersed=True)
PLUGIN_UPGRADE = make_flags(
    "grant-all-permissions! disable-content-trust! skip-remote-check! help/h!",
    interspersed=True)
# A CLI plugin's subcommand also accepts docker's global flags (the plugin's root command
# is `docker`) and buildx's root flags; `--config` here is create's own (a hidden twin of
# --buildkitd-config), which shadows docker's.
BUILDX_CREATE = make_flags(
    "name driver node platform driver-opt buildkitd-flags buildkitd-config config "
    "bootstrap! append! leave! use! builder debug/D! help/h! context/c host/H log-level/l "
    "tls! tlscacert tlscert tlskey tlsverify!",
    interspersed=True)


class Command(NamedTuple):
    """One docker command line, parsed with its command's flags."""

    argv: tuple[str, ...]
    found: Found
    options: tuple[Option, ...]
    positionals: tuple[int, ...]  # argv indices
    dash: int | None  # argv index of the "--" that ended the options
    flags: FlagSet

    @property
    def name(self) -> str:
        return "docker " + " ".join(self.found.words)

    def values(self, name: str) -> list[Option]:
        """Every occurrence of a flag (by its long name), in order."""
        wanted = f"--{self.flags.lookup(name).name}"
        return [option for option in self.options if option.name == wanted]

    def value(self, name: str) -> str | None:
        """A flag's effective value (pflag: the last one given), or None."""
        given = self.values(name)
        return given[-1].value if given else None

    def flag(self, name: str) -> bool:
        """A bool flag's effective value: the last occurrence wins, absent is false."""
        given = self.values(name)
        return bool(given) and parse_bool(given[-1].value) is True

    @property
    def help(self) -> bool:
        """docker prints the command's usage and does nothing else."""
        return self.flag("help")

    def positional(self, number: int) -> str | None:
        return self.argv[self.positionals[number]] if number < len(self.positionals) else None


def parse_command(argv: Sequence[str], found: Found, flags: FlagSet) -> Command:
    """Parse the options after ``found``'s words as pflag would; a flag docker would refuse
    is a :class:`UsageError`."""
    argv = tuple(argv)
    name = "docker " + " ".join(found.words)
    parsed = parse_flags(argv, found.end, flags)
    if parsed.error is not None:
        raise UsageError(f"{name}: {parsed.error}", hint=f"see '{name} --help'")
    return Command(argv, found, parsed.options, parsed.positionals, parsed.dash, flags)


def with_value(argv: Sequence[str], option: Option, value: str) -> list[str]:
    """argv with ``option``'s value replaced, spelled as the user spelled it (``--x v``,
    ``--x=v``, ``-xv``, ``-x=v``)."""
    if option.value is None:
        raise ValueError(f"{option.name} has no value to replace")
    tokens = list(argv)
    if option.end - option.start == 2:
        tokens[option.end - 1] = value
    else:
        token = tokens[option.start]
        tokens[option.start] = token[: len(token) - len(option.value)] + value
    return tokens


def insert_options(argv: Sequence[str], command: Command, extra: Sequence[str]) -> list[str]:
    """argv with ``extra`` options after every option the user gave (before a ``--`` that
    ends them, else at the end): later options win over earlier ones in pflag."""
    tokens = list(argv)
    at = command.dash if command.dash is not None else len(tokens)
    tokens[at:at] = extra
    return tokens


# --- docker's CSV values (encoding/csv, first record) -------------------------------------


def csv_fields(value: str, option: str) -> list[str]:
    """The first record of ``value`` as Go's encoding/csv reads it (docker's ``--mount``,
    buildx's ``--driver-opt``): fields split at commas, ``"…"`` quoting with ``""`` for a
    quote. A value whose reading could differ (line breaks, quotes docker rejects) is a
    usage error, as docker makes it one or reads another record than it shows."""
    if "\n" in value or "\r" in value:
        raise UsageError(f"{option}: a value with a line break is not read the same way by "
                         "every CSV reader", hint=f"give {option} on one line")
    fields: list[str] = []
    i, n = 0, len(value)
    while True:
        if i < n and value[i] == '"':
            text: list[str] = []
            i += 1
            while True:
                end = value.find('"', i)
                if end < 0:
                    raise UsageError(f"{option}: extraneous or missing \" in quoted-field",
                                     hint=f"see 'docker help' for {option}")
                text.append(value[i:end])
                i = end + 1
                if i < n and value[i] == '"':
                    text.append('"')
                    i += 1
                    continue
                break
            fields.append("".join(text))
            if i < n and value[i] != ",":
                raise UsageError(f"{option}: extraneous or missing \" in quoted-field",
                                 hint=f"see 'docker help' for {option}")
        else:
            end = value.find(",", i)
            end = n if end < 0 else end
            field = value[i:end]
            if '"' in field:
                raise UsageError(f'{option}: bare " in non-quoted-field',
                                 hint=f"see 'docker help' for {option}")
            fields.append(field)
            i = end
        if i >= n:
            return fields
        i += 1  # the comma


def csv_join(fields: Sequence[str]) -> str:
    """One CSV record as Go's encoding/csv writes it (quoting only where needed)."""
    def quoted(field: str) -> str:
        if field == "" or not any(c in field for c in ',"\r\n') and field[:1] not in " \t":
            return field
        return '"' + field.replace('"', '""') + '"'
    return ",".join(quoted(f) for f in fields)


class ImageMount(NamedTuple):
    """A ``--mount type=image,source=IMAGE`` (docker ≥ 28): the image's files in a
    container, which must be verified like the container's own image."""

    option: Option
    source: str
    fields: tuple[str, ...]
    source_fields: tuple[int, ...]  # which fields name the source (the last one wins)

    def with_source(self, image: str) -> str:
        """The option's value with the source replaced (every source field)."""
        fields = list(self.fields)
        for index in self.source_fields:
            key = fields[index].partition("=")[0]
            fields[index] = f"{key}={image}"
        return csv_join(fields)


def image_mounts(options: Sequence[Option], names: Sequence[str]) -> list[ImageMount]:
    """The ``--mount`` values (opts/mount.go: keys and the type fold case, the last
    ``type``/``source`` wins) that mount an image."""
    found = []
    for option in options:
        if option.name not in names or option.value is None:
            continue
        fields = csv_fields(option.value, option.name)
        kind, source, sources = "volume", "", []
        for index, field in enumerate(fields):
            key, eq, val = field.partition("=")
            key = key.lower()
            if key == "type" and eq:
                kind = val.lower()
            elif key in ("source", "src") and eq:
                source = val
                sources.append(index)
        if kind == "image":
            if not source:
                raise UsageError(f"{option.name}: an image mount needs source=IMAGE",
                                 hint="name the image to mount: type=image,source=IMAGE")
            found.append(ImageMount(option, source, tuple(fields), tuple(sources)))
    return found


def driver_opts(values: Sequence[str]) -> dict[str, str]:
    """buildx's ``--driver-opt`` values as one map (builder.csvToMap: each value is CSV of
    ``k=v`` fields; the last value of a key wins)."""
    found: dict[str, str] = {}
    for value in values:
        for field in csv_fields(value, "--driver-opt"):
            key, eq, val = field.partition("=")
            if not eq:
                raise UsageError(f"--driver-opt: invalid value {field!r}, expecting k=v",
                                 hint="e.g. --driver-opt image=moby/buildkit:v0.23.0")
            found[key] = val
    return found
