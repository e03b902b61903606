"""TikTok as a plug-in: its settings, what it can do, and how to build it.

Figures (developers.tiktok.com, checked against the pages named):
- Login Kit (oauth-user-access-token-management): access tokens last 24 h
  (`expires_in`), refresh tokens 365 days from first issue (`refresh_expires_in`);
  a refresh may answer a different refresh token, which replaces ours.
  `code_verifier` is "required for mobile and desktop app only": Login Kit for Web
  documents no PKCE, so TIKTOK_PKCE is off by default (web apps, https redirect) and
  on for an app registered as Desktop (redirect to localhost, as with `make run`).
  TikTok's desktop PKCE hashes the verifier to a hex SHA-256 digest, not base64url.
- Scopes (tiktok-api-v2-get-user-info): user.info.basic gives open_id and
  display_name; `username` needs user.info.profile and follower_count / likes_count /
  video_count need user.info.stats; video.list for /v2/video/list and /query;
  video.publish for direct posts and creator_info; video.upload for inbox drafts.
- Content Posting (content-posting-api-reference-direct-post, -upload-video):
  /v2/post/publish/video/init/ and /inbox/video/init/ allow 6 requests per minute
  per user token; creator_info/query 20 per minute; status/fetch 30 per minute.
  The upload_url is valid for one hour after issue.
- Posting cap (content-sharing-guidelines): "typically around 15 posts per day per
  creator account, shared across all API clients using Direct Post" (a rolling
  24 h window); TIKTOK_POSTS_PER_DAY sets our counter. Unaudited clients post only
  SELF_ONLY, to accounts set to private, for at most 5 users per 24 h.
  Inbox drafts: at most 5 pending shares per creator in any 24 h (upload-video).
- Chunks (content-posting-api-media-transfer-guide): 5 MB to 64 MB each, the last
  may be larger (up to 128 MB) because total_chunk_count = floor(size / chunk_size)
  and the trailing bytes join the last chunk; under 5 MB one whole chunk; over 64 MB
  several; 1 to 1000 chunks; sent in order; videos up to 4 GB.
- Display API rate limits (tiktok-api-v2-rate-limit): 600 requests per minute per
  app for each of /v2/user/info/, /v2/video/list/, /v2/video/query/, one-minute
  sliding window.
- /v2/video/list/: max_count at most 20; /v2/video/query/: up to 20 video ids.
  Video lists hold public posts only.
- Captions (direct post `title`): at most 2,200 UTF-16 code units, hashtags and
  @mentions included; no documented hashtag or mention count limit.
- No per-day analytics: the Display API gives lifetime totals as of now, so
  `max_period_days` is 1 (the daily digest) and longer periods are refused.

Where the brief this was written from and the documentation differ, the
documentation wins: total_chunk_count rounds down (the last chunk carries the
rest), follower and like totals need user.info.stats and username needs
user.info.profile, PKCE is for desktop/mobile apps only (hex challenge), the
documented bad-input code for the posting endpoints is `invalid_param` while the
general list says `invalid_params` (both are mapped), unaudited apps also need the
creator's account to be private, and documented errors carry their HTTP status
(400/401/403/429) rather than 200 (a 200 with an error is still handled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from integrations.capabilities import (
    CaptionRules,
    MetricsLimits,
    PlatformCapabilities,
    Privacy,
    QuotaCounter,
    QuotaSpec,
)
from integrations.plugin import PlatformPlugin, configured, configured_secret
from integrations.tiktok.captions import utf16_len

if TYPE_CHECKING:
    import httpx

    from integrations.base import SocialPlatform

DAY = 24 * 3600
MINUTE = 60
MIN_CHUNK = 5 * 1024 * 1024  # "at least 5 MB": the binary reading is the stricter one
MAX_CHUNK = 64_000_000  # "no greater than 64 MB": the decimal reading is the stricter one
# The default chunk: each chunk waits for TikTok's answer before the next is sent, so
# fewer chunks upload faster (bench/tiktok.py, 256 MiB over loopback: x0.80 of one plain
# PUT with 16 MiB chunks, x0.89-0.91 with 32 MiB, x0.92 with 64 MB); a chunk lost to
# the network is sent again whole, which keeps it well under the 64 MB allowed.
CHUNK_BYTES = 32 * 1024 * 1024

UNAUDITED_NOTE = (
    "this TikTok app is not audited yet, so posts are private to the creator "
    "(and TikTok takes them only while the creator's account is set to private)"
)
INBOX_NOTE = (
    "TikTok videos go to the creator's TikTok inbox as drafts, private until the "
    "creator adds the caption and posts them in the TikTok app"
)
FALLBACK_NOTE = (
    "if TikTok refuses a direct post, the video goes to the creator's TikTok inbox "
    "as a private draft instead"
)


class TikTokSettings(BaseModel):
    """TIKTOK_* environment variables."""

    tiktok_client_key: str | None = None
    tiktok_client_secret: SecretStr | None = None
    tiktok_auth_url: str = "https://www.tiktok.com/v2/auth/authorize/"
    tiktok_token_url: str = "https://open.tiktokapis.com/v2/oauth/token/"
    tiktok_revoke_url: str = "https://open.tiktokapis.com/v2/oauth/revoke/"
    tiktok_api_base: str = "https://open.tiktokapis.com"
    # PKCE for an app registered as Desktop (hex S256 challenge); web apps have none.
    tiktok_pkce: bool = False
    # Until TikTok audits the app, every post is SELF_ONLY.
    tiktok_app_audited: bool = False
    # "direct": post to the profile; "inbox": a draft the creator finishes in the app.
    tiktok_post_mode: Literal["direct", "inbox"] = "direct"
    # Send an inbox draft when TikTok refuses a direct post (see upload.FALLBACK_CODES).
    tiktok_inbox_fallback: bool = False
    # TikTok fetches the video from PUBLIC_BASE_URL/media/... (a domain verified with it).
    tiktok_pull_from_url: bool = False
    tiktok_chunk_bytes: int = CHUNK_BYTES
    tiktok_poll_seconds: float = Field(default=5.0, gt=0)
    tiktok_publish_timeout_seconds: float = Field(default=600.0, gt=0)
    tiktok_posts_per_day: int = Field(default=15, ge=1)
    # Interactions on new posts; off unless allowed here (TikTok's UX rule: opt-in).
    tiktok_allow_comments: bool = False
    tiktok_allow_duets: bool = False
    tiktok_allow_stitches: bool = False

    @field_validator("tiktok_chunk_bytes")
    @classmethod
    def _chunk_bounds(cls, value: int) -> int:
        if not MIN_CHUNK <= value <= MAX_CHUNK:
            raise ValueError(f"must be between {MIN_CHUNK} and {MAX_CHUNK} bytes (5 MB..64 MB)")
        return value


def posting_note(settings: TikTokSettings) -> str | None:
    """The sentence an approval shows when the app's status or mode shapes the post."""
    if settings.tiktok_post_mode == "inbox":
        return INBOX_NOTE
    notes = []
    if not settings.tiktok_app_audited:
        notes.append(UNAUDITED_NOTE)
    if settings.tiktok_inbox_fallback:
        notes.append(FALLBACK_NOTE)
    return "; ".join(notes) or None


