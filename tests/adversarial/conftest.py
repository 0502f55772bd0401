from tests.e2e.conftest import *  # noqa: F403
