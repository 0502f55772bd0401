"""The adversarial tests use the end-to-end world (a real dockerd and registry)."""

from tests.e2e.conftest import *  # noqa: F403
