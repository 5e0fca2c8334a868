"""Do training, scene adaptation and fusion on a CUDA device give the CPU's results within the stated
tolerances? One short script for a machine with a GPU, prepared on one without.

Two steps. Here (CPU): ``prepare`` simulates the demo case from the bundled EnMAP sample (**simulated
change**) and stores it with the CPU's results: the default 10-band DC-STSF fused whole and in tiles,
the same with scene adaptation, and a short training run of the shipped 10-band config on the case's
truth. On the GPU machine: ``run`` repeats each computation on ``--device`` and compares. The reference
is a few MB; with the project's dependencies that the GPU machine's image lacks (rasterio, rioxarray,
pyproj, affine, dask, distributed and their small needs, as wheels) it travels within a device call's
limit.

    python experiments/device_check.py prepare --out .device_check
    python experiments/device_check.py run --ref .device_check --device cuda --out OUT

On a machine whose Python has PyTorch but not every dependency, carry the missing ones as wheels (for its
Python version) in ``.whl`` and run from the repository root:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
    PYTHONPATH=/tmp/site:$PWD python3 experiments/device_check.py run --ref .device_check --device cuda --out OUT

Tolerances (:data:`TOLERANCES`): the two devices sum in other orders, so results agree up to rounding,
which adaptation and training steps amplify. The check fails (exit 1) when one is exceeded; ``--device
cpu`` against a reference made on the same machine gives identical results and checks the script itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dcstsf import metrics
from dcstsf.demo import DEMO_MS_BANDS, demo_case, demo_model
from dcstsf.methods import DCSTSF, fuse_arrays
from dcstsf.operators import ObservationModel
from dcstsf.training.adapt import AdaptOptions

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "dcstsf-ahsi-s2a-10band-sftn-physics-after.yaml"

#: What may differ between the devices: PSNR against the truth (dB), the largest absolute difference of
#: the fused reflectance, and the training loss (relative).
TOLERANCES = {
    "fusion_psnr_db": 0.01,
    "fusion_max_abs": 1e-3,
    "tiled_vs_whole_max_abs": 1e-4,
    "adapted_psnr_db": 0.05,
    "trained_loss_rel": 0.02,
    "trained_psnr_db": 0.1,
}


def _case() -> dict[str, np.ndarray]:
    case = demo_case()
    return {
        "hs_t1": case.hs_t1.values.astype(np.float32), "ms_t1": case.ms_t1.values.astype(np.float32),
        "ms_t2": case.ms_t2.values.astype(np.float32), "truth": case.hs_t2_truth.values.astype(np.float32),
        "hs_y": case.hs_t1["y"].values, "hs_x": case.hs_t1["x"].values,
        "ms_y": case.ms_t1["y"].values, "ms_x": case.ms_t1["x"].values,
        "crs": np.array(str(case.ms_t1.rio.crs)),
    }


def _tiled(case: dict[str, np.ndarray], method: DCSTSF, model: ObservationModel, chunk: int) -> np.ndarray:
    """The engine's tiled fusion of the case (Dask), in ``chunk``-pixel tiles."""
    import rioxarray  # noqa: F401 - the .rio accessor
    import xarray as xr

    from dcstsf.engine import fuse

    def da(name: str, grid: str, bands: dict[str, Any]) -> xr.DataArray:
        coords = {**bands, "y": case[f"{grid}_y"], "x": case[f"{grid}_x"]}
        return xr.DataArray(case[name], dims=("band", "y", "x"), coords=coords).rio.write_crs(str(case["crs"]))

    hs = da("hs_t1", "hs", {"band": list(model.hs_sensor.band_names), "wavelength": ("band", model.hs_sensor.centers_nm)})
    ms = {"band": list(DEMO_MS_BANDS)}
    out = fuse(hs, da("ms_t1", "ms", ms), da("ms_t2", "ms", ms), method=method, chunk=chunk, physics="tables")
    return np.asarray(out.values, np.float32)


