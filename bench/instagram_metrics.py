"""Instagram post metrics: batched reads vs one-call-per-post, against the loopback fake.

Run from the repo root: `python bench/instagram_metrics.py`. Needs no database or
Redis. Prints HTTP calls and wall time for `InstagramPlatform.post_metrics` over 10,
100 and 1,000 posts, and for the anchor: the naive per-post pair of reads
(`/{id}?fields=...` and `/{id}/insights`), measured in the same run against the same
server. Then one deleted post in a 50-post batch: the basics reads it costs, with Graph
naming the missing id (#803) and without (the batch halved), against the 1 + 50 reads
of falling back to single reads.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench._harness import median_run
from bench.results import figure, record
from bot import event_loop
from integrations.base import TokenSet
from integrations.http import Guards, make_client
from integrations.instagram.platform import MEDIA_FIELDS, REELS_METRICS
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from tests.fakes.instagram import FakeInstagram, instagram_settings
from tests.fakes.platforms import build
from tests.fakes.server import serve_asgi

SIZES = (10, 100, 1000)
ROUNDS = 3
BATCH = 50
GONE = "17999999999999999"


class Counting(logging.Handler):
    """Counts the records of a logger instead of printing them. The deleted-post case
    provokes Graph refusals on purpose; their warning (wanted in production) would
    otherwise reach stderr bare, through logging's last-resort handler."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def main() -> int:
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
        for i in range(max(SIZES))
    ]
    rows = []
    async with (
        serve_asgi(fake.app) as base,
        make_client(platform="instagram", guards=Guards(), timeout=30) as http,
    ):
        platform = build(INSTAGRAM, http, **instagram_settings(base, fake))
        token = TokenSet(access_token=fake.issue_token(user))
        headers = {"Authorization": f"Bearer {token.access_token}"}

        async def ours(posts: list[str]) -> int:
            before = len(fake.calls)
            results = await platform.post_metrics(token, posts)
            assert len(results) == len([p for p in posts if p != GONE])
            return len(fake.calls) - before

        async def anchor(posts: list[str]) -> int:
            before = len(fake.calls)
            for media_id in posts:
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

        print("Instagram post metrics against the loopback fake (median wall time)")
        for size in SIZES:
            posts = ids[:size]
            o_calls, o_time = await median_run(ROUNDS, lambda: ours(posts))
            # The anchor runs once: at 2 calls per post it is slow, and its figure is stable.
            a_calls, a_time = await median_run(1, lambda: anchor(posts))
            print(
                f"  {size:5d} posts: batched {o_calls:4d} calls {o_time * 1000:8.1f} ms"
                f"   per-post reads {a_calls:5d} calls {a_time * 1000:8.1f} ms"
            )
            rows.append(
                figure(
                    f"post metrics, {size} posts: HTTP calls",
                    o_calls,
                    "calls",
                    anchor="per-post reads",
                    anchor_value=a_calls,
                )
            )
            rows.append(
                figure(
                    f"post metrics, {size} posts: wall time",
                    o_time * 1000,
                    "ms",
                    anchor="per-post reads",
                    anchor_value=a_time * 1000,
                )
            )

        # One post of a 50-post batch deleted since it was listed.
        batch = ids[:BATCH]
        batch[17] = GONE
        basics: dict[str, int] = {}
        graph_log = logging.getLogger("integrations.instagram.graph")
        refusals = Counting()
        graph_log.addHandler(refusals)
        try:
            for named in (True, False):
                fake.names_missing_ids = named
                before = len(fake.calls)
                await ours(batch)
                basics[str(named)] = len(
                    [c for c in fake.calls[before:] if "like_count" in c.params.get("fields", "")]
                )
        finally:
            graph_log.removeHandler(refusals)
        fake.names_missing_ids = True
        single = 1 + BATCH  # the refused batch, then every post on its own
        print(
            f"  one deleted post in {BATCH}: {basics['True']} basics reads (Graph names it),"
            f" {basics['False']} (it does not; halves), vs {single} falling back to single reads"
            f" ({refusals.count} Graph refusals logged)"
        )
        rows.append(
            figure(
                f"one deleted post in {BATCH}: basics reads",
                basics["True"],
                "calls",
                anchor="falling back to single reads",
                anchor_value=single,
                target="<= 2",
                met=basics["True"] <= 2,
            )
        )
        rows.append(
            figure(
                f"one deleted post in {BATCH}, id not named: basics reads",
                basics["False"],
                "calls",
                anchor="falling back to single reads",
                anchor_value=single,
                target="<= 2·log2(50)+1 = 13",
                met=basics["False"] <= 13,
            )
        )
    print("  (wall time here is dominated by the harness's per-request loopback latency)")
    return 0 if record("instagram_metrics", rows) else 1


if __name__ == "__main__":
    raise SystemExit(event_loop.run(main()))
