"""Caption suggestions checked against the platform's declared caption rules."""

from __future__ import annotations

from agent import captions
from agent.actions.base import ActionError, Outcome, normalize_platform
from agent.context import ActionContext
from agent.layout import Field, Layout, Section


async def options(
    ctx: ActionContext, *, platform: str, description: str, tone: str = "neutral", variants: int = 3
) -> tuple[str, list[captions.Caption]]:
    """Caption variants that fit the platform's rules, with the platform's display name."""
    name = normalize_platform(ctx, platform)
    assert name is not None
    caps = ctx.deps.platforms.capabilities(name)
    if tone not in captions.TONES:
        raise ActionError(f"Tone must be one of: {', '.join(captions.TONES)}.")
    try:
        found = captions.generate(
            description, rules=caps.caption_rules, tone=tone, variants=variants
        )
    except ValueError as exc:
        raise ActionError(f"Caption: {exc}.") from None
    return caps.display_name, list(found)


async def suggest(
    ctx: ActionContext, *, platform: str, description: str, tone: str = "neutral", variants: int = 3
) -> Outcome:
    display, found = await options(
        ctx, platform=platform, description=description, tone=tone, variants=variants
    )
    sections = tuple(
        Section(
            f"{i}.",
            (Field("Title", c.title),) if c.title is not None else (),
            body=c.body,
            inline=False,
        )
        for i, c in enumerate(found, 1)
    )
    return Outcome.laid_out(Layout(f"{display} caption ideas ({tone})", sections))
