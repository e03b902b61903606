"""Caption suggestions checked against the platform's limits."""

from __future__ import annotations

from agent import captions
from agent.actions.base import ActionError, Outcome, normalize_platform, platform_title
from agent.context import ActionContext
from integrations.base import CaptionRules


def rules_for(ctx: ActionContext, platform: str) -> CaptionRules:
    """The platform integration's own rules when configured, else the documented limits."""
    impl = ctx.deps.platforms.get(platform)
    if impl is not None:
        return impl.caption_rules
    if platform not in captions.DEFAULT_RULES:
        raise ActionError(f"I can't write captions for {platform_title(platform)} yet.")
    return captions.DEFAULT_RULES[platform]


async def suggest(
    ctx: ActionContext, *, platform: str, description: str, tone: str = "neutral", variants: int = 3
) -> Outcome:
    name = normalize_platform(platform)
    assert name is not None
    rules = rules_for(ctx, name)
    if tone not in captions.TONES:
        raise ActionError(f"Tone must be one of: {', '.join(captions.TONES)}.")
    try:
        options = captions.generate(name, description, rules=rules, tone=tone, variants=variants)
    except ValueError as exc:
        raise ActionError(f"Caption: {exc}.") from None
    lines = [f"{platform_title(name)} caption ideas ({tone}):"]
    for i, c in enumerate(options, 1):
        lines.append(f"{i}.")
        if c.title is not None:
            lines.append(f"   Title: {c.title}")
        lines.append("   " + c.body.replace("\n", "\n   "))
    return Outcome("\n".join(lines))
