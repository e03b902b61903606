"""Our Discord buttons: each kind carries everything its click needs in its custom id
(matched by the kind's template), so a click is handled by whichever replica receives
it, even after a restart, and no view is kept in memory.

A kind declares its template, its look and state (`__init__`), how its state is read
back from a matched id (`from_match`), and which `ButtonClicks` method a click goes to
(`clicked`); `_Button` does the rest for all of them.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, Self, runtime_checkable

import discord

CUSTOM_ID_LIMIT = 100  # Discord rejects longer component custom ids
_APPROVAL_ID = re.compile(
    r"so:ap(?:@(?P<guild>[0-9]{1,20}))?:(?P<verdict>[yn]):(?P<requester>[0-9]{1,20})"
    r":(?P<action>[A-Za-z0-9_.-]{1,64})"
)
_SHARE_ID = re.compile(r"so:sh:(?P<share>[A-Za-z0-9_-]{1,32})")
# A button standing for a chat command (`agent.layout.Action`): the command rides in the id.
# `@<guild>` names the server the command is about when the button is in a DM (a note
# sent privately): a DM is a workspace of its own, and the post belongs to the server.
_RUN_ID = re.compile(r"so:run(?:@(?P<guild>[0-9]{1,20}))?:(?P<command>[A-Za-z0-9 #:._-]{1,70})")


@runtime_checkable
class ButtonClicks(Protocol):
    """The Discord client our buttons hand their clicks to (bot.discord.client)."""

    async def on_approval_click(
        self,
        interaction: discord.Interaction,
        *,
        requester_user_id: str,
        action_id: str,
        approved: bool,
        guild: str | None = None,
    ) -> None: ...

    async def on_share_click(self, interaction: discord.Interaction, *, share_id: str) -> None: ...

    async def on_command_click(
        self, interaction: discord.Interaction, *, command: str, guild: str | None
    ) -> None: ...


class _Button(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    # Any id of ours; never registered itself: each kind names its own template.
    template=re.compile(r"so:.*"),
):
    """A button of one kind: built from its custom id, its click handed to the client."""

    def __init__(
        self,
        custom_id: str,
        *,
        label: str,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
    ) -> None:
        # Whether Discord takes the id and a click on it comes back to this kind.
        self.fits = len(custom_id) <= CUSTOM_ID_LIMIT and bool(
            type(self).__discord_ui_compiled_template__.fullmatch(custom_id)
        )
        super().__init__(
            discord.ui.Button(label=label[:80], style=style, custom_id=custom_id, row=row)
        )

    @classmethod
    def from_match(cls, match: re.Match[str]) -> Self:
        """The button a custom id matching the kind's template stands for."""
        raise NotImplementedError

    async def clicked(self, client: ButtonClicks, interaction: discord.Interaction) -> None:
        raise NotImplementedError

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls.from_match(match)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if not isinstance(client, ButtonClicks):
            raise TypeError("our buttons need a client that takes their clicks")
        await self.clicked(client, interaction)


class ApprovalButton(_Button, template=_APPROVAL_ID):
    """An approve or reject button; its custom id names the pending action and the
    requester (and the server, when the buttons are in a DM). An id that cannot fit is
    refused: an approval nobody can answer must not be posted."""

    def __init__(
        self, requester_user_id: str, action_id: str, *, approve: bool, guild: str | None = None
    ) -> None:
        self.requester_user_id = requester_user_id
        self.action_id = action_id
        self.approve = approve
        self.guild = guild
        where = f"@{guild}" if guild else ""
        super().__init__(
            f"so:ap{where}:{'y' if approve else 'n'}:{requester_user_id}:{action_id}",
            label="Approve" if approve else "Reject",
            style=discord.ButtonStyle.success if approve else discord.ButtonStyle.secondary,
        )
        if not self.fits:
            raise ValueError("approval ids must be short tokens and requesters Discord user ids")

    @classmethod
    def from_match(cls, match: re.Match[str]) -> Self:
        return cls(
            match["requester"],
            match["action"],
            approve=match["verdict"] == "y",
            guild=match["guild"],
        )

    async def clicked(self, client: ButtonClicks, interaction: discord.Interaction) -> None:
        await client.on_approval_click(
            interaction,
            requester_user_id=self.requester_user_id,
            action_id=self.action_id,
            approved=self.approve,
            guild=self.guild,
        )


class ShareButton(_Button, template=_SHARE_ID):
    """ "Share to channel" on a private answer; its custom id names the kept answer."""

    def __init__(self, share_id: str) -> None:
        self.share_id = share_id
        super().__init__(f"so:sh:{share_id}", label="Share to channel")

    @classmethod
    def from_match(cls, match: re.Match[str]) -> Self:
        return cls(match["share"])

    async def clicked(self, client: ButtonClicks, interaction: discord.Interaction) -> None:
        await client.on_share_click(interaction, share_id=self.share_id)


class RunButton(_Button, template=_RUN_ID):
    """A button standing for a chat command ("cancel 12"): its custom id is the command,
    which the client runs as whoever clicks (the core decides what they may do). One
    whose command is too long for an id does not `fit` and is left to be typed (the plain
    text shows it)."""

    def __init__(
        self, command: str, *, label: str = "Run", row: int | None = None, guild: str | None = None
    ) -> None:
        self.command = command
        self.guild = guild
        where = f"@{guild}" if guild else ""
        super().__init__(f"so:run{where}:{command}", label=label, row=row)

    @classmethod
    def from_match(cls, match: re.Match[str]) -> Self:
        return cls(match["command"], guild=match["guild"])

    async def clicked(self, client: ButtonClicks, interaction: discord.Interaction) -> None:
        await client.on_command_click(interaction, command=self.command, guild=self.guild)
