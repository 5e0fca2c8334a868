"""Markdown tables from ``experiments/results/bench_scale.json`` (written by ``bench_scale.py``).

    python experiments/bench_report.py [--json experiments/results/bench_scale.json]

Prints one table of every run (measured and extrapolated) and one row per method against the benchmark's
targets; ``docs/results.md`` quotes them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench_scale import RESULTS, per_area_spread


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def runs_table(doc: dict[str, Any]) -> str:
    lines = [
        "| method | output | tile (px) | tiles at once | wall (s) | Mpx/s | CPU s/Mpx | peak RSS (GiB) | "
        "x bare core | x bare tile window | steal | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in doc["runs"]:
        peak = e.get("tile_peak_bytes")
        at_once = _fmt(e.get("parallel_tiles"), "d") + (f" ({peak / 2**30:.2f} GiB/tile)" if peak else "")
        lines.append(
            f"| {e['method']} | {e['size']}² x {e['bands']} | {e.get('plan', {}).get('chunk', '-')} | {at_once} | "
            f"{e['wall_s']:.0f} | {e['mpx_s']:.3f} | {_fmt(e.get('cpu_s_per_mpx'), '.1f')} | "
            f"{_fmt(e.get('peak_rss_gib'), '.2f')} | {_fmt(e.get('ratio_vs_bare'), '.2f')} | "
            f"{_fmt(e.get('ratio_vs_tile_window'), '.2f')} | {_fmt(e.get('steal_fraction'), '.0%')} | "
            f"{_measured(e)} |"
        )
    return "\n".join(lines)


def _measured(e: dict[str, Any]) -> str:
    if e.get("extrapolated"):
        return f"extrapolated from {e.get('extrapolated_from')}"
    reps = e.get("repetitions")
    if not reps:
        return "yes"
    return f"median of {len(reps)} (" + ", ".join(f"{r['wall_s']:.1f}" for r in reps) + " s)"


def targets_table(doc: dict[str, Any]) -> str:
    lines = [
        "| method | bare core Mpx/s | bare tile window Mpx/s | largest run | peak RSS max (GiB) | "
        "RSS <= 3 GiB at 6000² | s/Mpx spread (>= 1023²) | s/Mpx spread (>= 2049²) | x bare core | "
        "x bare tile window | wall = fixed + rate x Mpx (>= 1023²) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in doc["summary"].items():
        bare = doc["bare"].get(name, {})
        ok = s.get("peak_rss_le_3gib_at_6000")
        lines.append(
            f"| {name} | {_fmt(bare.get('bare_mpx_s'), '.3f')} | {_fmt(bare.get('tile_window_mpx_s'), '.3f')} | "
            f"{s['largest_measured']}² | {s['peak_rss_gib_max']:.2f} | {'-' if ok is None else ('yes' if ok else 'no')} | "
            f"{_fmt(s.get('time_per_area_spread'), '.0%')} | {_fmt(per_area_spread(s['seconds_per_mpx'], min_size=2049, fallback=False), '.0%')} | "
            f"{_fmt(s.get('ratio_vs_bare_at_largest'), '.2f')} | "
            f"{_fmt(s.get('ratio_vs_tile_window_at_largest'), '.2f')} | {_affine(s.get('affine_fit'))} |"
        )
    return "\n".join(lines)


def _affine(fit: dict[str, Any] | None) -> str:
    if not fit:
        return "-"
    return (f"{fit['fixed_s']:.1f} s + {fit['s_per_mpx']:.2f} s/Mpx "
            f"(residual <= {fit['max_relative_residual']:.0%})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()
    doc = json.loads(args.json.read_text())
    print(runs_table(doc))
    print()
    print(targets_table(doc))


if __name__ == "__main__":
    main()
