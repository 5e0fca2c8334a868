"""Where DC-STSF's error comes from: an error budget of the fused HS(t2), per case.

Each case is fused with physics estimated from the case (:func:`dcstsf.diagnosis.diagnose_scene`) by two
networks: ``dcstsf`` as shipped (its weights for the band set, the manifest's defaults) and the
physics-only network of the default architecture (``dcstsf-physics-only-1stage``: learned units at zero,
one SSJE stage). For each, with ``x1``, ``x2`` the truths at t1 and t2 and ``e1``, ``e2`` the network's HS(t1)
(SSJE) and HS(t2) estimates (:meth:`dcstsf.methods.DCSTSF.estimates`), PSNR (dB) of:

- ``fused``: ``e2`` against ``x2`` (and its SAM, degrees);
- ``hs_t1``: ``e1`` against ``x1``: SSJE's sharpening of HS(t1) (also what ``e1 + (x2 - x1)``, this SSJE
  with a perfect temporal part, scores against ``x2``);
- ``best_linear_t1``: ``A MS(t1) + b`` against ``x1``, ``A, b`` the least-squares affine map from the fine
  MS(t1) to the true HS(t1) over the whole case: fitted on the truth, the best a per-scene spectral
  regression can sharpen HS(t1);
- ``perfect_t1``: ``x1 + (e2 - e1)`` against ``x2``: this temporal part on a perfect HS(t1);
- ``best_linear_change``: ``e1 + A dMS + b`` against ``x2``, ``A, b`` the least-squares affine map from
  the MS change to the true HS change ``x2 - x1`` over the whole case. It is fitted on the truth, so no
  method can have it: the change a temporal part could add at best if it carries the MS change into HS
  by one affine map per scene (TVE's map is of that kind; SFTN adds a gate and a correction). It corrects
  nothing of ``e1``, which TVE's consistency steps on MS(t2) partly do;
- ``subspace``: ``x2`` projected onto the scene's rank-p PCA basis of HS(t1) against ``x2``: the ceiling of an
  output in that subspace (DC-STSF's);
- ``no_change``: ``x1`` against ``x2``: how much the scene changed.

Cases (Wald protocol, ZY-1 02D AHSI 166 bands, Sentinel-2A, ratio 3, **temporal change simulated**):
``real``: the real-spectra validation blocks (those of :func:`dcstsf.training.validation.real_spectra_cases`)
with the changes ``--changes`` at seed 0; ``library``: the library validation scenes
(:func:`dcstsf.training.synthetic.validation_cases`, seed 0, their own land-cover, LAI and radiometric
change); ``evaluation``: the evaluation-only scenes (:func:`dcstsf.datasets.load_evaluation_scenes`) with
``--changes`` at seed 0, reported only: nothing is chosen on them.

    python experiments/error_budget.py [--bands 10|4] [--changes mixed,abrupt,phenology,radiometric]
        [--library-cases 4] [--out experiments/results/error_budget_10band.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dcstsf import datasets, metrics
from dcstsf.diagnosis import DiagnosisOptions, diagnose_scene
from dcstsf.methods import DCSTSF, fit_scene
from dcstsf.models.network import DCSTSFConfig
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import apply_spectral_map, fit_spectral_map
from dcstsf.sensors import SENTINEL2_BAND_SETS
from dcstsf.simulate import FusionCase, simulate_case
from dcstsf.training.synthetic import validation_cases

#: The budget's terms, in the order of the tables.
TERMS = ("fused", "hs_t1", "best_linear_t1", "perfect_t1", "best_linear_change", "subspace", "no_change")


def networks(model: ObservationModel) -> dict[str, DCSTSF]:
    """The default DC-STSF as shipped and the physics-only network of the default architecture."""
    return {"dcstsf": DCSTSF(), "dcstsf-physics-only-1stage": DCSTSF.untrained(DCSTSFConfig(n_ms=model.n_ms))}


def cases(model: ObservationModel, changes: list[str], library_cases: int) -> Iterator[tuple[str, str, FusionCase]]:
    """``(group, name, case)`` for the real-spectra, library and evaluation-only cases."""
    blocks = {name: datasets.load_enmap_potsdam_block(tiles=tiles) for name, tiles in datasets.ENMAP_HELD_OUT_BLOCKS.items()}
    for change in changes:  # with "mixed" and "abrupt": the real-spectra validation cases at seed 0
        for name, cube in blocks.items():
            yield "real", f"{name}/{change}", simulate_case(cube, model=model, change=change, seed=0)
    for i, case in enumerate(validation_cases(model=model, n_cases=library_cases, seed=0, size=96)):
        yield "library", f"validation_library_{i}", case
    for name, cube in datasets.load_evaluation_scenes().items():
        for change in changes:
            yield "evaluation", f"{name}/{change}", simulate_case(cube, model=model, change=change, seed=0)


def best_affine_map(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares affine map from ``source`` ``(n_ms, y, x)`` to ``target`` ``(n_hs, y, x)`` over all
    pixels (the engine's :func:`~dcstsf.scene_stats.fit_spectral_map`, unregularised), applied to ``source``."""
    flat_source = source.reshape(source.shape[0], -1).T.astype(np.float64)
    flat_target = target.reshape(target.shape[0], -1).T.astype(np.float64)
    return apply_spectral_map(fit_spectral_map(flat_source, flat_target, ridge=0.0), source)


