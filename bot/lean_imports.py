"""Load httpx and redis without the optional extras they import whenever installed.

Both libraries import, at their own import, modules that no code of ours uses and that
are installed only because another dependency needs them:

- httpx imports its command-line tool (`httpx._main`: rich, pygments, click) whenever
  rich is installed (pgqueuer's CLI installs it): 3.2 MiB resident in every process.
- redis imports the OpenTelemetry metrics SDK for its own metrics, which only an
  explicit `redis.observability` init turns on; we never make one (our tracing
  instruments Redis through opentelemetry-instrumentation-redis): 1.6 MiB.

(Figures: idle `serve` with Slack and no model, bench/idle.py.) Each library is
imported with its extra marked absent (a None entry in sys.modules makes importing it
raise ImportError, a case both libraries handle), and the mark is removed afterwards,
so whatever imports the extra itself later still gets it. `httpx.main` is then
httpx's stub that asks for `httpx[cli]`; the `httpx` command is another process.
"""

from __future__ import annotations

import importlib
import sys

# library -> the optional modules it imports but we never use
UNUSED_EXTRAS: dict[str, tuple[str, ...]] = {
    "httpx": ("httpx._main",),
    "redis": ("opentelemetry.sdk.metrics",),
}


def load() -> None:
    """Import each library without its unused extras (no-op for one already imported)."""
    for library, extras in UNUSED_EXTRAS.items():
        if library in sys.modules:
            continue
        marked = [name for name in extras if name not in sys.modules]
        for name in marked:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            importlib.import_module(library)
        finally:
            for name in marked:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
