"""The digest laid out for each front-end: Slack Block Kit and a Discord message of embeds.

Both stay within the platforms' limits by construction (the limits tables of
`bot.slack.blocks` and `bot.discord.embeds`, which the answers' renderers use too): long
parts are cut saying how much was left out, and accounts past what fits are counted,
not dropped silently. Text from platforms (post titles) is escaped, never markup of ours.
"""

from __future__ import annotations

from typing import Any

from discord.utils import escape_markdown

from agent.digest_content import (
    SCHEDULED_HEADING,
    AccountSection,
    Digest,
    TopPost,
    label_of,
    number,
    value_text,
)
from bot.core.text import fit
from bot.discord.embeds import LIMITS as DISCORD
from bot.discord.embeds import embed_size
from bot.slack.blocks import LIMITS as SLACK
from bot.slack.blocks import escape

CHART_NAME = "digest-views.png"

DISCORD_COLOUR = 0x0072B2  # the chart's first colour


def web_url(url: str | None) -> str | None:
    """A platform-given link or image only if it is plain http(s): Slack and Discord
    refuse the whole message over one bad URL."""
    if url and url.startswith(("https://", "http://")) and not any(c in url for c in " <>|"):
        return url
    return None


def as_of(digest: Digest) -> str:
    days = sorted({a.day for a in digest.accounts})
    figures = f" · figures for {days[-1]:%b %-d}" if days else ""
    return f"As of {digest.as_of:%Y-%m-%d %H:%M} UTC{figures}"


def _change_lines(section: AccountSection) -> list[tuple[str, str]]:
    """(label, 'value arrow') per metric."""
    out = []
    for change in section.changes:
        arrow = change.arrow()
        value = value_text(change.metric, change.value)
        out.append((label_of(change.metric), value + (f"  {arrow}" if arrow else "")))
    return out


def _post_title(post: TopPost) -> str:
    return post.title or f"Post {post.post_id}"


