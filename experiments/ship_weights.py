"""Install a trained checkpoint as shipped default weights: ``dcstsf/models/weights/<name>.pt``.

Strips nothing but writes a fresh file (config, weights, sensors, normalisation, training record)
and records its SHA-256, MS band set and ratio in ``weights/manifest.json``; ``DCSTSF`` checks the
hash on every load.

    python experiments/ship_weights.py runs/dcstsf-ahsi-s2a-10band-sftn-only/final.pt --name dcstsf-ahsi-s2a-10band \
        --config configs/dcstsf-ahsi-s2a-10band-sftn-only.yaml --adapt-steps 0 \
        --decided-by "experiments/adapt_validation.py --bands 10 --weights ... (rule in docs/results.md)"

``--default-network`` and ``--adapt-steps`` record what the method uses by default for the setup, as the
validation rule of ``docs/results.md`` decided (``dcstsf.models.checkpoint.ShippedWeights``). The shipped
file fuses without HS(t1)'s out-of-subspace remainder (``DCSTSFConfig.keep_remainder``, decided by the same
validation) whatever the training config said; ``--keep-remainder`` keeps it.
"""

from __future__ import annotations

import argparse
import json

from dcstsf.models.checkpoint import WEIGHTS_DIR, load_checkpoint, save_checkpoint


def trained_on(training: dict) -> str:
    """What the weights were trained on, in words, from the training record's config fingerprint."""
    data = json.loads(training.get("fingerprint", "{}")).get("data", {})
    extras = []
    if data.get("pairs"):
        extras.append(f"{data['pairs']} synthetic scene pairs (real-LAI and land-cover change)")
    per_case = []
    if data.get("degradations"):
        per_case.append("randomised sensor physics")
    if data.get("spectral_augment"):
        per_case.append("a random smooth spectral gain")
    text = f"training scenes '{training['scenes']}'"
    if extras:
        text += " plus " + ", ".join(extras)
    if per_case:
        text += ", each case under " + " and ".join(per_case)
    return text + " (resampled to the HS sensor), simulated change"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--name", required=True)
    ap.add_argument("--config", required=True, help="the training config that reproduces the checkpoint")
    ap.add_argument("--default-network", choices=("shipped", "physics-only"), default="shipped")
    ap.add_argument("--adapt-steps", type=int, default=0)
    ap.add_argument("--keep-remainder", action="store_true",
                    help="fuse with HS(t1)'s upsampled out-of-subspace remainder (off: the validated default)")
    ap.add_argument("--decided-by", required=True, help="the validation that chose these defaults")
    args = ap.parse_args()
    payload = load_checkpoint(args.checkpoint)
    keep = {k: payload[k] for k in ("config", "state_dict", "sensors", "normalisation", "training", "step")}
    # the inference configuration: the parameters are the trained ones, the remainder is an inference choice
    keep["config"] = {**keep["config"], "keep_remainder": bool(args.keep_remainder)}
    path = WEIGHTS_DIR / f"{args.name}.pt"
    sha = save_checkpoint(path, keep)
    manifest_path = WEIGHTS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"weights": []}
    manifest["weights"] = [e for e in manifest["weights"] if e["file"] != path.name]
    s = payload["sensors"]
    manifest["weights"].append({
        "file": path.name, "sha256": sha, "hs_sensor": s["hs_sensor"], "ms_sensor": s["ms_sensor"],
        "ms_bands": s["ms_bands"], "ratio": s["ratio"], "steps": payload.get("step"),
        "trained_on": trained_on(payload["training"]),
        "config": args.config,
        "default": {"network": args.default_network, "adapt_steps": args.adapt_steps, "decided_by": args.decided_by},
    })
    manifest["weights"].sort(key=lambda e: e["file"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB) sha256 {sha}")


if __name__ == "__main__":
    main()
