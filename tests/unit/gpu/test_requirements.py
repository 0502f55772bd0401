"""NVIDIA_REQUIRE_* evaluated as libnvidia-container's `configure --require` does.

The requirement strings below are the real NVIDIA_REQUIRE_CUDA values of the
nvidia/cuda base images (gitlab.com/nvidia/container-images/cuda, dist/<ver>/ubuntu2204/
base/Dockerfile). Their space-separated terms are alternatives: `cuda>=12.4` OR a
brand/driver branch whose cuda-compat forward compatibility covers the image.
"""

from __future__ import annotations

import pytest

from safedocker.errors import GpuRequirementUnmet
from safedocker.gpu.detect import GpuDevice, HostGpu
from safedocker.gpu.requirements import (
    Condition,
    MalformedRequirement,
    check_requirements,
    image_requirements,
    parse_requirement,
    requirements_disabled,
)


def _branches(brands: str, *drivers: int) -> str:
    return " ".join(
        f"brand={b},driver>={d},driver<{d + 1}" for d in drivers for b in brands.split()
    )


_ALL_BRANDS = "tesla unknown nvidia nvidiartx geforce geforcertx quadro quadrortx titan titanrtx"
CUDA_11_8_0 = "cuda>=11.8 brand=tesla,driver>=450,driver<451 " + _branches(
    _ALL_BRANDS, 470, 510, 515
)
CUDA_12_1_1 = "cuda>=12.1 brand=tesla,driver>=450,driver<451 " + _branches(
    _ALL_BRANDS, 470, 510, 515, 525
)
CUDA_12_4_1 = "cuda>=12.4 " + _branches(_ALL_BRANDS, 470, 525, 535)


def test_the_reconstructed_strings_are_the_published_ones() -> None:
    # Spot checks against the published Dockerfiles' text.
    assert CUDA_11_8_0.startswith(
        "cuda>=11.8 brand=tesla,driver>=450,driver<451 brand=tesla,driver>=470,driver<471 "
        "brand=unknown,driver>=470,driver<471 brand=nvidia,driver>=470,driver<471"
    )
    assert CUDA_11_8_0.endswith(
        "brand=titan,driver>=515,driver<516 brand=titanrtx,driver>=515,driver<516"
    )
    assert CUDA_12_4_1.startswith(
        "cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471"
    )
    assert CUDA_12_4_1.endswith("brand=titanrtx,driver>=535,driver<536")
    assert len(parse_requirement(CUDA_12_4_1).terms) == 1 + 10 * 3
    assert len(parse_requirement(CUDA_12_1_1).terms) == 1 + 1 + 10 * 4


def gpu(brand: str = "Tesla", cc: tuple[int, int] | None = (8, 0), index: int = 0) -> GpuDevice:
    return GpuDevice(
        index=index,
        name="NVIDIA Test GPU",
        uuid=f"GPU-00000000-0000-0000-0000-{index:012x}",
        memory_total=80 << 30,
        brand=brand,
        brand_id=None,
        compute_capability=cc,
        mig_current=False,
        mig_pending=False,
    )


def host(driver: str, cuda: tuple[int, int], *devices: GpuDevice) -> HostGpu:
    return HostGpu(True, driver, cuda, devices or (gpu(),))


# Drivers and the CUDA version each reports (nvidia-smi's "CUDA Version").
H450_TESLA = host("450.80.02", (11, 0))
H450_GEFORCE = host("450.80.02", (11, 0), gpu("GeForce", (7, 5)))
H470_TESLA = host("470.223.02", (11, 4))
H470_H100 = host("470.223.02", (11, 4), gpu("Unknown", (9, 0)))  # NVML brand NVIDIA → Unknown
H520_CUDA_11_8 = host("520.61.05", (11, 8))
H530_CUDA_12_1 = host("530.30.02", (12, 1))
H535_CUDA_12_2 = host("535.104.05", (12, 2))
H535_GEFORCE = host("535.104.05", (12, 2), gpu("GeForce", (8, 6)))
H545_CUDA_12_3 = host("545.23.08", (12, 3))
H550_CUDA_12_4 = host("550.54.15", (12, 4))


