"""YouTube post metrics: batched reads vs one call per video, against the loopback fake.

Run from the repo root: `python bench/youtube_metrics.py`. Needs no database or Redis.
Prints HTTP calls and wall time for `YouTubePlatform.post_metrics` over 10, 100 and
1,000 videos (`videos.list` takes 50 ids a call, so ⌈n/50⌉ calls and as many quota
units) and for the anchor, one `videos.list?id=<one>` per video, measured in the same
run against the same server.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import median_run
from bench.results import figure, record
from bot import event_loop
from integrations.base import TokenSet
from integrations.http import Guards, make_client
from integrations.youtube.plugin import PLUGIN as YOUTUBE
from tests.fakes.google import FakeGoogle, youtube_settings
from tests.fakes.platforms import build
from tests.fakes.server import serve_asgi

SIZES = (10, 100, 1000)
ROUNDS = 3
PER_CALL = 50


async def main() -> int:
    google = FakeGoogle()
    channel = google.add_channel("bench")
    ids = [google.add_video(channel, title=f"video {i}", views=10 * i) for i in range(max(SIZES))]
    rows = []
    async with (
        serve_asgi(google) as base,
        make_client(platform="youtube", guards=Guards(), timeout=30) as http,
    ):
        google.base = base
        platform = build(YOUTUBE, http, **youtube_settings(base, google))
        token = TokenSet(access_token=google.issue_tokens(channel.id)["access_token"])
        headers = {"Authorization": f"Bearer {token.access_token}"}

        async def ours(videos: list[str]) -> int:
            before = len(google.calls)
            results = await platform.post_metrics(token, videos)
            assert len(results) == len(videos)
            return len(google.calls) - before

        async def anchor(videos: list[str]) -> int:
            before = len(google.calls)
            for video in videos:
                r = await http.get(
                    f"{base}/youtube/v3/videos",
                    params={"part": "snippet,statistics", "id": video},
                    headers=headers,
                )
                r.raise_for_status()
            return len(google.calls) - before

        print("YouTube post metrics against the loopback fake (median wall time)")
        for size in SIZES:
            videos = ids[:size]
            o_calls, o_time = await median_run(ROUNDS, lambda: ours(videos))
            a_calls, a_time = await median_run(
                1, lambda: anchor(videos)
            )  # one call a video: slow, stable
            print(
                f"  {size:5d} videos: batched {o_calls:3d} calls {o_time * 1000:8.1f} ms"
                f"   one call per video {a_calls:5d} calls {a_time * 1000:8.1f} ms"
            )
            want = math.ceil(size / PER_CALL)
            rows.append(
                figure(
                    f"post metrics, {size} posts: HTTP calls (= quota units)",
                    o_calls,
                    "calls",
                    anchor="one call per video",
                    anchor_value=a_calls,
                    target=f"= {want}",
                    met=o_calls == want,
                )
            )
            rows.append(
                figure(
                    f"post metrics, {size} posts: wall time",
                    o_time * 1000,
                    "ms",
                    anchor="one call per video",
                    anchor_value=a_time * 1000,
                )
            )
    return 0 if record("youtube_metrics", rows) else 1


if __name__ == "__main__":
    raise SystemExit(event_loop.run(main()))
