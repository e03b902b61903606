"""TikTok: Login Kit (OAuth v2), Content Posting API (direct posts and inbox drafts),
Display API (profile, videos, counters). Registered through `plugin.PLUGIN`."""
