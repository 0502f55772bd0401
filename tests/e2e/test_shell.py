"""shell-init in real bash, zsh and fish: pull/run/create go through safe-docker (verified,
pinned, unsigned refused); every other docker command runs the real docker with no Python
started, which strace proves; completions are defined and docker's own stays docker's."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.route import Route, classify
from tests.e2e.conftest import Result, SafeDocker, safe_docker_command

if TYPE_CHECKING:
    from tests.world import Image, World

PASSWORD = "pw"  # noqa: S105 - test keys only
REFUSED = 77
SHELLS = ("bash", "zsh", "fish")
APT = {"bash": "bash", "zsh": "zsh", "fish": "fish", "strace": "strace"}
DOCKER_BASH_COMPLETION = Path("/usr/share/bash-completion/completions/docker")


@pytest.fixture(scope="session")
def tools() -> None:
    """bash, zsh, fish and strace: installed with apt-get when missing (root only)."""
    missing = [package for tool, package in APT.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        pytest.skip(f"not root and missing {', '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=600)


@dataclass
class Shell:
    """One shell with safe-docker's integration loaded, run against the world."""

    name: str
    init: Path  # what `safe-docker shell-init NAME` printed
    home: SafeDocker

    def env(self, **extra: str) -> dict[str, str]:
        env = self.home.env(COSIGN_PASSWORD=PASSWORD, **extra)
        # safe-docker (and nothing else of the test's Python) first on PATH.
        env["PATH"] = os.pathsep.join([str(Path(safe_docker_command()[0]).parent),
                                       "/usr/local/bin", "/usr/bin", "/bin"])
        return env

    def argv(self, script: str) -> list[str]:
        source = f"source {shlex.quote(str(self.init))}\n{script}"
        if self.name == "bash":
            return ["bash", "--norc", "--noprofile", "-c", source]
        if self.name == "zsh":
            return ["zsh", "-f", "-c", source]
        return ["fish", "--no-config", "-c", source]

    def __call__(self, script: str, *, strace: Path | None = None, **env: str) -> Result:
        argv = self.argv(script)
        if strace is not None:
            argv = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(strace), *argv]
        proc = subprocess.run(argv, env=self.env(**env), capture_output=True, text=True,
                              timeout=300)
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def home(world: World, tmp_path_factory: pytest.TempPathFactory) -> SafeDocker:
    return SafeDocker(world=world, home=tmp_path_factory.mktemp("sd-shell"))


@pytest.fixture(scope="module")
def signed(world: World, home: SafeDocker, tmp_path_factory: pytest.TempPathFactory) -> Image:
    keys = tmp_path_factory.mktemp("keys")
    env = {"COSIGN_PASSWORD": PASSWORD}
    image = world.push_image("shell/signed")
    for args in (("keys", "generate", "demo", "--dir", str(keys)),
                 ("policy", "add", f"{world.registry}/shell/*", "--key", "demo"),
                 ("sign", "--key", str(keys / "demo.key"), image.tagged)):
        result = home(*args, env=env)
        assert result.exit_code == 0, (args, result.stderr)
    return image


@pytest.fixture(scope="module", params=SHELLS)
def shell(request: pytest.FixtureRequest, tools: None, home: SafeDocker,
          tmp_path_factory: pytest.TempPathFactory) -> Shell:
    name = request.param
    printed = home("shell-init", name)
    assert printed.exit_code == 0, printed.stderr
    init = tmp_path_factory.mktemp(f"init-{name}") / f"safe-docker.{name}"
    init.write_text(printed.stdout)
    return Shell(name, init, home)


def execs(trace: Path) -> list[str]:
    """The programs strace saw started (successful execve calls)."""
    return [line.split('"')[1] for line in trace.read_text().splitlines()
            if "execve(" in line and '"' in line and "= -1" not in line]


# --- verified, pinned, refused ------------------------------------------------------------


