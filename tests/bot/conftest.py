from tests.fakes.google_env import *  # noqa: F403
