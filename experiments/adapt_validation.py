"""Does scene adaptation help DC-STSF, and do the shipped weights beat the physics-only network, on scenes
of other kinds than the training scene? The rule is stated in ``docs/results.md`` before this was run.

Validation cases: :func:`dcstsf.training.synthetic.validation_cases` (EnMAP land-cover structure, spectra
from the Berlin urban and Gamsberg field libraries, held out of training; real LAI-driven and abrupt
change, **simulated**), ZY-1 02D AHSI with Sentinel-2A at ratio 3, observed through the sensor tables'
physics (``--truth table``), through physics drawn per case (``perturbed``: HS blur, shift and responses,
:class:`dcstsf.training.degradations.DegradationRanges`, another seed than training's) or both. Never
the evaluation-only scenes. ``--truth real``: the real-spectra validation instead (EnMAP Potsdam blocks B
and C, :func:`dcstsf.training.validation.real_spectra_cases`; training tiles of the shipped weights, so it favours learned units).

    python experiments/adapt_validation.py [--bands 10|4] [--cases 8] [--steps 20] [--weights CANDIDATE.pt]
        [--truth table|perturbed|both|real] [--seeds 0,1] [--size 96] [--zoom 1|2|3] [--local-maps RADIUS:RIDGE,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from dcstsf import metrics
from dcstsf.methods import DCSTSF, fuse_arrays, get_method
from dcstsf.models import LocalMapOptions
from dcstsf.models.ms_noise import MsNoiseOptions
from dcstsf.models.network import DCSTSFConfig
from dcstsf.operators import ObservationModel
from dcstsf.sensors import SENTINEL2_BAND_SETS
from dcstsf.training.adapt import AdaptOptions
from dcstsf.training.degradations import DegradationRanges
from dcstsf.training.synthetic import validation_cases
from dcstsf.training.validation import real_spectra_cases

#: DC-STSF without the noise-aware MS consistency steps.
NO_NOISE_STEP = MsNoiseOptions(steps=0)



def variants(
    model: ObservationModel,
    steps: int,
    candidate: Path | None,
    local_maps: list[LocalMapOptions] | None = None,
    physics_configs: list[dict[str, object]] | None = None,
) -> dict[str, object]:
    """Method factories by name: shipped and physics-only DC-STSF (and a candidate checkpoint), each without
    and with adaptation and with HS(t1)'s out-of-subspace remainder, the shipped weights with each windowed
    temporal map of ``local_maps``, the physics-only network with each of ``physics_configs`` (fields of
    :class:`DCSTSFConfig`), and the classical methods."""
    def physics(adapt: int, *, keep_remainder: bool = False, noise: MsNoiseOptions | None = None,
                **fields: object) -> DCSTSF:
        m = DCSTSF.untrained(DCSTSFConfig(n_ms=model.n_ms, keep_remainder=keep_remainder, **fields))
        m.adapt = AdaptOptions(steps=adapt)
        if noise is not None:
            m.ms_noise = noise
        return m

    def shipped_with_remainder() -> DCSTSF:
        """The shipped weights fusing with HS(t1)'s upsampled out-of-subspace remainder."""
        net = DCSTSF(adapt=AdaptOptions(steps=0)).network(model)
        net.config = dataclasses.replace(net.config, keep_remainder=True)
        return DCSTSF(network=net, adapt=AdaptOptions(steps=0))

    out: dict[str, object] = {}
    if candidate is not None:
        out[f"dcstsf {candidate.name}"] = lambda: DCSTSF(weights=candidate, adapt=AdaptOptions(steps=0))
        out[f"dcstsf {candidate.name} + adapt {steps}"] = lambda: DCSTSF(weights=candidate,
                                                                         adapt=AdaptOptions(steps=steps))
    for fields in physics_configs or []:
        label = " ".join(f"{k}={v}" for k, v in fields.items())
        out[f"dcstsf physics-only [{label}]"] = lambda fields=fields: physics(0, **fields)
    for lm in local_maps or []:
        out[f"dcstsf shipped + local {lm.radius}/{lm.ridge:g}"] = (
            lambda lm=lm: DCSTSF(adapt=AdaptOptions(steps=0), local_map=lm))
    return {
        **out,
        "dcstsf shipped": lambda: DCSTSF(adapt=AdaptOptions(steps=0)),
        "dcstsf shipped - noise step": lambda: DCSTSF(adapt=AdaptOptions(steps=0), ms_noise=NO_NOISE_STEP),
        "dcstsf shipped + remainder": shipped_with_remainder,
        f"dcstsf shipped + adapt {steps}": lambda: DCSTSF(adapt=AdaptOptions(steps=steps)),
        "dcstsf physics-only": lambda: physics(0),
        "dcstsf physics-only - noise step": lambda: physics(0, noise=NO_NOISE_STEP),
        "dcstsf physics-only + remainder": lambda: physics(0, keep_remainder=True),
        f"dcstsf physics-only + adapt {steps}": lambda: physics(steps),
        "variational": lambda: get_method("variational"),
        "two-step": lambda: get_method("two-step"),
    }


