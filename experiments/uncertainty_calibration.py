"""Calibrate the per-pixel standard deviation (dcstsf.uncertainty) on simulated training-eligible cases.

Cases (Wald protocol, temporal change SIMULATED; AHSI 166 bands, Sentinel-2A, ratio 3):

- **calibration** (the fit): the bundled EnMAP sample (the 64 x 128 Potsdam block, parent pixels
  160-223 x 64-191) with the changes mixed, abrupt, phenology and radiometric, seed 0 with the sensor
  tables' HS degradation and seed 1 with an HS PSF 1.5 times as wide and a random HS-to-MS shift; and
  four synthetic scenes from the training spectral libraries (``synthetic_cases``, seed 0).
- **held-out** (reported, never fitted on): EnMAP tiles the bundled sample does not contain, mosaicked into
  block B (parent columns 64-159, rows 0-63) and block C (columns 96-159, rows 96-159), changes mixed,
  abrupt and phenology at seed 10 and mixed with the wide shifted PSF at seed 11; and four synthetic
  scenes from the validation libraries (``validation_cases``, seed 0).
- **evaluation-only** (reported for information, never fitted or chosen on): Jasper Ridge (AVIRIS) and
  Paris (Hyperion), as :func:`dcstsf.datasets.load_evaluation_scenes` gives them (``experiments/eval_scenes.py``
  uses the same), changes mixed and abrupt, seed 0.

Every case runs with the 10-band and the 4-band Sentinel-2A sets. Each method fuses each case through
the engine (``dcstsf.engine.prepare(..., uncertainty=True)``, estimated physics, the whole image as one
tile) and the four measures are taken with the engine's own tile function. Per calibration key (the
method name, ``dcstsf-physics-only`` for DC-STSF without learned units, and ``default`` pooled over all) the
five numbers are fitted on a fixed random sample of good-band pixels of every calibration case
(:func:`dcstsf.uncertainty.fit_entry`). Coverage (fraction of true errors within 1 and 2 standard
deviations) is then measured on a random subset of 50 000 good-band pixels of every case and method.

Two studies, on the same samples, report the held-out Gaussian negative log-likelihood per sample of the
maximum-likelihood model: with each measure left out in turn (what each contributes), and with test-time
flips and transposes of DC-STSF's window as a fifth measure (their spread; not in the shipped model).

    python experiments/uncertainty_calibration.py [--pixels 4000] [--out experiments/results/uncertainty_calibration.json]
        [--calibration dcstsf/data/uncertainty_calibration.json]

Writes the calibration file (with its provenance), the results JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcstsf import datasets
from dcstsf.engine import prepare
from dcstsf.methods import DCSTSF, Method, get_method
from dcstsf.models.network import DCSTSFConfig
from dcstsf.operators import ObservationModel
from dcstsf.sensors import SENTINEL2_BAND_SETS
from dcstsf.simulate import FusionCase, simulate_case
from dcstsf.training.synthetic import synthetic_cases, validation_cases
from dcstsf.uncertainty import (
    Calibration,
    CalibrationEntry,
    coverage,
    fit_entry,
    fit_log_model,
    load_calibration,
    log_model_sd,
    standard_deviation,
)
from dcstsf.uncertainty.calibration import DEFAULT_KEY
from dcstsf.uncertainty.members import PHYSICS_ONLY, calibration_key
from dcstsf.uncertainty.tile import whole_image_measures

#: good-band pixels per case and method on which coverage is measured (a random subset)
EVAL_PIXELS = 50_000
FLOOR = 1e-4
SIGMA_PX = 1.0
#: What the measures are taken with (their floor and smoothing); its entry is not used.
MEASURING = Calibration(entries={DEFAULT_KEY: CalibrationEntry(0.0, 0.0, 0.0, 0.0, 0.0)}, floor=FLOOR,
                        sigma_px=SIGMA_PX)
#: The measures of the shipped model, in the calibration entry's order.
MEASURES = ("band", "residual", "member", "change")


def wide_shifted(model: ObservationModel, seed: int) -> ObservationModel:
    """The true model of a case with an HS PSF 1.5x the table's and a shift uniform within +/-0.5 coarse
    pixels (drawn from the seed)."""
    rng = np.random.default_rng(1000 + seed)
    shift = tuple(float(v) for v in rng.uniform(-0.5, 0.5, 2) * model.ratio)
    return dataclasses.replace(model, hs_sigma=np.asarray(model.hs_sigma) * 1.5, hs_shift=shift)


def cases(group: str, model: ObservationModel) -> Iterator[tuple[str, FusionCase]]:
    """The cases of one group (see the module docstring)."""
    if group == "calibration":
        cube = datasets.load_bundled_sample()
        for change in ("mixed", "abrupt", "phenology", "radiometric"):
            yield f"enmap_sample/{change}/0/table", simulate_case(cube, model=model, change=change, seed=0)
            yield (f"enmap_sample/{change}/1/psf1.5+shift",
                   simulate_case(cube, model=wide_shifted(model, 1), change=change, seed=1))
        for i, case in enumerate(synthetic_cases(model=model, n_cases=4, seed=0, size=96)):
            yield f"training_libraries/{i}", case
    elif group == "held_out":
        for name, block in datasets.ENMAP_HELD_OUT_BLOCKS.items():
            cube = datasets.load_enmap_potsdam_block(tiles=block)
            for change in ("mixed", "abrupt", "phenology"):
                yield f"{name}/{change}/10/table", simulate_case(cube, model=model, change=change, seed=10)
            yield f"{name}/mixed/11/psf1.5+shift", simulate_case(cube, model=wide_shifted(model, 11), change="mixed",
                                                                  seed=11)
        for i, case in enumerate(validation_cases(model=model, n_cases=4, seed=0, size=96)):
            yield f"validation_libraries/{i}", case
    elif group == "evaluation_only":
        for name, cube in datasets.load_evaluation_scenes().items():
            for change in ("mixed", "abrupt"):
                yield f"{name}/{change}/0/table", simulate_case(cube, model=model, change=change, seed=0)
    else:
        raise ValueError(group)


def methods(model: ObservationModel) -> dict[str, Callable[[], Method]]:
    """The methods of a band set: the registered ones as shipped, and the physics-only DC-STSF where the
    shipped default is not already that network."""
    out: dict[str, Callable[[], Method]] = {n: (lambda n=n: get_method(n)) for n in ("dcstsf", "two-step",
                                                                                     "variational", "bicubic")}
    out[PHYSICS_ONLY] = lambda: DCSTSF.untrained(DCSTSFConfig(n_ms=model.n_ms))
    return out


def flipped_spread(job: Any) -> np.ndarray:
    """Standard deviation over the identity, the two flips and the transpose of the window (the model's HS
    shift transformed with it) of the job's method, on the whole image: the test-time-transform study."""
    from dcstsf.engine.tile import predict_tile
    from dcstsf.nodata import inf_to_nan

    arrays = [inf_to_nan(np.asarray(a.values, np.float32)) for a in (job.inputs.hs_t1, job.inputs.ms_t1,
                                                                        job.inputs.ms_t2)]
    ctx = job.context
    transforms = {
        "identity": (lambda a: a, lambda s: s),
        "flip_y": (lambda a: a[:, ::-1, :], lambda s: (-s[0], s[1])),
        "flip_x": (lambda a: a[:, :, ::-1], lambda s: (s[0], -s[1])),
        "transpose": (lambda a: a.transpose(0, 2, 1), lambda s: (s[1], s[0])),
    }
    preds = []
    for f, shift in transforms.values():
        model = dataclasses.replace(ctx.model, hs_shift=shift(ctx.model.hs_shift))
        a = [np.ascontiguousarray(f(x)) for x in arrays]
        tctx = dataclasses.replace(ctx, model=model)
        h, w = a[1].shape[1:]
        preds.append(np.ascontiguousarray(f(predict_tile(tctx, *a, window=(0, h, 0, w), extended=(0, h, 0, w)))))
    return np.std(np.stack(preds), axis=0)


