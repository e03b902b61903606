"""Instagram (Instagram API with Instagram Login): OAuth, insights, Reels publishing."""

from integrations.instagram.platform import DEFAULT_SCOPES, InstagramPlatform

__all__ = [
    "DEFAULT_SCOPES",
    "InstagramPlatform",
]
