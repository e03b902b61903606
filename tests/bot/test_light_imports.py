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