def run_case(group: str, name: str, case: FusionCase, band_set: str, rng: np.random.Generator,
             n_pixels: int) -> list[dict[str, Any]]:
    """Every method on one case: measures and errors on random subsets of the good-band pixels (the
    calibration sample and the coverage subset)."""
    rows = []
    for label, make in methods(case.model).items():
        t0 = time.perf_counter()
        method = make()
        if label == "dcstsf" and calibration_key(method, case.model) == PHYSICS_ONLY:
            continue  # the shipped default is the physics-only network for this band set: one run is enough
        h, w = case.ms_t1.sizes["y"], case.ms_t1.sizes["x"]
        job = prepare(case.hs_t1, case.ms_t1, case.ms_t2, method=method, chunk=max(h, w), uncertainty=MEASURING)
        key = calibration_key(job.method, job.model)
        if label == PHYSICS_ONLY and key != PHYSICS_ONLY:
            raise RuntimeError("the physics-only network was not recognised as such")
        pred, measures, bad = whole_image_measures(job)
        good = np.asarray(job.model.hs_sensor.good, bool)
        truth = case.hs_t2_truth.values
        err = (pred - truth)[good]
        band = np.broadcast_to(measures.band[good][:, None, None], err.shape)
        ok = np.isfinite(err) & ~bad[None]
        extra: dict[str, np.ndarray] = {}
        if label == "dcstsf":
            extra["flips"] = flipped_spread(job)[good]
        idx = np.flatnonzero(ok.ravel())
        pick = rng.choice(idx, size=min(n_pixels, idx.size), replace=False)
        # coverage on a large random subset: the fraction within k SD is then known to about 0.2 %
        judge = rng.choice(idx, size=min(EVAL_PIXELS, idx.size), replace=False)
        fields = {"band": band, "residual": measures.residual[good], "member": measures.member[good],
                  "change": measures.change[good], "error": err, **extra}
        rows.append({
            "group": group, "case": name, "band_set": band_set, "method": label, "key": key,
            "seconds": time.perf_counter() - t0,
            "rmse": float(np.sqrt(np.mean(err[ok] ** 2))),
            "all": {k: np.asarray(v, np.float32).ravel()[judge] for k, v in fields.items()},
            "sample": {k: np.asarray(v, np.float32).ravel()[pick] for k, v in fields.items()},
        })
        print(f"{group:15s} {band_set:2s} {name:40s} {label:20s} rmse {rows[-1]['rmse']:.4f} "
              f"{rows[-1]['seconds']:5.1f}s", flush=True)
    return rows


