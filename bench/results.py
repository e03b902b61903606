"""`bench/results.json`: every bench's figures next to their anchors, and the README table.

Each bench calls `record(bench, figures)` at its end: its rows replace that bench's
previous rows, other benches' rows stay. `make bench` then runs this file, which
rewrites the README's benchmark table (between its two `bench-table` markers) from
the JSON, so the table always shows the last run's numbers.

    python bench/results.py      # regenerate the README table from bench/results.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
README = HERE.parent / "README.md"
BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    anchor: str | None = None,
    anchor_value: float | None = None,
    ratio: float | None = None,
    target: str | None = None,
    met: bool | None = None,
) -> dict[str, Any]:
    """One row: our figure, the anchor it is compared with (same run), the ratio, the target
    and whether it was met (None: a scaling row with no target of its own)."""
    if ratio is None and anchor_value:
        ratio = value / anchor_value
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "anchor": anchor,
        "anchor_value": None if anchor_value is None else round(anchor_value, 3),
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": met,
    }


def record(bench: str, figures: list[dict[str, Any]]) -> bool:
    """Store `bench`'s rows, print each target's verdict; True when every target was met."""
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[bench] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "figures": figures,
    }
    # Written whole then renamed: an interrupted bench never leaves half a file.
    with tempfile.NamedTemporaryFile("w", dir=HERE, delete=False, suffix=".tmp") as fh:
        json.dump(dict(sorted(data.items())), fh, indent=2)
        fh.write("\n")
    Path(fh.name).replace(RESULTS)
    missed = [f for f in figures if f["met"] is False]
    for f in figures:
        if f["met"] is not None:
            print(f"  [{'ok' if f['met'] else 'MISSED'}] {f['name']}: {_cell(f)}")
    if missed:
        print(f"{bench}: {len(missed)} target(s) MISSED")
    return not missed


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _cell(f: dict[str, Any]) -> str:
    ours = f"{_number(f['value'])} {f['unit']}"
    if f["anchor"] is not None and f["anchor_value"] is not None:
        ours += f" vs {_number(f['anchor_value'])} {f['unit']} ({f['anchor']})"
    if f["ratio"] is not None:
        ours += f", x{f['ratio']:.2f}"
    if f["target"]:
        ours += f"; target {f['target']}"
    return ours


def table(data: dict[str, Any]) -> str:
    """The README table: one row per figure, grouped by bench."""
    lines = [
        "| bench | figure | ours | anchor (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for bench, entry in data.items():
        for f in entry["figures"]:
            anchor = (
                f"{_number(f['anchor_value'])} {f['unit']} ({f['anchor']})"
                if f["anchor"] is not None and f["anchor_value"] is not None
                else ""
            )
            ratio = "" if f["ratio"] is None else f"x{f['ratio']:.2f}"
            met = {True: "yes", False: "**no**", None: ""}[f["met"]]
            lines.append(
                f"| {bench} | {f['name']} | {_number(f['value'])} {f['unit']} | {anchor} "
                f"| {ratio} | {f['target'] or ''} | {met} |"
            )
    return "\n".join(lines)


def main() -> int:
    if not RESULTS.exists():
        print("no bench/results.json yet: run `make bench`", file=sys.stderr)
        return 1
    data = json.loads(RESULTS.read_text())
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README.md has no {BEGIN} ... {END} markers", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    stamps = sorted({e["measured_at"] for e in data.values()})
    note = f"\nLast `make bench`: {stamps[0]} to {stamps[-1]} (UTC), {os.cpu_count()} CPUs.\n\n"
    README.write_text(f"{head}{BEGIN}{note}{table(data)}\n{END}{tail}")
    print(f"README.md: benchmark table rewritten from {RESULTS.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
