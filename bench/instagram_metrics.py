"""Instagram post metrics: batched reads vs one-call-per-post, against the loopback fake.

Run from the repo root: `python bench/instagram_metrics.py`. Needs no database or
Redis. Prints HTTP calls and wall time for `InstagramPlatform.post_metrics` over N
posts, and for the anchor: the naive per-post pair of reads (`/{id}?fields=...` and
`/{id}/insights`), measured in the same run against the same server.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from integrations.base import TokenSet
from integrations.http import Guards, make_client
from integrations.instagram.platform import MEDIA_FIELDS, REELS_METRICS
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from tests.fakes.instagram import FakeInstagram, instagram_settings
from tests.fakes.platforms import build
from tests.fakes.server import serve_asgi

POSTS = 200
ROUNDS = 3


async def main() -> None:
    fake = FakeInstagram()
    user = fake.add_user("bench")
    ids = [
        fake.add_media(
            user,
            f"post {i}",
            like_count=i,
            comments_count=i // 3,
            insights={"views": 10 * i + 5, "reach": 8 * i + 4, "likes": i, "saved": i // 2},
        ).id
        for i in range(POSTS)
    ]
    async with (
        serve_asgi(fake.app) as base,
        make_client(platform="instagram", guards=Guards(), timeout=30) as http,
    ):
        platform = build(INSTAGRAM, http, **instagram_settings(base, fake))
        token = TokenSet(access_token=fake.issue_token(user))
        headers = {"Authorization": f"Bearer {token.access_token}"}

        async def ours() -> int:
            before = len(fake.calls)
            results = await platform.post_metrics(token, ids)
            assert len(results) == POSTS
            return len(fake.calls) - before

        async def anchor() -> int:
            before = len(fake.calls)
            for media_id in ids:
                r = await http.get(
                    f"{base}/v25.0/{media_id}", params={"fields": MEDIA_FIELDS}, headers=headers
                )
                r.raise_for_status()
                r = await http.get(
                    f"{base}/v25.0/{media_id}/insights",
                    params={"metric": ",".join(REELS_METRICS)},
                    headers=headers,
                )
                r.raise_for_status()
            return len(fake.calls) - before

        figures: dict[str, tuple[int, list[float]]] = {}
        # The anchor runs once: at 2 calls per post it is slow, and its figure is stable.
        for name, run, rounds in (
            ("batched post_metrics", ours, ROUNDS),
            ("anchor: per-post reads", anchor, 1),
        ):
            times, calls = [], 0
            for _ in range(rounds):
                start = time.perf_counter()
                calls = await run()
                times.append(time.perf_counter() - start)
            figures[name] = (calls, times)

    print(f"Instagram post metrics for {POSTS} posts against the loopback fake (median wall time)")
    for name, (calls, times) in figures.items():
        print(f"  {name:<24} {calls:>4} HTTP calls  {statistics.median(times) * 1000:8.1f} ms")
    ours_calls = figures["batched post_metrics"][0]
    anchor_calls = figures["anchor: per-post reads"][0]
    print(f"  call reduction: {anchor_calls / ours_calls:.0f}x")
    print("  (wall time here is dominated by the harness's per-request loopback latency)")


if __name__ == "__main__":
    asyncio.run(main())
