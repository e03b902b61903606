# Fixtures shared across the agent and bot tests: fake Google wiring and chat identities.
from tests.chat_fixtures import link, make_deps, new_identity  # noqa: F401
from tests.fakes.google_env import *  # noqa: F403
