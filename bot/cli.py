"""`socialops run | shell | serve | worker | discord | migrate | doctor | rotate-keys | gen-key`."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from bot import event_loop, logs
from bot.services import Part, Services, run_parts
from bot.settings import Settings

log = logging.getLogger(__name__)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Only field names and messages: pydantic's input echo could hold a secret.
        for err in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(p) for p in err["loc"]).upper()
            print(f"configuration error: {field}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def build_parts(services: Services, names: list[str]) -> list[Part]:
    """Construct the named parts; each import is local so a part's deps load only if used."""
    from bot.assembly import build_parts as assemble

    return assemble(services, names)


def parts_for_run(settings: Settings, *, interactive: bool) -> list[str]:
    """`socialops run`: everything configured in one process."""
    names = ["web", "worker"]
    if settings.slack_enabled and settings.slack_app_token is not None:
        names.append("slack-socket")
    if settings.discord_enabled:
        names.append("discord")
    if not settings.slack_enabled and not settings.discord_enabled and interactive:
        names.append("shell")
    return names


def with_metrics(settings: Settings, names: list[str]) -> list[str]:
    """A process with no web server serves /metrics on METRICS_PORT when it is set
    (the local shell alone excepted: nobody scrapes it)."""
    if settings.metrics_port is None or "web" in names or names in ([], ["shell"]):
        return names
    return [*names, "metrics"]


async def _run(settings: Settings, names: list[str]) -> int:
    services = Services(settings=settings)
    parts = build_parts(services, names)
    return await run_parts(services, parts)


async def _migrate(settings: Settings) -> int:
    services = Services(settings=settings)
    await services.db.open()
    try:
        applied = await services.migrate()
    finally:
        await services.db.close()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


async def _rotate(settings: Settings, batch_size: int, pause: float) -> int:
    from storage.rotation import rotate_keys

    services = Services(settings=settings)
    await services.db.open()
    try:
        await services.migrate()
        report = await rotate_keys(
            services.db.pool, services.cipher, batch_size=batch_size, pause_seconds=pause
        )
    finally:
        await services.db.close()
    for column, count in report.rotated.items():
        bad = report.unreadable[column]
        print(f"{column}: {count} re-encrypted" + (f", {bad} unreadable (skipped)" if bad else ""))
    print(f"every readable secret is now under key '{services.cipher.primary_kid}'")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="socialops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start every configured part in one process")
    sub.add_parser("shell", help="the local chat shell")
    sub.add_parser("serve", help="the web server (Slack HTTP events, OAuth callbacks, health)")
    sub.add_parser("worker", help="scheduled digests, uploads and token refresh")
    sub.add_parser("discord", help="the Discord gateway client")
    sub.add_parser("migrate", help="apply pending database migrations")
    doctor_cmd = sub.add_parser(
        "doctor", help="show configuration and check connectivity (no secrets)"
    )
    doctor_cmd.add_argument("--web", type=int, default=1, help="web processes, for the total")
    doctor_cmd.add_argument("--workers", type=int, default=1, help="worker processes (all kinds)")
    rotate = sub.add_parser("rotate-keys", help="re-encrypt secrets under the first key")
    rotate.add_argument("--batch-size", type=int, default=500)
    rotate.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    sub.add_parser("gen-key", help="print a new TOKEN_ENCRYPTION_KEYS entry")
    preview = sub.add_parser(
        "digest-preview", help="render a sample digest (chart, Block Kit, embeds) to files"
    )
    preview.add_argument("--out", type=Path, default=Path(".socialops") / "preview")
    args = parser.parse_args(argv)

    if args.command == "gen-key":
        from storage.crypto import generate_key_spec

        print(generate_key_spec())
        return 0
    if args.command == "digest-preview":
        from bot.digest_preview import write_preview

        for path in write_preview(args.out):
            print(path)
        return 0

    settings = _settings()
    names = {
        "run": parts_for_run(settings, interactive=sys.stdin.isatty()),
        "shell": ["shell"],
        "serve": ["web"],
        "worker": ["worker"],
        "discord": ["discord"],
    }.get(args.command, [])
    names = with_metrics(settings, names)
    interactive_shell = "shell" in names and sys.stdin.isatty()
    logs.configure(
        level=settings.log_level,
        library_level=settings.log_level_libraries,
        fmt=settings.log_format,
        secrets=settings.secret_values(),
        log_file=settings.data_dir / "socialops.log" if interactive_shell else None,
    )

    if args.command == "doctor":
        from bot.doctor import doctor

        return event_loop.run(doctor(settings, web=args.web, workers=args.workers))
    if args.command == "migrate":
        return event_loop.run(_migrate(settings))
    if args.command == "rotate-keys":
        return event_loop.run(_rotate(settings, args.batch_size, args.pause))

    from bot import telemetry

    tracing = telemetry.configure(settings, role=args.command)
    try:
        code = event_loop.run(_run(settings, names))
    finally:
        if tracing is not None:
            tracing.shutdown()  # flushes the spans still queued for export
    # The interpreter's last collections at exit walk every object of the process (about
    # 0.7 s after a shell's `quit`); nothing then needs collecting, so none is tracked.
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