def test_docker_run_is_verified_and_pinned(shell: Shell, signed: Image, world: World) -> None:
    dry = shell(f"docker run --rm --network none {signed.tagged} echo hi", SAFE_DOCKER_DRY_RUN="1")
    assert dry.exit_code == 0, dry.stderr
    *before, run = dry.dry_run_argvs
    assert signed.pinned in run and signed.tagged not in run, dry.stdout
    assert all(argv[1] in ("pull", "tag") for argv in before), dry.stdout  # the tag left

    # Global flags first (-H, -l) and the long form `container run`: still safe-docker's.
    dry = shell(f"docker -H {world.docker_host} -l warn container run --rm {signed.tagged} true",
                SAFE_DOCKER_DRY_RUN="1")
    assert dry.exit_code == 0, dry.stderr
    assert any(signed.pinned in argv for argv in dry.dry_run_argvs), dry.stdout

    ran = shell(f"docker run --rm --network none {signed.tagged} echo hi")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.strip() == "hi"


def test_an_unsigned_image_is_refused(shell: Shell, world: World, signed: Image) -> None:
    unsigned = world.push_image(f"shell/unsigned-{shell.name}")
    result = shell(f"docker run --rm --network none {unsigned.tagged} echo never")
    assert result.exit_code == REFUSED, (result.stdout, result.stderr)
    assert "never" not in result.stdout
    assert result.stderr.startswith("safe-docker:")
    assert not world.has_image(unsigned.pinned)


def _tag_left_not_dangling(world: World, signed: Image, result: Result) -> None:
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "hi\n"  # the pull's progress went to stderr
    inspect = ("image", "inspect", "--format", "{{.Id}}")
    tagged = world.run_docker(*inspect, signed.tagged).stdout.decode().strip()
    assert tagged == world.run_docker(*inspect, signed.pinned).stdout.decode().strip()
    dangling = world.run_docker("images", "-q", "--no-trunc", "--filter", "dangling=true")
    assert tagged not in dangling.stdout.decode().split()


def test_docker_run_leaves_the_tag_and_no_dangling_image(
        shell: Shell, world: World, signed: Image) -> None:
    world.remove_images(signed.tagged, signed.pinned)
    result = shell(f"docker run --rm --network none {signed.tagged} echo hi")
    _tag_left_not_dangling(world, signed, result)


def test_an_aliased_docker_run_leaves_the_tag_and_no_dangling_image(
        home: SafeDocker, world: World, signed: Image) -> None:
    world.remove_images(signed.tagged, signed.pinned)
    script = ("shopt -s expand_aliases\nalias docker=safe-docker\n"
              f"docker run --rm --network none {signed.tagged} echo hi\n")
    env = Shell("bash", Path(os.devnull), home).env()
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    _tag_left_not_dangling(world, signed, Result(proc.returncode, proc.stdout, proc.stderr))


# --- passthrough starts no Python -----------------------------------------------------------


def test_other_commands_run_the_real_docker_without_python(
    shell: Shell, world: World, signed: Image, tmp_path: Path
) -> None:
    passthrough = tmp_path / "passthrough.trace"
    result = shell(
        f"docker ps >/dev/null\n"
        f"docker -H unix://{world.socket_path} images >/dev/null\n"
        f"docker --config {world.root / 'docker-config'} -D image ls -q >/dev/null\n"
        f"docker container ls -a >/dev/null",
        strace=passthrough,
    )
    assert result.exit_code == 0, result.stderr
    started = execs(passthrough)
    assert started.count(world.docker) == 4, started
    assert not [p for p in started if "python" in p or "safe-docker" in p], started

    # The same tracing does see safe-docker start for `docker run` (the proof is not blind).
    intercepted = tmp_path / "intercepted.trace"
    result = shell(f"docker run --rm {signed.tagged} true", strace=intercepted,
                   SAFE_DOCKER_DRY_RUN="1")
    assert result.exit_code == 0, result.stderr
    assert any(p.endswith("/safe-docker") for p in execs(intercepted)), execs(intercepted)