def capabilities(settings: TikTokSettings) -> PlatformCapabilities:
    direct = settings.tiktok_post_mode == "direct"
    if direct and settings.tiktok_app_audited:
        privacy = Privacy(values=("public", "followers", "friends", "private"), default="private")
    else:
        privacy = Privacy(values=("private",), default="private")
    if direct:
        posts = QuotaCounter(
            "posts",
            "posts",
            settings.tiktok_posts_per_day,
            per_account=True,
            rolling_seconds=DAY,
            source="content-sharing-guidelines: about 15 Direct Post posts per creator per 24 h",
        )
    else:
        posts = QuotaCounter(
            "drafts",
            "inbox drafts",
            5,
            per_account=True,
            rolling_seconds=DAY,
            source="upload-video: at most 5 pending inbox shares per creator in 24 h",
        )
    return PlatformCapabilities(
        name="tiktok",
        display_name="TikTok",
        colour=0x25F4EE,
        aliases=("tt",),
        account_prefix="tt",
        privacy=privacy,
        media="public_url" if settings.tiktok_pull_from_url else "push",
        metrics=MetricsLimits(max_ids_per_call=20, max_period_days=1, recent_page_size=20),
        caption_rules=CaptionRules(caption_max_chars=2200, length=utf16_len),
        posting_note=posting_note(settings),
        quota=QuotaSpec(
            counters=(
                QuotaCounter(
                    "inits",
                    "post starts",
                    6,
                    per_account=True,
                    rolling_seconds=MINUTE,
                    source="video/init and inbox/video/init: 6 requests per minute per user token",
                ),
                posts,
                QuotaCounter(
                    "user_info",
                    "profile reads",
                    600,
                    rolling_seconds=MINUTE,
                    source="tiktok-api-v2-rate-limit: /v2/user/info/ 600 per minute per app",
                ),
                QuotaCounter(
                    "video_list",
                    "video list reads",
                    600,
                    rolling_seconds=MINUTE,
                    source="tiktok-api-v2-rate-limit: /v2/video/list/ 600 per minute per app",
                ),
                QuotaCounter(
                    "video_query",
                    "video queries",
                    600,
                    rolling_seconds=MINUTE,
                    source="tiktok-api-v2-rate-limit: /v2/video/query/ 600 per minute per app",
                ),
            ),
            costs={
                "upload": {"inits": 1, posts.name: 1},
                "profile": {"user_info": 1},
                "account_metrics": {"user_info": 1},
                "recent_posts": {"video_list": 1},
                "post_metrics": {"video_query": 1},
            },
        ),
    )


def build(
    settings: TikTokSettings, caps: PlatformCapabilities, http: httpx.AsyncClient
) -> SocialPlatform:
    from integrations.tiktok.platform import TikTokConfig, TikTokPlatform

    config = TikTokConfig(
        client_key=configured(settings.tiktok_client_key),
        client_secret=configured_secret(settings.tiktok_client_secret),
        auth_url=settings.tiktok_auth_url,
        token_url=settings.tiktok_token_url,
        revoke_url=settings.tiktok_revoke_url,
        api_base=settings.tiktok_api_base,
        pkce=settings.tiktok_pkce,
        post_mode=settings.tiktok_post_mode,
        inbox_fallback=settings.tiktok_inbox_fallback,
        pull_from_url=settings.tiktok_pull_from_url,
        chunk_bytes=settings.tiktok_chunk_bytes,
        poll_seconds=settings.tiktok_poll_seconds,
        publish_timeout_seconds=settings.tiktok_publish_timeout_seconds,
        allow_comments=settings.tiktok_allow_comments,
        allow_duets=settings.tiktok_allow_duets,
        allow_stitches=settings.tiktok_allow_stitches,
    )
    return TikTokPlatform(config=config, http=http, capabilities=caps)


PLUGIN = PlatformPlugin(
    name="tiktok",
    display_name="TikTok",
    settings_type=TikTokSettings,
    required=(("tiktok_client_key", "tiktok_client_secret"),),
    capabilities=capabilities,
    build=build,
)