# --- Slack ------------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": fit(text, SLACK["text"])}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def slack_blocks(
    digest: Digest, *, chart_attached: bool, thumbnails: bool = True
) -> list[dict[str, Any]]:
    """Header, a section of fields per account, top posts with thumbnails, flags,
    insights, and an "as of" context line. The chart travels as the message's file."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": fit(digest.title, SLACK["header_text"])},
        }
    ]
    if digest.notice:
        blocks.append({"type": "section", "text": _mrkdwn(digest.notice)})
    if digest.first:
        blocks.append(_context("First digest: nothing to compare with yet."))
    tail = _slack_tail(digest, chart_attached=chart_attached, thumbnails=thumbnails)
    room = SLACK["blocks"] - len(blocks) - len(tail) - 1  # one for "and N more"
    shown = digest.accounts[: max(room, 0)]
    for section in shown:
        fields = [_mrkdwn(f"*{label}*\n{value}") for label, value in _change_lines(section)]
        fields = [{**f, "text": fit(f["text"], SLACK["field_text"])} for f in fields]
        blocks.append(
            {
                "type": "section",
                "text": _mrkdwn(f"*{escape(section.label)}*  ·  {section.comparison()}"),
                **({"fields": fields[: SLACK["fields"]]} if fields else {}),
            }
        )
    if len(shown) < len(digest.accounts):
        blocks.append(_context(f"…and {len(digest.accounts) - len(shown)} more accounts."))
    return blocks + tail


def _slack_tail(digest: Digest, *, chart_attached: bool, thumbnails: bool) -> list[dict[str, Any]]:
    tail: list[dict[str, Any]] = []
    if digest.top_posts:
        tail.append({"type": "section", "text": _mrkdwn("*Top posts*")})
    for i, post in enumerate(digest.top_posts, 1):
        name = escape(_post_title(post))
        url = web_url(post.url)
        linked = f"<{escape(url)}|{name}>" if url else name
        block: dict[str, Any] = {
            "type": "section",
            "text": _mrkdwn(
                f"*{i}. {linked}*\n{post.platform_title} @{escape(post.handle)}"
                f" · {number(post.views)} views"
            ),
        }
        thumbnail = web_url(post.thumbnail_url)
        if thumbnails and thumbnail:
            block["accessory"] = {
                "type": "image",
                "image_url": thumbnail,
                "alt_text": fit(_post_title(post), SLACK["alt_text"]),
            }
        tail.append(block)
    flags = [f"{p}: unavailable ({escape(reason)})" for p, reason in digest.unavailable]
    flags += [
        f":warning: {r.platform_title} @{escape(r.handle)} needs relinking "
        "(its owner has been told)"
        for r in digest.relinks
    ]
    if flags:
        tail.append({"type": "section", "text": _mrkdwn("\n".join(flags))})
    if digest.scheduled:
        listed = "\n".join(escape(line) for line in digest.scheduled)
        tail.append({"type": "section", "text": _mrkdwn(f"*{SCHEDULED_HEADING}*\n{listed}")})
    if digest.insights:
        points = "\n".join(f"• {escape(p)}" for p in digest.insights)
        tail.append({"type": "section", "text": _mrkdwn(f"*Insights*\n{points}")})
    footer = as_of(digest) + (" · chart: views per day, last 14 days" if chart_attached else "")
    tail.append(_context(footer))
    return tail


# --- Discord ----------------------------------------------------------------------------


def discord_message(digest: Digest, *, chart_attached: bool) -> dict[str, Any]:
    """The message body: a main embed (fields per account, the chart as its image,
    "as of" footer) and one embed per top post with its thumbnail."""
    description = []
    if digest.notice:
        description.append(digest.notice)
    if digest.first:
        description.append("First digest: nothing to compare with yet.")
    if digest.insights:
        description.append("**Insights**\n" + "\n".join(f"• {p}" for p in digest.insights))
    flags = [f"{p}: unavailable ({reason})" for p, reason in digest.unavailable]
    flags += [
        f"⚠️ {r.platform_title} @{escape_markdown(r.handle)} needs relinking "
        "(its owner has been told)"
        for r in digest.relinks
    ]
    tail = [{"name": "Heads-up", "value": fit("\n".join(flags), DISCORD["field_value"])}]
    tail = tail if flags else []
    if digest.scheduled:
        listed = "\n".join(escape_markdown(line) for line in digest.scheduled)
        tail.append({"name": SCHEDULED_HEADING, "value": fit(listed, DISCORD["field_value"])})
    accounts = [
        {
            "name": fit(f"{s.label} · {s.comparison()}", DISCORD["field_name"]),
            "value": fit(
                "\n".join(f"**{label}** {value}" for label, value in _change_lines(s))
                or "no figures",
                DISCORD["field_value"],
            ),
        }
        for s in digest.accounts
    ]
    fields: list[dict[str, Any]] = []
    main: dict[str, Any] = {
        "title": fit(digest.title, DISCORD["title"]),
        "color": DISCORD_COLOUR,
        "fields": fields,
        "footer": {"text": fit(as_of(digest), DISCORD["footer"])},
    }
    if description:
        main["description"] = fit("\n\n".join(description), DISCORD["description"])
    if chart_attached:
        main["image"] = {"url": f"attachment://{CHART_NAME}"}
    embeds = [main]
    for i, post in enumerate(digest.top_posts[: DISCORD["embeds"] - 1], 1):
        embed: dict[str, Any] = {
            "title": fit(f"Top post {i}: {_post_title(post)}", DISCORD["title"]),
            "description": f"{post.platform_title} @{escape_markdown(post.handle)}"
            f" · {number(post.views)} views",
            "color": DISCORD_COLOUR,
        }
        if url := web_url(post.url):
            embed["url"] = url
        if thumbnail := web_url(post.thumbnail_url):
            embed["thumbnail"] = {"url": thumbnail}
        embeds.append(embed)
    # As many accounts as fit in 25 fields and 6,000 characters (top posts give way
    # first); the accounts left out are counted, and the heads-up always stays.
    shown = min(len(accounts), DISCORD["fields"] - len(tail))
    while True:
        hidden = len(accounts) - shown
        if hidden and shown + 1 + len(tail) > DISCORD["fields"]:
            shown -= 1
            continue
        more = [{"name": "More accounts", "value": f"…and {hidden}"}] if hidden else []
        fields[:] = accounts[:shown] + more + tail
        if sum(embed_size(e) for e in embeds) <= DISCORD["total"]:
            break
        if len(embeds) > 1:
            embeds.pop()
        elif shown:
            shown -= 1
        else:
            break
    return {"embeds": embeds, "allowed_mentions": {"parse": []}}
