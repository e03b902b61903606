"""YouTube: Google OAuth (PKCE), resumable uploads, Data API statistics, Analytics reports."""

from integrations.youtube.platform import SCOPES, YouTubeConfig, YouTubePlatform
from integrations.youtube.upload import ResumableUploader

__all__ = ["SCOPES", "ResumableUploader", "YouTubeConfig", "YouTubePlatform"]
