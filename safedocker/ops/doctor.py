"""``safe-docker doctor``: is this machine set up to verify and run images?

Each check is one line with a fix hint: the real docker, the daemon, the GPU side, the
trust store, the trusted root's age and the permissions of the files that decide trust.
"""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING

from safedocker._docker.binary import find_real_docker
from safedocker._docker.engine import DockerCLI
from safedocker.errors import ExitCode, SafeDockerError
from safedocker.gpu.report import Check, doctor_checks
from safedocker.policy.config import Config, load_config

if TYPE_CHECKING:
    from safedocker.policy.paths import Paths

TRUST_ROOT_STALE_DAYS = 180


class DoctorFailed(SafeDockerError):
    """Some checks failed, a configuration check among them (exit 78)."""

    exit_code = ExitCode.CONFIG


class _NoDocker(DoctorFailed):
    exit_code = ExitCode.NO_DOCKER


class _DaemonUnavailable(DoctorFailed):
    exit_code = ExitCode.UNAVAILABLE


class _GpuUnusable(DoctorFailed):
    exit_code = ExitCode.GPU_UNMET


def doctor_failed(checks: list[Check]) -> DoctorFailed:
    """The error for failed checks. Its status is a configuration error's (78) when a
    configuration check failed (the files, keys, policy, roots, permissions safe-docker
    reads), else that of the first failed check: 127 no docker, 69 daemon, 125 GPU."""
    failed = [check for check in checks if not check.ok]
    codes = [check.exit_code for check in failed]
    kind: type[DoctorFailed] = DoctorFailed
    if ExitCode.CONFIG not in codes and codes:
        kind = {ExitCode.NO_DOCKER: _NoDocker, ExitCode.UNAVAILABLE: _DaemonUnavailable,
                ExitCode.GPU_UNMET: _GpuUnusable}.get(ExitCode(codes[0]), DoctorFailed)
    return kind(f"doctor found {len(failed)} problem(s)",
                why=", ".join(check.name for check in failed),
                hint="fix the lines marked FAIL above")


def _detail(error: SafeDockerError) -> str:
    """An error as a doctor detail: what and why, without the prefix and the hint (the
    hint is the check's own line)."""
    return f"{error.what} \u2014 {error.why}" if error.why else error.what


def _docker_checks() -> tuple[list[Check], DockerCLI | None]:
    docker = find_real_docker()
    if docker is None:
        return [Check("real docker", False, "no docker on PATH other than safe-docker",
                      "install the docker CLI or set SAFE_DOCKER_REAL_DOCKER",
                      ExitCode.NO_DOCKER)], None
    checks = [Check("real docker", True, docker)]
    engine = DockerCLI(docker)
    try:
        ok, detail = True, engine.server_version()
    except SafeDockerError as e:
        ok, detail = False, e.why or e.what
    checks.append(Check("docker daemon", ok, f"engine {detail}" if ok else detail,
                        "" if ok else "start dockerd, or check DOCKER_HOST / DOCKER_CONTEXT",
                        ExitCode.UNAVAILABLE))
    return checks, engine


def _trust_checks(where: Paths) -> tuple[list[Check], Config | None]:
    try:
        config = load_config(where)
    except SafeDockerError as e:
        return [Check("configuration", False, _detail(e), e.hint, ExitCode.CONFIG)], None
    checks = [Check("configuration", True,
                    ", ".join(str(f) for f in config.files) or "no config file (defaults)")]
    from safedocker.trust.keystore import load_trusted_keys

    try:
        load_trusted_keys(config, sorted(config.keys))
        checks.append(Check("trust store", True, f"{len(config.keys)} key(s), pins match"))
    except SafeDockerError as e:
        checks.append(Check("trust store", False, _detail(e), e.hint, ExitCode.CONFIG))
    if not config.policy.rules:
        checks.append(Check("policy", False, "no rules: every image is "
                            f"{config.unmatched.value}ed as unmatched",
                            "add rules with `safe-docker policy add SCOPE --key NAME`",
                            ExitCode.CONFIG))
    else:
        checks.append(Check("policy", True, f"{len(config.policy.rules)} rule(s), mode "
                            f"{config.mode.value}, unmatched {config.unmatched.value}"))
    return checks, config


def _trust_root_check(where: Paths) -> Check:
    roots = sorted(where.trust_roots_dir.glob("*.json")) if where.trust_roots_dir.exists() else []
    if not roots:
        return Check("trusted root", True, "embedded public-good Sigstore root (no imported root)")
    oldest = min(root.stat().st_mtime for root in roots)
    days = (time.time() - oldest) / 86400
    ok = days <= TRUST_ROOT_STALE_DAYS
    return Check("trusted root", ok, f"{len(roots)} imported root(s), oldest {days:.0f} days",
                 "" if ok else "refresh with `safe-docker trust-root update` or import a new one",
                 ExitCode.CONFIG)


def _permission_checks(where: Paths, config: Config | None) -> list[Check]:
    """Files that decide trust must not be writable by other users."""
    candidates = [where.config_dir, where.user_config_file, where.user_keys_dir,
                  where.system_config_dir, where.system_config_file, where.system_keys_dir,
                  where.trust_roots_dir]
    if config is not None:
        candidates += [entry.path for entry in config.keys.values()]
    loose = []
    for path in candidates:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & (stat.S_IWOTH | stat.S_IWGRP):
            loose.append(f"{path} ({stat.filemode(mode)})")
    system = where.system_config_file
    if system.exists() and system.stat().st_uid != 0 and os.geteuid() == 0:
        loose.append(f"{system} is not owned by root")
    if loose:
        return [Check("file permissions", False, "; ".join(loose),
                      "chmod go-w on these; the system files should belong to root",
                      ExitCode.CONFIG)]
    return [Check("file permissions", True, "trust files are writable by their owner only")]


def run_checks(where: Paths) -> list[Check]:
    docker_checks, engine = _docker_checks()
    trust_checks, config = _trust_checks(where)
    return [*docker_checks, *doctor_checks(engine=engine), *trust_checks,
            _trust_root_check(where),
            *_permission_checks(where, config)]