def pooled(rows: list[dict[str, Any]], part: str, field: str) -> np.ndarray:
    return np.concatenate([r[part][field] for r in rows])


def sd_of(entry: Any, data: dict[str, np.ndarray]) -> np.ndarray:
    from dcstsf.uncertainty import Measures

    return standard_deviation(Measures(band=data["band"], residual=data["residual"][:, None, None],
                                       member=data["member"][:, None, None], change=data["change"][:, None, None]),
                              entry, floor=FLOOR)[:, 0, 0]


def held_out_nll(rows_cal: list[dict], rows_held: list[dict], names: list[str]) -> tuple[list[float], float]:
    """Fit the log model of ``names`` on the calibration samples; its mean negative log-likelihood on the
    held-out coverage subsets."""
    theta, _ = fit_log_model([pooled(rows_cal, "sample", n) for n in names], pooled(rows_cal, "sample", "error"),
                             floor=FLOOR)
    e = pooled(rows_held, "all", "error")
    sd = log_model_sd(theta, [pooled(rows_held, "all", n) for n in names], floor=FLOOR)
    return [float(t) for t in theta], float(np.mean(np.log(sd) + 0.5 * (e / sd) ** 2))


def studies(rows_cal: list[dict], rows_held: list[dict], keys: list[str]) -> dict[str, Any]:
    """Per key: the held-out likelihood of the shipped measures, of each left out, and with the flips' spread."""
    out: dict[str, Any] = {}
    for key in keys:
        cal = [r for r in rows_cal if r["key"] == key]
        held = [r for r in rows_held if r["key"] == key]
        if not cal or not held:
            continue
        theta, nll = held_out_nll(cal, held, list(MEASURES))
        res: dict[str, Any] = {"all": {"theta": theta, "held_out_nll": nll}}
        for left in MEASURES:
            theta, nll = held_out_nll(cal, held, [m for m in MEASURES if m != left])
            res[f"without_{left}"] = {"theta": theta, "held_out_nll": nll}
        if all("flips" in r["sample"] for r in cal) and all("flips" in r["all"] for r in held):
            theta, nll = held_out_nll(cal, held, [*MEASURES, "flips"])
            rms = np.sqrt(np.mean(pooled(cal, "all", "flips") ** 2) / np.mean(pooled(cal, "all", "error") ** 2))
            res["with_flips"] = {"theta": theta, "held_out_nll": nll, "rms_spread_over_rms_error": float(rms)}
        out[key] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pixels", type=int, default=4000, help="calibration samples per case and method")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "uncertainty_calibration.json")
    ap.add_argument("--calibration", type=Path,
                    default=Path(__file__).parents[1] / "dcstsf" / "data" / "uncertainty_calibration.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # the radiometric change moves every MS band: the input checks warn about an offset, as they should
    warnings.filterwarnings("ignore", message=r"MS\(t2\) reads")
    rows: list[dict[str, Any]] = []
    for band_set, bands in SENTINEL2_BAND_SETS.items():
        model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=bands, ratio=3)
        for group in ("calibration", "held_out", "evaluation_only"):
            for name, case in cases(group, model):
                rows.extend(run_case(group, name, case, band_set, rng, args.pixels))

    cal_rows = [r for r in rows if r["group"] == "calibration"]
    keys = sorted({r["key"] for r in rows})
    entries, fits = {}, {}
    for key in [*keys, DEFAULT_KEY]:
        use = cal_rows if key == DEFAULT_KEY else [r for r in cal_rows if r["key"] == key]
        entry, info = fit_entry(*(pooled(use, "sample", f) for f in (*MEASURES, "error")), floor=FLOOR)
        entries[key], fits[key] = entry, info
    provenance = {
        "script": "experiments/uncertainty_calibration.py",
        "command": "python experiments/uncertainty_calibration.py " + " ".join(sys.argv[1:]),
        "protocol": "Wald protocol, temporal change SIMULATED; AHSI 166 bands, Sentinel-2A 10-band and 4-band "
                    "sets, ratio 3, estimated physics, good bands only",
        "calibration_cases": sorted({f"{r['band_set']}-band {r['case']}" for r in cal_rows}),
        "samples_per_case_and_method": args.pixels,
        "fit": "Gaussian maximum likelihood of the exponents and scale, then log_scale moved so that 68.27 % of "
               "the calibration samples lie within one standard deviation",
        "fits": fits,
        "measures": {"floor": FLOOR, "sigma_px": SIGMA_PX},
    }
    calibration = Calibration(entries=entries, floor=FLOOR, sigma_px=SIGMA_PX, provenance=provenance)
    args.calibration.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n")
    loaded = load_calibration(args.calibration)

    def cov(rs: list[dict]) -> dict[str, float]:
        e = pooled(rs, "all", "error")
        sd = np.concatenate([sd_of(loaded.entry(r["key"])[1], r["all"]) for r in rs])
        return {"within_1sd": coverage(e, sd, 1.0), "within_2sd": coverage(e, sd, 2.0),
                "rmse": float(np.sqrt(np.mean(e ** 2))), "rms_sd": float(np.sqrt(np.mean(sd ** 2))),
                "pixels": int(e.size)}

    summary: dict[str, Any] = {}
    for group in ("calibration", "held_out", "evaluation_only"):
        for key in keys:
            rs = [r for r in rows if r["group"] == group and r["key"] == key]
            if not rs:
                continue
            per_source: dict[str, Any] = {}
            for src in sorted({r["case"].split("/")[0] for r in rs}):
                per_source[src] = cov([r for r in rs if r["case"].startswith(src + "/")])
            summary.setdefault(group, {})[key] = {"all": cov(rs), "by_source": per_source}
    held_rows = [r for r in rows if r["group"] == "held_out"]
    likelihoods = studies(cal_rows, held_rows, keys)
    per_case = [{k: r[k] for k in ("group", "case", "band_set", "method", "key", "rmse", "seconds")}
                | cov([r]) for r in rows]
    result = {"provenance": provenance, "entries": {k: v.to_dict() for k, v in entries.items()},
              "summary": summary, "studies": likelihoods, "cases": per_case}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    lines = ["| cases | method (calibration entry) | within 1 SD | within 2 SD | RMSE | RMS of SD |",
             "|---|---|---|---|---|---|"]
    for group, per_key in summary.items():
        for key, s in per_key.items():
            a = s["all"]
            lines.append(f"| {group} | {key} | {a['within_1sd']:.1%} | {a['within_2sd']:.1%} | {a['rmse']:.4f} | "
                         f"{a['rms_sd']:.4f} |")
            for src, b in s["by_source"].items():
                lines.append(f"| {group}: {src} | {key} | {b['within_1sd']:.1%} | {b['within_2sd']:.1%} | "
                             f"{b['rmse']:.4f} | {b['rms_sd']:.4f} |")
    table = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(table)
    print(table)
    for key, res in likelihoods.items():
        print(key, "  ".join(f"{k}: {v['held_out_nll']:.4f}" for k, v in res.items()))


if __name__ == "__main__":
    main()