def subspace_projection(x: np.ndarray, fitted: dict) -> np.ndarray:
    """``x`` projected onto the scene's PCA subspace, in the fitted state's normalisation."""
    basis = np.asarray(fitted["basis"], np.float64)
    mu = np.asarray(fitted["mu"], np.float64)[:, None, None]
    scale = float(np.asarray(fitted["scale"]))
    coef = np.einsum("bp,byx->pyx", basis, (x - mu) / scale)
    return (np.einsum("bp,pyx->byx", basis, coef) * scale + mu).astype(np.float32)


def budget(method: DCSTSF, case: FusionCase, estimated: ObservationModel) -> dict[str, float]:
    """The budget's PSNRs (and the fused SAM) of ``method`` on ``case`` with the physics ``estimated`` from it."""
    hs, ms1, ms2 = (np.asarray(a, np.float32) for a in case.arrays())
    fitted = fit_scene(method, hs, ms1, ms2, model=estimated)
    out = method.estimates(hs, ms1, ms2, model=estimated, fitted=fitted, outputs=("hs_t1", "hs_t2"))
    e1, e2 = out["hs_t1"], out["hs_t2"]
    x1, x2 = case.hs_t1_truth.values, case.hs_t2_truth.values
    candidates = {
        "fused": e2, "hs_t1": e1, "best_linear_t1": best_affine_map(ms1, x1), "perfect_t1": x1 + (e2 - e1),
        "best_linear_change": e1 + best_affine_map(ms2 - ms1, x2 - x1),
        "subspace": subspace_projection(x2, fitted), "no_change": x1,
    }
    scores = {k: metrics.psnr(v, x1 if k in ("hs_t1", "best_linear_t1") else x2) for k, v in candidates.items()}
    scores["fused_sam_deg"] = metrics.sam(e2, x2)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bands", choices=sorted(SENTINEL2_BAND_SETS), default="10")
    ap.add_argument("--changes", default="mixed,abrupt,phenology,radiometric")
    ap.add_argument("--library-cases", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(__file__).parent / "results" / f"error_budget_{args.bands}band.json"
    model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=SENTINEL2_BAND_SETS[args.bands], ratio=3)
    methods = networks(model)
    records = []
    for group, name, case in cases(model, args.changes.split(","), args.library_cases):
        # once per case, as fuse_arrays(physics="estimated") diagnoses (the checks do not change the model)
        estimated = diagnose_scene(*case.arrays(), model=model, options=DiagnosisOptions(checks=False)).model
        for label, method in methods.items():
            rec = {"group": group, "case": name, "method": label, **budget(method, case, estimated)}
            records.append(rec)
            print(f"{group:10s} {name:38s} {label:27s} " + " ".join(f"{t} {rec[t]:6.2f}" for t in TERMS), flush=True)
    summary: dict = {}
    for group in dict.fromkeys(r["group"] for r in records):
        for kind in dict.fromkeys(r["case"].split("/")[-1] if group != "library" else "library"
                                  for r in records if r["group"] == group):
            for label in methods:
                rows = [r for r in records if r["group"] == group and r["method"] == label
                        and (group == "library" or r["case"].endswith("/" + kind))]
                summary.setdefault(group, {}).setdefault(kind, {})[label] = {
                    k: float(np.mean([r[k] for r in rows])) for k in (*TERMS, "fused_sam_deg")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "protocol": "Wald protocol, ZY-1 02D AHSI with Sentinel-2A at ratio 3, physics estimated per case; "
                    "temporal change SIMULATED; evaluation-only scenes reported, nothing chosen on them",
        "ms_bands": SENTINEL2_BAND_SETS[args.bands], "changes": args.changes.split(","), "terms": list(TERMS),
        "summary": summary, "records": records,
    }, indent=2))
    lines = ["| cases | change | network | " + " | ".join(TERMS) + " |", "|---|---|---|" + "---|" * len(TERMS)]
    for group, per_kind in summary.items():
        for kind, per_method in per_kind.items():
            for label, row in per_method.items():
                lines.append(f"| {group} | {kind} | {label} | " + " | ".join(f"{row[t]:.2f}" for t in TERMS) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
