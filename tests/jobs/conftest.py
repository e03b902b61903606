# Job-engine fault tests: the fake Google and wired YouTube fixtures, and chat identities.
from tests.chat_fixtures import link, make_deps, new_identity  # noqa: F401
from tests.fakes.google_env import *  # noqa: F403
