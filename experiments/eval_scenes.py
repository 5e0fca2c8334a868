"""Evaluate every registered method on cases simulated from the EVALUATION-ONLY real scenes.

Scenes: AVIRIS Jasper Ridge (100x100, 198 bands) and EO-1 Hyperion Paris (72x72, 128 bands), each
spectrally resampled to ZY-1 02D AHSI (166 bands) and taken as the fine truth at t1. Sentinel-2A MSI
(the 10-band and the 4-band sets), ratio 3. **Temporal change is simulated** (change model "mixed" and
"abrupt", three seeds each): no real two-date HS pair is available offline.

Nothing here tunes anything: the methods run with their shipped defaults and weights.

    python experiments/eval_scenes.py [--bands 10|4] [--seeds 3] [--out experiments/results/eval_scenes.json]

Writes JSON and a Markdown table (``docs/results.md`` section for that band set).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dcstsf import datasets, metrics
from dcstsf.methods import available_methods, fuse_arrays, get_method
from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case

BAND_SETS = {
    "10": ["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"],
    "4": ["B02", "B03", "B04", "B08"],
}


def eval_scenes() -> dict[str, object]:
    """The evaluation-only cubes (Paris scaled by its maximum into [0, 1]: it is radiance-like)."""
    jasper = datasets.load_jasper_ridge()
    paris, _ = datasets.load_paris()
    paris = paris / float(np.nanmax(paris.values))
    return {"jasper_ridge_aviris": jasper, "paris_hyperion": paris}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bands", choices=sorted(BAND_SETS), default="10")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--changes", default="mixed,abrupt")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(__file__).parent / "results" / f"eval_scenes_{args.bands}band.json"
    model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=BAND_SETS[args.bands], ratio=3)
    methods = list(available_methods())
    records = []
    for scene_name, cube in eval_scenes().items():
        for change in args.changes.split(","):
            for seed in range(args.seeds):
                case = simulate_case(cube, model=model, change=change, seed=seed)
                truth = case.hs_t2_truth.values
                for name in methods:
                    method = get_method(name)
                    t0 = time.perf_counter()
                    pred = fuse_arrays(*case.arrays(), method=method, model=model)
                    seconds = time.perf_counter() - t0
                    rec = {
                        "scene": scene_name, "change": change, "seed": seed, "method": name,
                        "psnr": metrics.psnr(pred, truth), "sam_deg": metrics.sam(pred, truth),
                        "ergas": metrics.ergas(pred, truth, h_over_l=1 / 3), "ssim": metrics.ssim(pred, truth),
                        "seconds": seconds,
                    }
                    records.append(rec)
                    print(f"{scene_name:20s} {change:8s} {seed} {name:12s} PSNR {rec['psnr']:6.2f}  "
                          f"SAM {rec['sam_deg']:5.2f}  ERGAS {rec['ergas']:5.2f}  {seconds:5.1f}s", flush=True)
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for scene_name in {r["scene"] for r in records}:
        summary[scene_name] = {}
        for name in methods:
            rows = [r for r in records if r["scene"] == scene_name and r["method"] == name]
            summary[scene_name][name] = {k: float(np.mean([r[k] for r in rows]))
                                         for k in ("psnr", "sam_deg", "ergas", "ssim", "seconds")}
    result = {
        "protocol": "Wald protocol on evaluation-only real scenes resampled to ZY-1 02D AHSI; "
                    "temporal change SIMULATED (no real two-date HS pair available offline)",
        "ms_bands": BAND_SETS[args.bands], "ratio": 3, "changes": args.changes.split(","),
        "seeds": args.seeds, "summary": summary, "records": records,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    lines = [f"### {args.bands}-band Sentinel-2A, ratio 3 (mean over changes {args.changes} x {args.seeds} seeds)", "",
             "| scene | method | PSNR (dB) | SAM (deg) | ERGAS | SSIM | time (s) |", "|---|---|---|---|---|---|---|"]
    for scene_name, per in sorted(summary.items()):
        for name, m in sorted(per.items(), key=lambda kv: -kv[1]["psnr"]):
            lines.append(f"| {scene_name} | {name} | {m['psnr']:.2f} | {m['sam_deg']:.2f} | {m['ergas']:.2f} | "
                         f"{m['ssim']:.3f} | {m['seconds']:.1f} |")
    table = "\n".join(lines) + "\n"
    (out.with_suffix(".md")).write_text(table)
    print(table)


if __name__ == "__main__":
    main()