def parse_fields(text: str) -> dict[str, object]:
    """``"stages=1,rank=10"`` as ``{"stages": 1, "rank": 10}``; each value is read as YAML, as in a config."""
    import yaml

    known = {f.name for f in dataclasses.fields(DCSTSFConfig)}
    fields: dict[str, object] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in known or not value:
            raise SystemExit(f"--physics-configs: {item!r} is not FIELD=VALUE with a DCSTSFConfig field")
        fields[name] = yaml.safe_load(value)
    return fields


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bands", choices=sorted(SENTINEL2_BAND_SETS), default="10")
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--weights", type=Path, default=None, help="a candidate checkpoint to compare as well")
    ap.add_argument("--truth", choices=("table", "perturbed", "both", "real"), default="table",
                    help="library validation under the tables' or perturbed physics (or both), or the real-spectra "
                         "validation (EnMAP blocks B and C, training tiles of the shipped weights)")
    ap.add_argument("--variants", default=None,
                    help="comma-separated names of the variants to run (default: all); with --merge the records "
                         "join those already in --out")
    ap.add_argument("--seeds", default="0,1",
                    help="change seeds of the real-spectra cases, comma-separated (default 0,1)")
    ap.add_argument("--library-seed", type=int, default=0,
                    help="seed of the library validation's scenes (default 0)")
    ap.add_argument("--size", type=int, default=96, help="scene size, fine pixels (default 96)")
    ap.add_argument("--zoom", type=int, default=None,
                    help="upsampling of the 30 m land-cover labels in the scenes (default: 2 or 3 at random)")
    ap.add_argument("--local-maps", default=None,
                    help="windowed temporal maps to try with the shipped weights, as RADIUS:RIDGE,... (coarse pixels)")
    ap.add_argument("--physics-configs", default=None,
                    help="physics-only networks with other architecture fields, as FIELD=VALUE[,FIELD=VALUE];... "
                         "(e.g. 'stages=1;rank=10')")
    ap.add_argument("--merge", action="store_true", help="keep the records of other variants already in --out")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    suffix = "" if args.truth == "table" else f"_{args.truth}"
    if args.size != 96:
        suffix += f"_{args.size}"
    if args.zoom is not None:
        suffix += f"_zoom{args.zoom}"
    if args.library_seed != 0 and args.truth != "real":
        suffix += f"_libseed{args.library_seed}"
    seeds = tuple(int(v) for v in args.seeds.split(","))
    if args.truth == "real" and seeds != (0, 1):
        suffix += "_seeds" + "".join(str(v) for v in seeds)
    out = args.out or Path(__file__).parent / "results" / f"adapt_validation_{args.bands}band{suffix}.json"
    model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=SENTINEL2_BAND_SETS[args.bands], ratio=3)
    cases = []
    if args.truth in ("table", "both"):
        cases += [("table", c) for c in validation_cases(model=model, n_cases=args.cases, seed=args.library_seed, size=args.size,
                                                           zoom=args.zoom)]
    if args.truth in ("perturbed", "both"):
        cases += [("perturbed", c) for c in validation_cases(model=model, n_cases=args.cases, seed=args.library_seed, size=args.size,
                                                              degradations=DegradationRanges(), zoom=args.zoom)]
    if args.truth == "real":
        cases += [("real", c) for c in real_spectra_cases(model=model, seeds=seeds)]
    local_maps = [LocalMapOptions(int(r), float(k)) for r, k in
                  (item.split(":") for item in args.local_maps.split(","))] if args.local_maps else None
    physics_configs = [parse_fields(item) for item in args.physics_configs.split(";")] if args.physics_configs else None
    chosen = variants(model, args.steps, args.weights, local_maps, physics_configs)
    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",")]
        unknown = [v for v in wanted if v not in chosen]
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; known: {list(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in wanted}
    records = []
    if args.merge and out.exists():
        records = [r for r in json.loads(out.read_text())["records"] if r["method"] not in chosen]
    for i, (truth_kind, case) in enumerate(cases):
        truth = case.hs_t2_truth.values
        for name, make in chosen.items():
            t0 = time.perf_counter()
            pred = fuse_arrays(*case.arrays(), method=make(), model=model, physics="estimated")
            rec = {"case": i, "truth": truth_kind, "method": name, "psnr": metrics.psnr(pred, truth), "sam_deg": metrics.sam(pred, truth),
                   "seconds": time.perf_counter() - t0}
            records.append(rec)
            print(f"case {i} {name:34s} PSNR {rec['psnr']:6.2f}  SAM {rec['sam_deg']:5.2f}  {rec['seconds']:5.1f}s",
                  flush=True)
    names = list(dict.fromkeys(r["method"] for r in records))
    summary = {n: {k: float(np.mean([r[k] for r in records if r["method"] == n])) for k in ("psnr", "sam_deg", "seconds")}
               for n in names}
    for kind in dict.fromkeys(r["truth"] for r in records):
        for n in names:
            rows = [r for r in records if r["method"] == n and r["truth"] == kind]
            if rows:
                summary[n][kind] = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "sam_deg")}
    out.parent.mkdir(parents=True, exist_ok=True)
    protocol = ("real-spectra validation (EnMAP blocks B and C)" if args.truth == "real" else "library validation cases")
    out.write_text(json.dumps({"protocol": f"{protocol}, change SIMULATED", "bands": SENTINEL2_BAND_SETS[args.bands],
                               "cases": args.cases, "library_seed": args.library_seed, "size": args.size, "zoom": args.zoom, "truth": args.truth,
                               "adapt_steps": args.steps, "summary": summary, "records": records}, indent=2))
    lines = [f"| method ({args.bands} bands, {len(cases)} cases, truth {args.truth}) | PSNR (dB) | SAM (deg) | time (s) |", "|---|---|---|---|"]
    lines += [f"| {n} | {m['psnr']:.2f} | {m['sam_deg']:.2f} | {m['seconds']:.1f} |" for n, m in summary.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
