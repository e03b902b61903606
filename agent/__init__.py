"""What the bot can do: actions, tools, the agent, the command grammar."""
