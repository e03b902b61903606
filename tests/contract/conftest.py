# Fixtures for the contract suite: chat identities and the session cipher.
from tests.chat_fixtures import cipher, new_identity  # noqa: F401