def _train(case: dict[str, np.ndarray], steps: int, device: str, where: Path) -> tuple[float, DCSTSF]:
    """``steps`` steps of the shipped 10-band config on the case's truth; the last logged loss and the net."""
    import xarray as xr

    from dcstsf.training.loop import load_config, train

    cfg = load_config(CONFIG)
    cfg["train"].update(steps=steps, warmup=min(10, steps), checkpoint_every=max(steps, 1))
    # the truth at t2 (AHSI bands) serves as the one training scene: both devices train on the same
    scene = xr.DataArray(case["truth"], dims=("band", "y", "x"),
                         coords={"wavelength": ("band", demo_model().hs_sensor.centers_nm)})
    final = train(cfg, output=where, scenes=[scene], progress=False, device=device)
    rows = (where / "loss.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    loss = float(rows[-1].split(",")[header.index("loss")])
    return loss, DCSTSF(weights=final, device=device)


def compute(case: dict[str, np.ndarray], *, device: str, adapt_steps: int, train_steps: int,
            chunk: int) -> dict[str, Any]:
    """Every result the check compares, computed on ``device``, with each part's wall time."""
    model = demo_model()
    out: dict[str, Any] = {"device": device, "arrays": {}, "seconds": {}}
    args = (case["hs_t1"], case["ms_t1"], case["ms_t2"])

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        value = fn()
        out["seconds"][name] = round(time.perf_counter() - t0, 2)
        return value

    out["arrays"]["fused"] = timed("fusion", lambda: fuse_arrays(*args, method=DCSTSF(device=device), model=model))
    out["arrays"]["tiled"] = timed("tiled", lambda: _tiled(case, DCSTSF(device=device), model, chunk))
    adapted = DCSTSF(device=device, adapt=AdaptOptions(steps=adapt_steps))
    out["arrays"]["adapted"] = timed("adaptation", lambda: fuse_arrays(*args, method=adapted, model=model))
    with tempfile.TemporaryDirectory() as tmp:
        loss, net = timed("training", lambda: _train(case, train_steps, device, Path(tmp) / "run"))
        out["train_loss"] = loss
        out["arrays"]["trained"] = fuse_arrays(*args, method=net, model=model)
    out["psnr"] = {k: float(metrics.psnr(v, case["truth"])) for k, v in out["arrays"].items()}
    return out


def compare(ref: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, float | bool]]:
    """Each tolerance's measured value and whether it holds."""
    a, b = ref["arrays"], new["arrays"]
    measured = {
        "fusion_psnr_db": abs(new["psnr"]["fused"] - ref["psnr"]["fused"]),
        "fusion_max_abs": float(np.nanmax(np.abs(a["fused"] - b["fused"][:, ::REFERENCE_STRIDE, ::REFERENCE_STRIDE]))),
        "tiled_vs_whole_max_abs": float(np.nanmax(np.abs(b["tiled"] - b["fused"]))),
        "adapted_psnr_db": abs(new["psnr"]["adapted"] - ref["psnr"]["adapted"]),
        "trained_loss_rel": abs(new["train_loss"] - ref["train_loss"]) / abs(ref["train_loss"]),
        "trained_psnr_db": abs(new["psnr"]["trained"] - ref["psnr"]["trained"]),
    }
    return {k: {"value": v, "tolerance": TOLERANCES[k], "ok": bool(v <= TOLERANCES[k])} for k, v in measured.items()}


#: Every how many fine pixels the stored reference keeps the fused output, in each direction.
REFERENCE_STRIDE = 4


def _save(path: Path, result: dict[str, Any], case: dict[str, np.ndarray]) -> None:
    """The case and the CPU's results: PSNRs, loss and times as JSON, and the fused output on a lattice of
    every :data:`REFERENCE_STRIDE`-th pixel (a few MB in all, so that the reference travels)."""
    path.mkdir(parents=True, exist_ok=True)
    fused = result["arrays"]["fused"][:, ::REFERENCE_STRIDE, ::REFERENCE_STRIDE]
    np.savez_compressed(path / "reference.npz", fused=fused, **{f"case_{k}": v for k, v in case.items()})
    (path / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "arrays"}, indent=2))


def _load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    result = json.loads((path / "result.json").read_text())
    with np.load(path / "reference.npz") as z:
        case = {k[5:]: z[k] for k in z.files if k.startswith("case_")}
        result["arrays"] = {"fused": z["fused"]}
    return case, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    prep = sub.add_parser("prepare", help="the case and the CPU's results (run here)")
    prep.add_argument("--out", type=Path, required=True)
    run = sub.add_parser("run", help="the same on --device, compared with the CPU's results")
    run.add_argument("--ref", type=Path, required=True)
    run.add_argument("--device", default="cuda")
    run.add_argument("--out", type=Path, required=True)
    for p in (prep, run):
        p.add_argument("--adapt-steps", type=int, default=20)
        p.add_argument("--train-steps", type=int, default=100)
        p.add_argument("--chunk", type=int, default=96)
    args = parser.parse_args(argv)
    if args.step == "prepare":
        case = _case()
        result = compute(case, device="cpu", adapt_steps=args.adapt_steps, train_steps=args.train_steps,
                         chunk=args.chunk)
        result["options"] = {"adapt_steps": args.adapt_steps, "train_steps": args.train_steps, "chunk": args.chunk}
        _save(args.out, result, case)
        print(json.dumps({"psnr": result["psnr"], "seconds": result["seconds"]}, indent=2))
        return 0
    case, ref = _load(args.ref)
    opts = ref["options"]
    new = compute(case, device=args.device, adapt_steps=opts["adapt_steps"], train_steps=opts["train_steps"],
                  chunk=opts["chunk"])
    checks = compare(ref, new)
    report = {"device": args.device, "reference_device": ref["device"], "options": opts, "checks": checks,
              "psnr": {"reference": ref["psnr"], "device": new["psnr"]},
              "seconds": {"reference": ref["seconds"], "device": new["seconds"]}}
    if args.device != "cpu":
        import torch

        report["gpu"] = torch.cuda.get_device_name(0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "device_check.json").write_text(json.dumps(report, indent=2))
    for name, c in checks.items():
        print(f"{name:24s} {c['value']:.3g} (tolerance {c['tolerance']:g}) {'ok' if c['ok'] else 'EXCEEDED'}")
    print(json.dumps(report["seconds"]))
    return 0 if all(c["ok"] for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
