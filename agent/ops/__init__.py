"""PlatformOps: platform work on behalf of one chat user, split by job.

`Linking` (OAuth links), `Uploads` (durable, resumable uploads) and `Metrics`
(normalized figures) share `OpsBase` (accounts, tokens, budgets); `PlatformOps`
is all three, and implements `agent.ports.PlatformOps`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from agent.context import AgentConfig
from agent.credentials import Credentials
from agent.limits import Budgets
from agent.media_links import MediaLinks
from agent.ops.linking import LinkedResult, Linking
from agent.ops.metrics import Metrics
from agent.ops.uploads import PostCheckpoint, Uploads
from agent.sources import SourceOpeners
from integrations.base import ByteSource
from integrations.registry import Platforms
from storage.crypto import TokenCipher

__all__ = [
    "LinkedResult",
    "PlatformOps",
    "PostCheckpoint",
]


class PlatformOps(Linking, Uploads, Metrics):
    """Linking, uploads and metrics over every configured platform."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        platforms: Platforms,
        budgets: Budgets,
        config: AgentConfig,
        credentials: Credentials | None = None,
        source_opener: Callable[[Mapping[str, Any]], ByteSource] | None = None,
        recent_posts_limit: int = 10,
        media_links: MediaLinks | None = None,
    ) -> None:
        super().__init__(
            pool=pool,
            cipher=cipher,
            platforms=platforms,
            budgets=budgets,
            config=config,
            credentials=credentials,
        )
        self.source_opener = source_opener or SourceOpeners().open
        self.recent_posts_limit = recent_posts_limit
        self.media_links = media_links or MediaLinks(
            cipher=cipher,
            public_base_url=config.public_base_url,
            ttl_seconds=config.media_url_ttl_seconds,
        )
