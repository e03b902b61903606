# Fixtures shared across the agent and bot tests: fake Google wiring, chat identities, fake Slack.
from tests.bot.slack.conftest import fake_slack  # noqa: F401
from tests.chat_fixtures import link, make_deps, new_identity  # noqa: F401
from tests.fakes.google_env import *  # noqa: F403
