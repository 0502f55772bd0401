"""NVIDIA GPUs: what the host has, what the daemon can do, what to add to ``docker run``.

Parts, each usable alone:

* **Detection** (:mod:`.detect`): NVML through nvidia-ml-py, imported inside the function
  so that the shim stays light. No library, no kernel driver, or any NVML error gives a
  ``HostGpu`` with ``present=False`` and the reason, never an exception.
* **Daemon** (:mod:`.daemon`): the nvidia runtime, the default runtime and CDI devices
  from ``docker info``, asked through the engine the user's command names.
* **Flags** (:mod:`.flags`): the docker options to insert before IMAGE, decided from the
  mode (auto/always/never, ``SAFE_DOCKER_GPU`` overriding the policy), the device
  selection (``SAFE_DOCKER_GPUS``), the user's own options, the image and the daemon.
* **Requirements** (:mod:`.requirements`): the image's ``NVIDIA_REQUIRE_*`` variables
  evaluated as libnvidia-container's ``nvidia-container-cli configure --require`` does, so
  that an image the NVIDIA runtime hook would refuse is refused here first.
* **Report** (:mod:`.report`): ``safe-docker gpu --json`` and the doctor checks.

Submodules are imported by name; this package imports nothing.
"""