@pytest.mark.parametrize(
    ("requirement", "host_gpu", "satisfied"),
    [
        # nvidia/cuda:11.8.0-base
        (CUDA_11_8_0, H520_CUDA_11_8, True),
        (CUDA_11_8_0, H535_CUDA_12_2, True),
        (CUDA_11_8_0, H550_CUDA_12_4, True),
        (CUDA_11_8_0, H450_TESLA, True),  # datacenter forward compatibility branch
        (CUDA_11_8_0, H450_GEFORCE, False),  # 450 branch is Tesla only
        (CUDA_11_8_0, H470_H100, True),  # brand=unknown,driver>=470,driver<471
        (CUDA_11_8_0, host("495.29.05", (11, 5)), False),  # 495 is no listed branch
        # nvidia/cuda:12.1.1-base
        (CUDA_12_1_1, H530_CUDA_12_1, True),
        (CUDA_12_1_1, H535_CUDA_12_2, True),
        (CUDA_12_1_1, H520_CUDA_11_8, False),
        (CUDA_12_1_1, host("525.147.05", (12, 0)), True),  # 525 branch
        (CUDA_12_1_1, host("525.147.05", (12, 0), gpu("GeForce")), True),
        # nvidia/cuda:12.4.1-base
        (CUDA_12_4_1, H550_CUDA_12_4, True),
        (CUDA_12_4_1, H535_CUDA_12_2, True),  # 535 branch: cuda-compat covers it
        (CUDA_12_4_1, H535_GEFORCE, True),  # brand=geforce,driver>=535,driver<536
        (CUDA_12_4_1, H530_CUDA_12_1, False),
        (CUDA_12_4_1, H545_CUDA_12_3, False),  # no 545 branch, CUDA 12.3 < 12.4
        (CUDA_12_4_1, H520_CUDA_11_8, False),
        (CUDA_12_4_1, H470_TESLA, True),
        # grammar and comparison
        ("cuda>=12.4", H550_CUDA_12_4, True),
        ("cuda>=12.4.0", H550_CUDA_12_4, True),  # missing components are zero
        ("cuda=12.4.0.0", H550_CUDA_12_4, True),
        ("cuda>12.4", H550_CUDA_12_4, False),
        ("cuda<12.10", H550_CUDA_12_4, True),  # numeric, not lexical
        ("cuda!=12.4", H550_CUDA_12_4, False),
        ("cuda!12.4", H550_CUDA_12_4, False),  # dsl.c reads a lone '!' as '!='
        ("cuda>=12..4", H550_CUDA_12_4, True),  # repeated dots are one separator
        ("CUDA>=12.4", H550_CUDA_12_4, True),  # keys are case-insensitive
        ("driver>=535.104.5", H535_CUDA_12_2, True),  # 05 == 5
        ("driver<535.104.06", H535_CUDA_12_2, True),
        ("driver>=535.104.05.1", H535_CUDA_12_2, False),
        ("brand=TESLA", H535_CUDA_12_2, True),  # brands are case-insensitive
        ("brand!=tesla", H535_GEFORCE, True),
        ("brand=nvidia", H470_H100, False),  # libnvidia-container calls it Unknown
        ("arch>=8.0", H535_CUDA_12_2, True),
        ("arch>=8.6", H535_CUDA_12_2, False),
        ("arch=8.6", H535_GEFORCE, True),
        ("cuda>=99 brand=tesla", H535_CUDA_12_2, True),  # space: OR
        ("cuda>=99,brand=tesla", H535_CUDA_12_2, False),  # comma: AND
        ("cuda>=12.2,brand=tesla,arch>=8.0", H535_CUDA_12_2, True),
        ("", H535_CUDA_12_2, True),  # empty: no constraint
        ("   ", H535_CUDA_12_2, True),
        (",,", H535_CUDA_12_2, True),
        ("cuda>=99 ,", H535_CUDA_12_2, False),  # an empty term satisfies nothing
        ("cuda>=12.2  brand=geforce", H535_CUDA_12_2, True),  # doubled space
    ],
)
def test_requirement_table(requirement: str, host_gpu: HostGpu, satisfied: bool) -> None:
    req = parse_requirement(requirement)
    assert all(req.satisfied(host_gpu, d) for d in host_gpu.devices) is satisfied
    config = {"config": {"Env": [f"NVIDIA_REQUIRE_CUDA={requirement}"]}}
    if satisfied:
        check_requirements(config, host_gpu)
    else:
        with pytest.raises(GpuRequirementUnmet) as info:
            check_requirements(config, host_gpu)
        assert info.value.exit_code == 125


