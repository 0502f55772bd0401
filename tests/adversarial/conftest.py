"""The end-to-end fixtures (one real dockerd and registry per session), for attack tests."""

from tests.e2e.conftest import *  # noqa: F403
