"""Rebuild the sensor data files shipped in ``dcstsf/sensors/data`` from ``../shared/data``.

The package never reads ``shared/``: sensor facts are copied here once, with their provenance
written into each file's header. Run ``python experiments/build_sensor_tables.py`` to rebuild.

Rules applied (and repeated in each file header):
- AHSI water-vapour bands flagged bad: centres in 1330-1480 nm and 1780-1990 nm; low-SNR edges:
  centres below 400 nm or above 2450 nm. VNIR bands above 1000 nm overlap SWIR bands and are
  flagged bad too (the SWIR detector covers them with better SNR).
- Hyperspectral MTF at Nyquist is not published for AHSI, EnMAP or Hyperion in the shared tables;
  0.30 is assumed for all three (typical of spaceborne imaging spectrometers) and marked as an
  assumption. Users with better figures edit the CSV or pass their own Sensor.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TABLES = SHARED / "sensor_tables"
OUT = Path(__file__).resolve().parents[1] / "dcstsf" / "sensors" / "data"
ASSUMED_HS_MTF = 0.30


def _rows(path: Path) -> list[list[str]]:
    with path.open() as f:
        return [r for r in csv.reader(line for line in f if not line.startswith("#"))]


def _water_or_edge(c: float) -> bool:
    return 1330 <= c <= 1480 or 1780 <= c <= 1990 or c < 400 or c > 2450


def write_table(path: Path, header_lines: list[str], columns: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        for h in header_lines:
            f.write(f"# {h}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    columns = ["band", "center_nm", "fwhm_nm", "gsd_m", "mtf_nyquist", "good"]

    # ZY-1 02D AHSI
    rows = _rows(TABLES / "ZY1-02D_AHSI_166_bands.csv")[1:]
    out = []
    for band, det, c, fw in rows:
        c_f = float(c)
        bad = _water_or_edge(c_f) or (det == "VNIR" and c_f > 1000.0)
        out.append([f"B{int(band):03d}", c, fw, 30, ASSUMED_HS_MTF, int(not bad)])
    write_table(OUT / "zy1-02d-ahsi.csv", [
        "ZY-1 02D (ZY1E) AHSI, 166 bands: 1-76 VNIR, 77-166 SWIR; 30 m GSD.",
        "centre/FWHM: shared/data/sensor_tables/ZY1-02D_AHSI_166_bands.csv (Emeric53/MF, from product metadata; not checked against CRESDA).",
        "good=0: water vapour (1330-1480, 1780-1990 nm), low SNR (<400, >2450 nm), VNIR bands >1000 nm overlapping SWIR.",
        f"mtf_nyquist={ASSUMED_HS_MTF}: ASSUMED (not published in the shared tables). Spectral response: Gaussian from FWHM.",
    ], columns, out)

    # EnMAP
    rows = _rows(TABLES / "EnMAP_L2A_224_bands_potsdam_20220724.csv")[1:]
    out = [[f"B{int(b):03d}", c, fw, 30, ASSUMED_HS_MTF, int(bbl)] for b, c, fw, bbl, _s, _o in rows]
    write_table(OUT / "enmap.csv", [
        "EnMAP L2A, 224 bands, 30 m GSD. centre/FWHM/bbl: GDAL metadata of the EnMAP-Box Potsdam tiles (2022-07-24),",
        "copied in shared/data/sensor_tables/EnMAP_L2A_224_bands_potsdam_20220724.csv. good = bbl.",
        f"mtf_nyquist={ASSUMED_HS_MTF}: ASSUMED. Spectral response: tabulated, enmap_srf.json (EnMAP-Box enmap_potsdam_srf.geojson).",
    ], columns, out)
    feats = json.loads((SHARED / "enmap_potsdam" / "enmap_potsdam_srf.geojson").read_text())["features"]
    # The geojson lists responses in WAVELENGTH order (VNIR and SWIR interleave near 900-1000 nm), not
    # in band order: match each band to the feature of the same rank in wavelength, then check centroids.
    centers = np.array([float(r[1]) for r in rows])
    profiles = [f["properties"]["profiles"] for f in feats]
    centroids = np.array([np.dot(p["x"], p["y"]) / np.sum(p["y"]) for p in profiles])
    by_wavelength = np.argsort(centers, kind="stable")
    feature_order = np.argsort(centroids, kind="stable")
    srf = {}
    for band_idx, feat_idx in zip(by_wavelength, feature_order):
        if abs(centroids[feat_idx] - centers[band_idx]) > 2.0:
            raise SystemExit(f"EnMAP band {band_idx + 1}: response centroid {centroids[feat_idx]:.1f} nm "
                             f"does not match centre {centers[band_idx]:.1f} nm")
        p = profiles[feat_idx]
        srf[f"B{band_idx + 1:03d}"] = {"x": p["x"], "y": p["y"]}
    (OUT / "enmap_srf.json").write_text(json.dumps({
        "source": "EnMAP-Box enmapbox/exampledata/enmap_potsdam_srf.geojson (224 features in wavelength order, "
                  "matched to band numbers by wavelength rank; x nm, y relative response)",
        "bands": srf}))

    # Hyperion: keep the table's order (wavelength order, with VNIR/SWIR overlap bands)
    with (TABLES / "Hyperion_Spectral_Coverage_USGS.tab").open() as f:
        lines = [ln.rstrip("\n").split("\t") for ln in f if not ln.startswith("#")][1:]
    out = []
    for parts in lines:
        band, c, fw, gsd = parts[:4]
        not_cal = len(parts) > 4 and parts[4].strip() == "X"
        c_f = float(c)
        out.append([band, c, fw, gsd, ASSUMED_HS_MTF, int(not (not_cal or _water_or_edge(c_f)))])
    out.sort(key=lambda r: int(r[0][1:]))
    write_table(OUT / "hyperion.csv", [
        "EO-1 Hyperion, 242 bands (B1-B70 VNIR, B71-B242 SWIR), 30 m. USGS band table",
        "(shared/data/sensor_tables/Hyperion_Spectral_Coverage_USGS.tab, via pygaarst). Rows in band-number order.",
        "good=0: USGS 'not calibrated', water vapour (1330-1480, 1780-1990 nm), or edges (<400, >2450 nm).",
        f"mtf_nyquist={ASSUMED_HS_MTF}: ASSUMED. Spectral response: Gaussian from FWHM.",
    ], columns, out)

    # Sentinel-2 A/B: SRF tables copied verbatim (1 nm), band table with GSD and MTF
    mtf = {r[0]: r for r in _rows(TABLES / "s2_mtf_nyquist_s2sharp.csv")[1:]}
    for unit in ("A", "B"):
        src = TABLES / f"S2{unit}_MSI_SRF_ESA_v3.0_1nm.csv"
        rows = _rows(src)
        names = rows[0][1:]
        wl = np.array([float(r[0]) for r in rows[1:]])
        resp = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
        out = []
        for j, name in enumerate(names):
            r = resp[:, j]
            c = float((wl * r).sum() / r.sum())
            above = wl[r >= 0.5 * r.max()]
            fw = float(above.max() - above.min() + 1.0)
            gsd, m = (mtf[name][1], mtf[name][2]) if name in mtf else ("60", "0.32")
            out.append([name, f"{c:.2f}", f"{fw:.1f}", gsd, m, 1])
        write_table(OUT / f"sentinel-2{unit.lower()}.csv", [
            f"Sentinel-2{unit} MSI, 13 bands. center_nm = response-weighted mean, fwhm_nm = width at half maximum, from the",
            f"ESA S2-SRF COPE-GSEG-EOPG-TN-15-0007 v3.0 (19 Dec 2017) tables (via pyrsr 0.8.0), sentinel-2{unit.lower()}_srf.csv.",
            "gsd_m and mtf_nyquist: shared/data/sensor_tables/s2_mtf_nyquist_s2sharp.csv (S2Sharp/SupReME, citing ESA);",
            "B10 (cirrus, 60 m) has no MTF figure there: 0.32 of B01 (also 60 m) is used.",
        ], columns, out)
        with src.open() as f, (OUT / f"sentinel-2{unit.lower()}_srf.csv").open("w") as g:
            g.write(f.read())


if __name__ == "__main__":
    main()