def test_parse_gives_or_of_ands() -> None:
    req = parse_requirement("cuda>=12.4 brand=tesla,driver>=470,driver<471", source="X")
    assert req.source == "X"
    assert req.terms == (
        (Condition("cuda", ">=", "12.4"),),
        (
            Condition("brand", "=", "tesla"),
            Condition("driver", ">=", "470"),
            Condition("driver", "<", "471"),
        ),
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("cuda=>12.4", "unknown operator '=>'"),
        ("cuda==12.4", "unknown operator '=='"),
        ("cuda>=", "no value"),
        (">=12.4", "no key"),
        ("cuda", "no operator"),
        ("foo>=1", "unknown key 'foo'"),
        ("cuda>=12.4a", "not a version"),
        ("cuda>=.5", "not a version"),
        ("cuda>=-1", "not a version"),
        ("cuda>=99999999999999999999999", "not a version"),  # overflows uintmax_t
        ("cuda>=" + "1" * 5000, "not a version"),  # past Python's int() digit limit
        ("brand>=tesla", "only with = or !="),
        ("cuda>=12.4\tbrand=tesla", "not a version"),  # only spaces separate terms
        # Fail closed even where libnvidia-container would stop before the bad factor.
        ("cuda>=1 garbage", "no operator"),
    ],
)
def test_malformed_requirements_fail_closed(text: str, why: str) -> None:
    with pytest.raises(MalformedRequirement) as info:
        parse_requirement(text, source="NVIDIA_REQUIRE_CUDA")
    err = info.value
    assert err.exit_code == 125
    assert why in err.why
    assert "malformed GPU requirement" in err.line()
    assert "NVIDIA_DISABLE_REQUIRE=1" in err.hint
    with pytest.raises(MalformedRequirement):
        check_requirements({"config": {"Env": [f"NVIDIA_REQUIRE_CUDA={text}"]}}, H550_CUDA_12_4)


def test_unmet_cuda_says_what_the_driver_supports_and_what_to_do() -> None:
    config = {"config": {"Env": [f"NVIDIA_REQUIRE_CUDA={CUDA_12_4_1}", "CUDA_VERSION=12.4.1"]}}
    with pytest.raises(GpuRequirementUnmet) as info:
        check_requirements(config, H530_CUDA_12_1)
    line = info.value.line()
    assert line.startswith("safe-docker: image needs CUDA >= 12.4 — ")
    assert "this host's driver 530.30.02 supports CUDA 12.1" in line
    assert "none of the image's 30 driver/brand alternatives match" in line
    assert "(hint: update the NVIDIA driver" in line
    assert "-cuda12.1 tag" in line


def test_unmet_arch_names_the_gpu() -> None:
    config = {"config": {"Env": ["NVIDIA_REQUIRE_ARCH=arch>=9.0"]}}
    with pytest.raises(GpuRequirementUnmet) as info:
        check_requirements(config, H535_CUDA_12_2)
    line = info.value.line()
    assert "image needs compute capability >= 9.0 (NVIDIA_REQUIRE_ARCH)" in line
    assert "GPU 0 (NVIDIA Test GPU) is brand Tesla, compute capability 8.0" in line


def test_all_require_variables_are_anded() -> None:
    env = ["NVIDIA_REQUIRE_CUDA=cuda>=12.0", "NVIDIA_REQUIRE_ARCH=arch>=9.0"]
    check_requirements({"config": {"Env": env[:1]}}, H535_CUDA_12_2)
    with pytest.raises(GpuRequirementUnmet, match="compute capability"):
        check_requirements({"config": {"Env": env}}, H535_CUDA_12_2)


def test_jetpack_requirement_is_not_evaluated() -> None:
    config = {
        "config": {
            "Env": ["NVIDIA_REQUIRE_JETPACK=csv-mounts=all", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"]
        }
    }
    assert [r.source for r in image_requirements(config)] == ["NVIDIA_REQUIRE_CUDA"]
    check_requirements(config, H535_CUDA_12_2)


def test_every_visible_gpu_must_satisfy_the_requirement() -> None:
    mixed = host("550.54.15", (12, 4), gpu(cc=(9, 0), index=0), gpu(cc=(7, 0), index=1))
    config = {"config": {"Env": ["NVIDIA_REQUIRE_ARCH=arch>=8.0"]}}
    with pytest.raises(GpuRequirementUnmet, match="GPU 1"):
        check_requirements(config, mixed)
    check_requirements(config, mixed, devices=["0"])
    check_requirements(config, mixed, devices=[mixed.devices[0].uuid])
    with pytest.raises(GpuRequirementUnmet):
        check_requirements(config, mixed, devices=["1"])


def test_unknown_host_values_are_assumed_ok_as_libnvidia_container_does() -> None:
    unknown = HostGpu(True, "550.54.15", None, (gpu(cc=None),))
    check_requirements({"config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=99 ", "X=1"]}}, unknown)
    check_requirements({"config": {"Env": ["NVIDIA_REQUIRE_ARCH=arch>=99"]}}, unknown)


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True"])
def test_disable_require_true_values(value: str) -> None:
    assert requirements_disabled({"NVIDIA_DISABLE_REQUIRE": value})
    config = {
        "config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=99", f"NVIDIA_DISABLE_REQUIRE={value}"]}
    }
    assert image_requirements(config) == ()
    check_requirements(config, H535_CUDA_12_2)


