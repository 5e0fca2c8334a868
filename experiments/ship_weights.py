"""Install a trained checkpoint as shipped default weights: ``dcstsf/models/weights/<name>.pt``.

Strips nothing but writes a fresh file (config, weights, sensors, normalisation, training record)
and records its SHA-256, MS band set and ratio in ``weights/manifest.json``; ``DCSTSF`` checks the
hash on every load.

    python experiments/ship_weights.py runs/dcstsf-ahsi-s2a-10band/final.pt --name dcstsf-ahsi-s2a-10band
"""

from __future__ import annotations

import argparse
import json

from dcstsf.models.checkpoint import WEIGHTS_DIR, load_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    payload = load_checkpoint(args.checkpoint)
    keep = {k: payload[k] for k in ("config", "state_dict", "sensors", "normalisation", "training", "step")}
    path = WEIGHTS_DIR / f"{args.name}.pt"
    sha = save_checkpoint(path, keep)
    manifest_path = WEIGHTS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"weights": []}
    manifest["weights"] = [e for e in manifest["weights"] if e["file"] != path.name]
    s = payload["sensors"]
    manifest["weights"].append({
        "file": path.name, "sha256": sha, "hs_sensor": s["hs_sensor"], "ms_sensor": s["ms_sensor"],
        "ms_bands": s["ms_bands"], "ratio": s["ratio"], "steps": payload.get("step"),
        "trained_on": "EnMAP Potsdam tiles (resampled to the HS sensor), simulated change",
    })
    manifest["weights"].sort(key=lambda e: e["file"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB) sha256 {sha}")


if __name__ == "__main__":
    main()
