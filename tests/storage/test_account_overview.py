"""`accounts.overview`: a person's accounts and whether anything of theirs waits, read in
one query, agreeing with the lists it stands in for."""

from __future__ import annotations

import secrets

import asyncpg

from storage import accounts, approvals, pending_links
from storage.crypto import TokenCipher
from tests.chat_fixtures import cipher, link, new_identity  # noqa: F401

TRANSFER = "link_transfer"
CODE = bytes(32)  # a link waiting for its code (not for an owner)


async def _agrees(pool: asyncpg.Pool, ws: int, person: int) -> accounts.Overview:
    """The overview, checked against the three lists it stands in for."""
    found = await accounts.overview(
        pool, workspace_id=ws, chat_user_id=person, approval_action=TRANSFER
    )
    owned = await accounts.list_for_owner(pool, workspace_id=ws, owner_id=person)
    links = await pending_links.list_for_requester(pool, workspace_id=ws, requester_id=person)
    asked = await approvals.list_waiting(
        pool, workspace_id=ws, chat_user_id=person, action=TRANSFER
    )
    assert found.accounts == owned
    assert (found.links_waiting, found.approvals_waiting) == (bool(links), bool(asked))
    return found


async def test_the_overview_agrees_with_the_lists_it_stands_in_for(
    pool: asyncpg.Pool, cipher: TokenCipher, new_identity, link
) -> None:
    space = secrets.token_hex(4)
    me, other = await new_identity(workspace=space), await new_identity(workspace=space)
    ws, person = me.workspace_id, me.chat_user_id
    found = await _agrees(pool, ws, person)
    assert found == accounts.Overview([], False, False)

    for platform, handle in (("youtube", "b"), ("youtube", "a"), ("instagram", "c")):
        await link(me, platform, handle)
    found = await _agrees(pool, ws, person)
    assert [(a.platform, a.handle) for a in found.accounts] == [
        ("instagram", "c"),
        ("youtube", "a"),
        ("youtube", "b"),
    ]
    assert not (found.links_waiting or found.approvals_waiting)

    # Another kind of approval, another person's request, a lapsed link: nothing waits.
    made = {"args": {"account": "yt1"}, "summary": "s", "ttl_seconds": 600}
    await approvals.create(pool, workspace_id=ws, chat_user_id=person, action="unlink", **made)
    await approvals.create(
        pool, workspace_id=ws, chat_user_id=other.chat_user_id, action=TRANSFER, **made
    )
    waiting = pending_links.NewPendingLink(
        workspace_id=ws,
        requester_id=person,
        platform="youtube",
        external_id="UC-x",
        handle="x",
        display_name="X",
        scopes=[],
        token={"access_token": "t"},
        token_expires_at=None,
        reply_to={},
    )
    lapsed = await pending_links.create(
        pool, cipher=cipher, link=waiting, ttl_seconds=600, code_hash=CODE
    )
    await pool.execute(
        "UPDATE pending_links SET expires_at = now() - interval '1 second' WHERE id = $1",
        lapsed.id,
    )
    assert not (await _agrees(pool, ws, person)).links_waiting

    await pending_links.create(pool, cipher=cipher, link=waiting, ttl_seconds=600, code_hash=CODE)
    await approvals.create(pool, workspace_id=ws, chat_user_id=person, action=TRANSFER, **made)
    found = await _agrees(pool, ws, person)
    assert found.links_waiting and found.approvals_waiting and len(found.accounts) == 3
