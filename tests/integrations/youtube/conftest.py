from __future__ import annotations

from typing import Any

import httpx
import pytest

from integrations.youtube import YouTubePlatform
from tests.fakes.google import FakeGoogle, youtube_config
from tests.fakes.google_env import google, guards, http, make_youtube  # noqa: F401


@pytest.fixture
def make_platform(google: FakeGoogle, http: httpx.AsyncClient) -> Any:
    def build(**overrides: Any) -> YouTubePlatform:
        return make_youtube(youtube_config(google.base, google, **overrides), http)

    return build
