from __future__ import annotations

from typing import Any

import httpx
import pytest

from integrations.youtube import YouTubePlatform
from tests.fakes.google import FakeGoogle, youtube_config
from tests.fakes.google_env import google, http  # noqa: F401


@pytest.fixture
def make_platform(google: FakeGoogle, http: httpx.AsyncClient) -> Any:
    def build(**overrides: Any) -> YouTubePlatform:
        platform = YouTubePlatform(
            config=youtube_config(google.base, google, **overrides), http=http
        )
        # Tests never wait for real backoff.
        platform.uploader._backoff_base = 0.001
        return platform

    return build
