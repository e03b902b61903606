"""Processes that run no model never load LangChain (about 0.7 s and 55 MiB at start)."""

from __future__ import annotations

import subprocess
import sys


def test_web_worker_and_core_import_without_langchain() -> None:
    code = (
        "import sys, bot.cli, bot.assembly, bot.core.service, bot.web, bot.worker\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0].startswith('langchain'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_only_rendering_a_digest_loads_matplotlib() -> None:
    code = (
        "import sys, bot.cli, bot.assembly, bot.web, bot.worker, bot.digest_post\n"
        "import bot.digest_layout, bot.slack.digest, bot.discord.digest, agent.digests\n"
        "assert 'matplotlib' not in sys.modules\n"
        "from bot.digest_preview import sample_digest\n"
        "from bot.digest_chart import render_png\n"
        "d = sample_digest()\n"
        "assert 'matplotlib' not in sys.modules\n"
        "render_png(d.chart, d.chart_days)\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
