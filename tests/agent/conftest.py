from tests.chat_fixtures import cipher, link, make_deps, new_identity  # noqa: F401