# Command lines the shell function must hand to safe-docker whenever the shim would act on
# them, and a few it must give straight to docker.
ROUTING_CASES = [
    "run img", "create img", "pull img", "container run img", "container create img",
    "image pull img", "-H unix:///x.sock run img", "--host=unix:///x.sock pull img",
    "-Hunix:///x.sock run img", "--context ctx run img", "-c ctx create img",
    "--config /tmp/c run img", "-l debug run img", "--log-level=debug pull img", "-D run img",
    "--debug pull img", "--tls --tlsverify --tlscacert ca --tlscert c --tlskey k run img",
    "--tlscacert=ca run img", "-D -H unix:///x.sock -l info container run img",
    "--help run img", "-v run img", "container --help=false run img", "container -- run img",
    "-- run img", "-DH unix:///x.sock run img", "image --help pull img", "verify img",
    "keys list", "policy list", "compose up", "shell-init bash", "airgap load -i f.tar",
    "build .", "service create img", "service update --image img s", "plugin install p",
    "buildx create", "buildx bake", "scout cves img", "builder prune",
    # passthrough
    "ps", "images", "-H unix:///x.sock ps", "--context ctx image ls", "container ls",
    "image ls", "version", "--version", "", "-c run ps", "exec -it c sh",
    "service ls", "plugin ls", "buildx ls", "container", "image", "help run", "-l run images",
    "save img", "load -i f.tar", "load", "-D load -i f.tar", "image load", "image save img",
]
PASSTHROUGH = {"ps", "images", "-H unix:///x.sock ps", "--context ctx image ls",
               "container ls", "image ls", "version", "", "-c run ps", "exec -it c sh",
               "service ls", "plugin ls", "buildx ls", "container", "image", "help run",
               "-l run images", "save img", "load -i f.tar", "load", "-D load -i f.tar",
               "image load", "image save img"}


def test_the_function_routes_everything_the_shim_intercepts(shell: Shell) -> None:
    if shell.name == "fish":
        lines = [f"if __safe_docker_route {case}; echo 1; else; echo 0; end"
                 for case in ROUTING_CASES]
    else:
        lines = [f"if __safe_docker_route {case}; then echo 1; else echo 0; fi"
                 for case in ROUTING_CASES]
    result = shell("\n".join(lines))
    assert result.exit_code == 0, result.stderr
    routed = dict(zip(ROUTING_CASES, (line == "1" for line in result.stdout.split()),
                      strict=True))
    for case, to_safe_docker in routed.items():
        # (Route.HELP, safe-docker's own help for a bare `docker`, is docker's to answer.)
        if classify(case.split()) in (Route.INTERCEPT, Route.OWN):
            assert to_safe_docker, f"{shell.name}: `docker {case}` bypasses safe-docker"
        if case in PASSTHROUGH:
            assert not to_safe_docker, f"{shell.name}: `docker {case}` should go to docker"


# --- completion -----------------------------------------------------------------------------


def test_safe_docker_completes_its_own_commands(shell: Shell) -> None:
    if shell.name == "bash":
        script = ("complete -p safe-docker\n"
                  "COMP_WORDS=(safe-docker ''); COMP_CWORD=1; _safe_docker; echo ${COMPREPLY[@]}\n"
                  "COMP_WORDS=(safe-docker keys ''); COMP_CWORD=2; _safe_docker; "
                  "echo ${COMPREPLY[@]}")
    elif shell.name == "zsh":
        script = "print -r -- $(whence -w _safe_docker)"
    else:
        script = "complete -C'safe-docker '\necho --\ncomplete -C'safe-docker keys '"
    result = shell(script)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    if shell.name == "zsh":
        assert "_safe_docker: function" in out
        compdef = shell("autoload -Uz compinit && compinit -u -D\n"
                        f"source {shlex.quote(str(shell.init))}\n"
                        "print -r -- ${_comps[safe-docker]} ${_comps[docker]-unset}")
        assert compdef.stdout.split()[0] == "_safe_docker", compdef
        return
    assert "verify" in out and "trust-root" in out
    assert "generate" in out.split("--")[-1] if shell.name == "fish" else "generate" in out
    if shell.name == "bash":
        assert "complete -o default -F _safe_docker safe-docker" in out


@pytest.mark.skipif(not DOCKER_BASH_COMPLETION.exists(), reason="no docker bash completion")
def test_bash_keeps_dockers_own_completion(tools: None, home: SafeDocker, tmp_path: Path) -> None:
    init = tmp_path / "init.bash"
    init.write_text(home("shell-init", "bash").stdout)
    script = (f"source {DOCKER_BASH_COMPLETION}\nsource {init}\n"
              "complete -p docker; type -t docker")
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "-F _docker docker" in proc.stdout
    assert proc.stdout.split()[-1] == "function"
