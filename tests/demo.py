"""``make demo``: safe-docker against a real docker engine and registry, start to finish.

On a fresh machine this starts a private dockerd and a loopback registry (tests.world),
makes a key, pushes and signs an image, then shows:

1. a verified run: the tag is resolved, the signature checked, docker runs ``repo@sha256:…``;
2. the exact docker argv safe-docker hands over (dry run);
3. the tag re-pointed to an unsigned image: refused with exit 77 and one line saying why,
   and nothing pulled.

Everything lives in temporary directories (safe-docker's config, cache and state too) and
the world is stopped at the end. Exits non-zero if any step does not behave as shown.

Run: ``python -m tests.demo``
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.world import World, ensure_installed

PASSWORD = "demo-password"  # noqa: S105 - a throwaway key for the demo
REFUSED = 77


class DemoFailed(Exception):
    pass


def safe_docker_command() -> str:
    script = Path(sys.executable).with_name("safe-docker")
    if script.exists():
        return str(script)
    found = shutil.which("safe-docker")
    if found is None:
        raise DemoFailed("safe-docker is not installed; run `make dev`")
    return found


class Demo:
    def __init__(self, world: World, home: Path) -> None:
        self.world = world
        self.home = home
        self.command = safe_docker_command()
        self.env = world.docker_env()
        self.env.update(
            SAFE_DOCKER_CONFIG_DIR=str(home / "config"),
            SAFE_DOCKER_CACHE_DIR=str(home / "cache"),
            SAFE_DOCKER_STATE_DIR=str(home / "state"),
            SAFE_DOCKER_SYSTEM_CONFIG_DIR=str(home / "system"),
            SAFE_DOCKER_REAL_DOCKER=world.docker,
            COSIGN_PASSWORD=PASSWORD,
        )

    @staticmethod
    def heading(text: str) -> None:
        print(f"\n=== {text}", flush=True)

    def safe_docker(self, *args: str, expect: int = 0,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        shown = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        print(f"$ {shown + ' ' if shown else ''}safe-docker {shlex.join(args)}", flush=True)
        proc = subprocess.run(
            [self.command, *args], env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=300,
        )
        # docker's progress (stderr) came first; the container's output (stdout) last.
        for line in (proc.stderr + proc.stdout).splitlines():
            print(f"    {line}")
        print(f"    [exit {proc.returncode}]", flush=True)
        if proc.returncode != expect:
            raise DemoFailed(f"safe-docker {args[0]} exited {proc.returncode}, expected {expect}")
        return proc


def run_demo(world: World, home: Path) -> None:
    demo = Demo(world, home)
    keys = home / "keys"
    keys.mkdir()
    repo = f"{world.registry}/demo/hello"

    demo.heading("A key pair (cosign format); its public half becomes trusted as 'demo'")
    demo.safe_docker("keys", "generate", "demo", "--dir", str(keys))

    demo.heading(f"An image pushed to the local registry as {repo}:v1")
    image = world.push_image("demo/hello", "v1")
    print(f"    pushed {image.tagged}\n    digest {image.digest}")

    demo.heading("Policy: images under demo/ must be signed by 'demo'; then sign the image")
    demo.safe_docker("policy", "add", f"{world.registry}/demo/*", "--key", "demo")
    demo.safe_docker("sign", "--key", str(keys / "demo.key"), image.tagged)

    demo.heading("A verified run: docker is handed the digest that was verified")
    run = demo.safe_docker("run", "--rm", "--network", "none", image.tagged,
                           "echo", "hello from a verified container")
    if run.stdout.strip() != "hello from a verified container":
        raise DemoFailed("the container did not print its greeting")

    demo.heading("What safe-docker hands to docker (dry run)")
    dry = demo.safe_docker("run", "--rm", "--network", "none", image.tagged, "echo", "hi",
                           env={"SAFE_DOCKER_DRY_RUN": "1"})
    argv = json.loads(dry.stdout.splitlines()[-1])  # the exec'd run comes last
    if image.pinned not in argv or image.tagged in argv:
        raise DemoFailed(f"the dry-run argv does not pin {image.pinned}: {argv}")
    world.remove_images(image.pinned, image.tagged)

    demo.heading("Tampering: the tag v1 now points at a different, unsigned image")
    swapped = world.push_image("demo/hello", "v1")
    print(f"    re-pushed {swapped.tagged}\n    digest {swapped.digest} (not signed)")
    refused = demo.safe_docker("run", "--rm", "--network", "none", image.tagged,
                               "echo", "this must not run", expect=REFUSED)
    if "this must not run" in refused.stdout or len(refused.stderr.strip().splitlines()) != 1:
        raise DemoFailed("the refusal was not one line, or the container ran")
    if world.has_image(swapped.pinned) or world.has_image(swapped.tagged):
        raise DemoFailed("the unsigned image was pulled")
    print("    nothing was pulled: docker never saw the unsigned image")

    demo.heading("Done: the signed image ran pinned by digest; the re-pointed tag was refused")


def main() -> int:
    ensure_installed()
    # Unix socket paths are limited to ~108 bytes: keep the world's root short.
    root = Path(tempfile.mkdtemp(prefix="sdd-", dir="/tmp"))
    home = Path(tempfile.mkdtemp(prefix="safe-docker-demo-"))
    world = World(root=root)
    try:
        print("Starting a private docker engine and a registry on 127.0.0.1 …", flush=True)
        world.start()
        print(f"    DOCKER_HOST={world.docker_host}  registry={world.registry}")
        run_demo(world, home)
    except DemoFailed as e:
        print(f"\ndemo FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        world.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
