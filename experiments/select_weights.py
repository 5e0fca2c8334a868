"""Choose between candidate DC-STSF checkpoints on the training domain only (never the evaluation scenes).

Two validation sets, both simulated from the EnMAP Potsdam block (the training scene):

- ``enmap``: the block itself, change models ``mixed`` and ``abrupt``, unseen seeds 1000+;
- ``enmap-spectral-shift``: the block multiplied by a smooth random spectral gain
  ``exp(0.3 g(lambda) + b)`` (seeds 5000+, the same curves for every candidate): a synthetic
  "other scene" whose spectra, and so whose fitted subspace, differ from the training block's. It
  measures how much a model depends on the training scene's spectral basis. A model trained with
  ``data.spectral_augment`` has seen such curves (other draws), so this set favours it; it is a
  proxy for transfer, not a substitute for the evaluation-only scenes.

Rule, declared before the comparison was run: the candidate with the highest mean PSNR over both
sets is shipped (SAM breaks a tie within 0.05 dB). **Temporal change is simulated.**

    python experiments/select_weights.py --bands 10 shipped runs/v2/10band/final.pt

Writes ``experiments/results/select_weights_<bands>band.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import xarray as xr
from ablation import score

from dcstsf import datasets
from dcstsf.methods import DCSTSF
from dcstsf.operators import ObservationModel
from dcstsf.sensors import SENTINEL2_BAND_SETS
from dcstsf.simulate import resample_to_sensor, simulate_case, smooth_spectral_curve

HERE = Path(__file__).parent


def spectral_shift(cube: xr.DataArray, seed: int, amplitude: float = 0.3) -> xr.DataArray:
    """``cube`` times a smooth random spectral gain (the validation's synthetic other scene)."""
    rng = np.random.default_rng(seed)
    curve = smooth_spectral_curve(rng, cube["wavelength"].values.astype(float))
    gain = np.exp(amplitude * curve + rng.uniform(-amplitude, amplitude) / 2)
    return cube * xr.DataArray(gain.astype(np.float32), dims=("band",))


def validation_cases(model: ObservationModel) -> dict[str, list]:
    block = resample_to_sensor(datasets.load_enmap_potsdam_block(), model.hs_sensor)
    changes = ("mixed", "abrupt")
    return {
        "enmap": [simulate_case(block, model=model, change=c, seed=1000 + s) for c in changes for s in range(2)],
        "enmap-spectral-shift": [
            simulate_case(spectral_shift(block, 5000 + s), model=model, change=c, seed=1100 + s)
            for c in changes for s in range(2)
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidates", nargs="+", help="checkpoint paths, or 'shipped' for the installed weights")
    ap.add_argument("--bands", choices=sorted(SENTINEL2_BAND_SETS), default="10")
    args = ap.parse_args()
    model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=SENTINEL2_BAND_SETS[args.bands], ratio=3)
    sets = validation_cases(model)
    results: dict[str, dict[str, object]] = {}
    for cand in args.candidates:
        meth = DCSTSF() if cand == "shipped" else DCSTSF(weights=cand)
        meth.network(model)
        per_set = {name: score(meth, cases, model) for name, cases in sets.items()}
        mean_psnr = float(np.mean([r["psnr"] for r in per_set.values()]))
        mean_sam = float(np.mean([r["sam_deg"] for r in per_set.values()]))
        results[cand] = {"sets": per_set, "mean_psnr": mean_psnr, "mean_sam_deg": mean_sam,
                         "weights_sha256": meth.identity().get("weights_sha256"),
                         "unit_space": meth.network(model).config.unit_space}
        print(cand, json.dumps(results[cand], indent=1), flush=True)
    best = max(results, key=lambda k: (round(float(results[k]["mean_psnr"]) / 0.05), -float(results[k]["mean_sam_deg"])))
    out = {
        "protocol": "EnMAP Potsdam block (training scene), unseen seeds; plus the same block under smooth random "
                    "spectral gains. Temporal change SIMULATED. Evaluation-only scenes not used.",
        "rule": "highest mean PSNR over both sets; SAM breaks ties within 0.05 dB",
        "bands": args.bands, "results": results, "chosen": best,
    }
    (HERE / "results").mkdir(exist_ok=True)
    path = HERE / "results" / f"select_weights_{args.bands}band.json"
    path.write_text(json.dumps(out, indent=2))
    print("chosen:", best, "->", path)


if __name__ == "__main__":
    main()
