"""GPU hand-off with the real dockerd and registry and a fake NVIDIA driver (fake NVML).

The image is a signed "CUDA image" (its config sets NVIDIA_REQUIRE_CUDA), verified against
the real registry; SAFE_DOCKER_DRY_RUN shows the argv that would be exec'd.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.fakenvml import build_fake_nvml, compiler, fake_nvml_env

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import Image, World

PASSWORD = "pw"  # noqa: S105 - a throwaway test key
CUDA_124 = "cuda>=12.4"


@pytest.fixture(scope="module")
def nvml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert compiler() is not None, "gcc is needed to build the fake NVML library"
    return build_fake_nvml(tmp_path_factory.mktemp("fakenvml")).parent


@pytest.fixture(scope="module")
def cuda_image(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Image, Path]:
    home = tmp_path_factory.mktemp("gpu-signer")
    image = world.push_image("gpu/cuda-app", "12.4",
                             env={"NVIDIA_REQUIRE_CUDA": CUDA_124, "CUDA_VERSION": "12.4.1"})
    return image, home


@pytest.fixture
def gpu_sd(safe_docker: SafeDocker, cuda_image: tuple[Image, Path], world: World) -> SafeDocker:
    image, home = cuda_image
    env = {"COSIGN_PASSWORD": PASSWORD}
    keydir = safe_docker.home / "keys"
    keydir.mkdir()
    assert safe_docker("keys", "generate", "gpu", "--dir", str(keydir), env=env).exit_code == 0
    assert safe_docker("policy", "add", f"{world.registry}/gpu/*", "--key", "gpu").exit_code == 0
    signed = safe_docker("sign", "--key", str(keydir / "gpu.key"), image.tagged, env=env)
    assert signed.exit_code == 0, signed.stderr
    return safe_docker


def _dry_run(sd: SafeDocker, nvml_dir: Path | None, *args: str, **nvml: object) -> tuple[
        int, list[list[str]], str]:
    env = fake_nvml_env(nvml_dir, **nvml)
    env.update(sd.env(SAFE_DOCKER_DRY_RUN="1"))
    if nvml_dir is None:
        env.pop("LD_LIBRARY_PATH", None)
    result = sd(*args, env=env)
    argvs = result.dry_run_argvs
    if args[0] in ("run", "create"):
        argvs = argvs[-1:]  # the exec'd command; a missing image is pulled and tagged first
    return result.exit_code, argvs, result.stderr


@pytest.mark.parametrize(("gpus", "extra", "expected"), [
    (1, {}, ["--gpus", "all"]),
    (8, {}, ["--gpus", "all"]),
    (8, {"SAFE_DOCKER_GPUS": "0,3"}, ["--gpus", '"device=0,3"']),
])
def test_gpu_host_gets_gpu_flags_before_the_pinned_image(
    gpu_sd: SafeDocker, nvml_dir: Path, cuda_image: tuple[Image, Path], world: World,
    gpus: int, extra: dict[str, str], expected: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    image, _ = cuda_image
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    code, argvs, stderr = _dry_run(gpu_sd, nvml_dir, "run", "--rm", "--network", "none",
                                   image.tagged, "nvidia-smi", gpus=gpus, cuda=12040)
    assert code == 0, stderr
    (argv,) = argvs
    pinned = f"{image.repo}@{image.digest}"
    assert argv[1:] == ["run", "--rm", "--network", "none", *expected, pinned, "nvidia-smi"]


def test_host_without_gpu_gets_no_flags(gpu_sd: SafeDocker, cuda_image: tuple[Image, Path],
                                        tmp_path: Path) -> None:
    image, _ = cuda_image
    code, argvs, stderr = _dry_run(gpu_sd, tmp_path, "run", "--rm", image.tagged, "true")
    assert code == 0, stderr
    assert argvs[0][1:] == ["run", "--rm", f"{image.repo}@{image.digest}", "true"]


def test_driver_not_loaded_is_no_gpu(gpu_sd: SafeDocker, nvml_dir: Path,
                                     cuda_image: tuple[Image, Path]) -> None:
    image, _ = cuda_image
    code, argvs, _ = _dry_run(gpu_sd, nvml_dir, "create", image.tagged,
                              fail_init="driver_not_loaded")
    assert code == 0
    assert "--gpus" not in argvs[0]


@pytest.mark.parametrize(("cuda", "driver"), [(12020, "535.104.05"), (11080, "520.61.05")])
def test_incompatible_host_is_refused_with_125_before_any_pull(
    gpu_sd: SafeDocker, nvml_dir: Path, cuda_image: tuple[Image, Path], world: World,
    cuda: int, driver: str,
) -> None:
    image, _ = cuda_image
    env = fake_nvml_env(nvml_dir, gpus=1, cuda=cuda, driver=driver)
    env.update(gpu_sd.env())
    result = gpu_sd("run", "--rm", "--network", "none", image.tagged, "true", env=env)
    assert result.exit_code == 125
    assert "CUDA >= 12.4" in result.stderr and driver in result.stderr
    assert result.stderr.count("\n") == 1
    assert not world.has_image(image.tagged)
    assert not world.has_image(f"{image.repo}@{image.digest}")


def test_mig_host_still_gets_flags(gpu_sd: SafeDocker, nvml_dir: Path,
                                   cuda_image: tuple[Image, Path]) -> None:
    image, _ = cuda_image
    code, argvs, stderr = _dry_run(gpu_sd, nvml_dir, "run", image.tagged, gpus=1, mig=1,
                                   cuda=12040)
    assert code == 0, stderr
    assert "--gpus" in argvs[0]


@pytest.mark.parametrize("user_flags", [
    ["--gpus", "device=1"],
    ["--gpus=all"],
    ["--runtime=nvidia"],
    ["-e", "NVIDIA_VISIBLE_DEVICES=2"],
    ["--device", "nvidia.com/gpu=0"],
])
def test_user_given_gpu_flags_are_never_duplicated(
    gpu_sd: SafeDocker, nvml_dir: Path, cuda_image: tuple[Image, Path], user_flags: list[str],
) -> None:
    image, _ = cuda_image
    code, argvs, stderr = _dry_run(gpu_sd, nvml_dir, "run", *user_flags, image.tagged, "x",
                                   gpus=2, cuda=12040)
    assert code == 0, stderr
    argv = argvs[0]
    assert argv[1:] == ["run", *user_flags, f"{image.repo}@{image.digest}", "x"]


def test_gpu_never_and_pull_get_no_flags(gpu_sd: SafeDocker, nvml_dir: Path,
                                         cuda_image: tuple[Image, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    image, _ = cuda_image
    code, argvs, _ = _dry_run(gpu_sd, nvml_dir, "pull", image.tagged, gpus=1, cuda=12040)
    assert code == 0
    assert all("--gpus" not in argv for argv in argvs)
    monkeypatch.setenv("SAFE_DOCKER_GPU", "never")
    code, argvs, _ = _dry_run(gpu_sd, nvml_dir, "run", image.tagged, gpus=1, cuda=12040)
    assert code == 0 and "--gpus" not in argvs[0]


def test_gpu_command_reports_the_fake_host(gpu_sd: SafeDocker, nvml_dir: Path) -> None:
    import json

    env = fake_nvml_env(nvml_dir, gpus=8, cuda=12040, mig=1)
    env.update(gpu_sd.env())
    result = gpu_sd("gpu", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["host"]["present"] is True
    assert len(report["host"]["devices"]) == 8
