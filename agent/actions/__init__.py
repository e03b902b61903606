"""What the bot can do: actions, tools, the agent, the command grammar.

Importing this package registers every approval executor (unlink, upload,
digest), so an approval can run whatever was proposed.
"""

from agent.actions import accounts, digest, upload  # noqa: F401 - registers executors