@pytest.mark.parametrize("value", ["", "0", "false", "yes", "on", "2", "enabled"])
def test_disable_require_other_values_do_not_disable(value: str) -> None:
    # Go's strconv.ParseBool: anything else is an error, read as "not disabled".
    config = {
        "config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=99", f"NVIDIA_DISABLE_REQUIRE={value}"]}
    }
    with pytest.raises(GpuRequirementUnmet):
        check_requirements(config, H535_CUDA_12_2)


def test_run_env_overrides_the_image_env() -> None:
    config = {"config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=99"]}}
    check_requirements(config, H535_CUDA_12_2, run_env={"NVIDIA_DISABLE_REQUIRE": "1"})
    check_requirements(config, H535_CUDA_12_2, run_env={"NVIDIA_REQUIRE_CUDA": "cuda>=12.0"})


@pytest.mark.parametrize(
    ("env", "synthesized"),
    [
        (["CUDA_VERSION=10.0.130"], "cuda>=10.0"),
        (["CUDA_VERSION=9.0.176"], "cuda>=9.0"),
        (["CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA="], "cuda>=12.4"),  # empty counts as unset
        (["CUDA_VERSION=12"], "cuda>=12.0"),
        (["CUDA_VERSION=v11.2.0-rc1"], "cuda>=11.2"),
    ],
)
def test_legacy_cuda_version_synthesizes_a_requirement(env: list[str], synthesized: str) -> None:
    reqs = image_requirements({"config": {"Env": env}})
    legacy = [r for r in reqs if r.source == "CUDA_VERSION"]
    assert [r.text for r in legacy] == [synthesized]


def test_legacy_synthesis_is_enforced() -> None:
    config = {"Config": {"Env": ["CUDA_VERSION=12.4.1"]}}  # docker inspect's shape
    check_requirements(config, H550_CUDA_12_4)
    with pytest.raises(GpuRequirementUnmet, match="image needs CUDA >= 12.4"):
        check_requirements(config, H535_CUDA_12_2)


def test_no_synthesis_when_require_cuda_is_set() -> None:
    config = {"config": {"Env": ["CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"]}}
    assert [r.text for r in image_requirements(config)] == ["cuda>=12.0"]


@pytest.mark.parametrize("version", ["banana", "\u0661\u0662.\u0664"])  # Arabic-Indic 12.4
def test_invalid_legacy_cuda_version_fails_closed(version: str) -> None:
    with pytest.raises(MalformedRequirement, match="invalid CUDA_VERSION"):
        image_requirements({"config": {"Env": [f"CUDA_VERSION={version}"]}})


def test_a_legacy_cuda_version_of_thousands_of_digits_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedRequirement, match="not a version"):
        image_requirements({"config": {"Env": ["CUDA_VERSION=" + "1" * 5000 + ".2"]}})
    zeros = "0" * 5000  # leading zeros are the same number, as strtoul reads them
    assert [r.text for r in image_requirements(
        {"config": {"Env": [f"CUDA_VERSION={zeros}12.{zeros}4"]}})] == ["cuda>=12.4"]
    config = {"config": {"Env": [f"NVIDIA_REQUIRE_CUDA=cuda>={zeros}12.4"]}}
    check_requirements(config, H550_CUDA_12_4)
    with pytest.raises(GpuRequirementUnmet, match="CUDA >= "):
        check_requirements(config, H535_CUDA_12_2)


@pytest.mark.parametrize("env", [5, True, {"CUDA_VERSION": "12.4"}, "CUDA_VERSION=12.4"])
def test_an_env_that_is_not_a_list_of_strings_has_no_requirements(env: object) -> None:
    assert image_requirements({"config": {"Env": env}}) == ()


def test_no_gpu_on_the_host_skips_the_check() -> None:
    config = {"config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=99"]}}
    check_requirements(config, HostGpu(False, reason="no NVIDIA driver library"))


def test_non_cuda_image_has_no_requirements() -> None:
    assert image_requirements({"config": {"Env": ["PATH=/usr/bin"]}}) == ()
    assert image_requirements(None) == ()
    check_requirements({"config": {}}, H535_CUDA_12_2)
