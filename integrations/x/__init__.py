"""X (formerly Twitter): OAuth 2.0 with PKCE, chunked video upload, posts, metrics (API v2)."""

from integrations.x.platform import SCOPES, XConfig, XPlatform
from integrations.x.text import compose_text, weighted_length

__all__ = ["SCOPES", "XConfig", "XPlatform", "compose_text", "weighted_length"]
