"""Instagram (Instagram API with Instagram Login): OAuth, insights, Reels publishing."""

from integrations.instagram.captions import CAPTION_RULES, check_caption, compose_caption
from integrations.instagram.platform import DEFAULT_SCOPES, InstagramPlatform, PublishingQuota

__all__ = [
    "CAPTION_RULES",
    "DEFAULT_SCOPES",
    "InstagramPlatform",
    "PublishingQuota",
    "check_caption",
    "compose_caption",
]
