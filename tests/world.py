"""A real docker world on loopback: one dockerd on a private socket and one registry.

Used by the end-to-end tests (a pytest session fixture), by ``make demo`` and by the
benchmarks. The recipe is DESIGN.md's: Debian's docker.io and docker-registry, dockerd
with ``--bridge=none --iptables=false`` so that no container gets a routable address,
the registry on 127.0.0.1 with an ephemeral port, and images made offline with
``docker import`` from busybox-static.

Run as a script: ``python tests/world.py start DIR`` prints shell ``export`` lines;
``python tests/world.py stop DIR`` stops what ``start`` began.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# The engine, registry and image material, plus the real peers some tests compare with:
# shells for the shell integration, strace to prove `docker ps` starts no Python, skopeo
# for policy.json parsing, docker-compose 1.x for compose.
APT_PACKAGES = ("docker.io", "docker-registry", "busybox-static", "zsh", "fish", "strace",
                "skopeo", "docker-compose")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
BUSYBOX_APPLETS = ("sh", "echo", "cat", "ls", "env", "sleep", "true", "false", "id", "printenv")


def ensure_installed() -> None:
    """Install the engine, the registry and busybox-static when missing (root only)."""
    missing = [
        tool
        for tool in ("dockerd", "docker-registry", "docker", "zsh", "fish", "strace", "skopeo",
                     "docker-compose")
        if shutil.which(tool) is None
    ]
    if not any(Path(p).exists() for p in BUSYBOX_CANDIDATES):
        missing.append("busybox")
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"missing {', '.join(missing)}; install as root: apt-get install -y "
            + " ".join(APT_PACKAGES)
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Image:
    """An image pushed to the world's registry."""

    repo: str  # "127.0.0.1:PORT/name"
    tag: str
    digest: str  # "sha256:…" as the registry reports it

    @property
    def tagged(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def pinned(self) -> str:
        return f"{self.repo}@{self.digest}"


@dataclass
class World:
    root: Path
    docker: str = field(default_factory=lambda: shutil.which("docker") or "docker")
    registry_port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def socket_path(self) -> Path:
        return self.root / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    def docker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFE_DOCKER_")}
        env["DOCKER_HOST"] = self.docker_host
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")
        env.pop("DOCKER_CONTEXT", None)
        return env

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> World:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "docker-config").mkdir(exist_ok=True)
        self._start_dockerd()
        self.start_registry()
        self._state_file().write_text(
            json.dumps({"registry_port": self.registry_port, "docker_host": self.docker_host})
        )
        return self

    def _state_file(self) -> Path:
        return self.root / "world.json"

    def _start_dockerd(self) -> None:
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            [
                "dockerd",
                "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"),
                "-H", self.docker_host,
                "--pidfile", str(self.root / "docker.pid"),
                "--bridge=none", "--iptables=false", "--ip-masq=false",
                "--userland-proxy=false",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self._procs.append(proc)

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"dockerd exited; see {self.root / 'dockerd.log'}")
            if not self.socket_path.exists():
                return False
            return self.run_docker("version", check=False).returncode == 0

        _wait_for(ready, "dockerd")

    def start_registry(self, port: int | None = None) -> None:
        self.registry_port = port or self.registry_port or free_port()
        config = self.root / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.root / 'registry'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.registry_port}\n"
        )
        log = open(self.root / "registry.log", "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self._procs.append(proc)
        (self.root / "registry.pid").write_text(str(proc.pid))

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"registry exited; see {self.root / 'registry.log'}")
            try:
                with urllib.request.urlopen(f"http://{self.registry}/v2/", timeout=1):  # noqa: S310
                    return True
            except OSError:
                return False

        _wait_for(ready, "registry")

    def stop_registry(self) -> None:
        pid_file = self.root / "registry.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for proc in list(self._procs):
            if proc.pid == pid:
                proc.wait(timeout=20)
                self._procs.remove(proc)
        pid_file.unlink()

    def stop(self) -> None:
        self.stop_registry()
        pid_file = self.root / "docker.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        self._procs.clear()

    # --- docker and images --------------------------------------------------------------

    def run_docker(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.docker, *args],
            env=self.docker_env(),
            capture_output=True,
            check=check,
            input=input,
            timeout=300,
        )

    def make_local_image(self, name: str, *, env: dict[str, str] | None = None,
                         labels: dict[str, str] | None = None) -> str:
        """``docker import`` a busybox root file system with a unique marker file."""
        busybox = next(p for p in BUSYBOX_CANDIDATES if Path(p).exists())
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            rootfs = Path(tmp) / "rootfs"
            (rootfs / "bin").mkdir(parents=True)
            shutil.copy2(busybox, rootfs / "bin" / "busybox")
            for applet in BUSYBOX_APPLETS:
                (rootfs / "bin" / applet).symlink_to("busybox")
            (rootfs / "marker").write_text(secrets.token_hex(16))
            archive = Path(tmp) / "rootfs.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(rootfs, arcname=".")
            changes: list[str] = []
            for key, value in (env or {}).items():
                changes += ["-c", f"ENV {key}={value}"]
            for key, value in (labels or {}).items():
                changes += ["-c", f"LABEL {key}={value}"]
            self.run_docker("import", *changes, str(archive), name)
        return name

    def push_image(self, name: str, tag: str = "v1", *, env: dict[str, str] | None = None,
                   labels: dict[str, str] | None = None, registry: str | None = None
                   ) -> Image:
        """Make a fresh image and push it as ``REGISTRY/name:tag`` (``registry``: another
        one than the world's, ``host:port``)."""
        repo = f"{registry or self.registry}/{name}"
        self.make_local_image(f"{repo}:{tag}", env=env, labels=labels)
        out = self.run_docker("push", f"{repo}:{tag}").stdout.decode()
        digest = next(
            word for line in out.splitlines() if "digest:" in line
            for word in line.split() if word.startswith("sha256:")
        )
        self.run_docker("rmi", f"{repo}:{tag}")
        return Image(repo=repo, tag=tag, digest=digest)

    def has_image(self, ref: str) -> bool:
        return self.run_docker("image", "inspect", ref, check=False).returncode == 0

    def remove_images(self, *refs: str) -> None:
        for ref in refs:
            self.run_docker("rmi", "-f", ref, check=False)


def attach(root: Path) -> World:
    """A World for a directory that ``start`` already set up (used by scripts)."""
    state = json.loads((root / "world.json").read_text())
    return World(root=root, registry_port=int(state["registry_port"]))


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: world.py start|stop DIR", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    if argv[0] == "start":
        ensure_installed()
        world = World(root=root).start()
        print(f"export DOCKER_HOST={world.docker_host}")
        print(f"export WORLD_REGISTRY={world.registry}")
        return 0
    world = attach(root)
    world.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
