"""X (formerly Twitter): OAuth 2.0 with PKCE, chunked video upload, posts, metrics (API v2)."""

from integrations.x.platform import SCOPES, XConfig, XPlatform
from integrations.x.text import weighted_length

__all__ = ["SCOPES", "XConfig", "XPlatform", "weighted_length"]
