"""Readers for the real scenes shipped in the shared data folder and the sample bundled with dcstsf.

All readers return float32 DataArrays ``(band, y, x)`` in the conventions of :mod:`dcstsf.io`.

* EnMAP L2A Potsdam tiles (training, tests, demo): :func:`load_enmap_potsdam_tiles`,
  :func:`load_enmap_potsdam_block`, and the same block bundled inside the package,
  :func:`load_bundled_sample` (works without the shared folder).
* Evaluation only -- never train, tune or select checkpoints on these: :func:`load_jasper_ridge`,
  :func:`load_paris`, :func:`load_lake_tahoe_s2`, and the two HS cubes the evaluation simulates its cases
  on, :func:`load_evaluation_scenes`.

The shared folder is found by :func:`shared_data_dir`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster, read_envi

__all__ = [
    "ENMAP_BLOCK_TILES",
    "ENMAP_HELD_OUT_BLOCKS",
    "ENMAP_TILE_SIZE",
    "EVAL_ONLY_NOTE",
    "bundled_sample_path",
    "load_bundled_sample",
    "load_enmap_potsdam_block",
    "load_enmap_potsdam_tiles",
    "load_evaluation_scenes",
    "load_jasper_ridge",
    "load_lake_tahoe_s2",
    "load_paris",
    "shared_data_dir",
]

#: Side of one EnMAP-Box test tile, in pixels.
ENMAP_TILE_SIZE = 32
#: ``(col, row)`` pixel offsets (in the parent scene) of the 8 tiles forming the 64 x 128 block.
ENMAP_BLOCK_TILES: tuple[tuple[int, int], ...] = tuple((c, r) for r in (64, 96, 128, 160) for c in (160, 192))
#: Two blocks of tiles outside :data:`ENMAP_BLOCK_TILES` (the bundled sample), by name: what the
#: uncertainty calibration holds out and the real-spectra validation fuses (``experiments/``). They are
#: training tiles of the shipped weights.
ENMAP_HELD_OUT_BLOCKS: dict[str, tuple[tuple[int, int], ...]] = {
    "enmap_block_B": tuple((c, r) for r in (0, 32) for c in (64, 96, 128)),
    "enmap_block_C": tuple((c, r) for r in (96, 128) for c in (96, 128)),
}
#: Put in the ``attrs`` of evaluation-only scenes.
EVAL_ONLY_NOTE = "evaluation only: never train, tune or select checkpoints on this scene"

_ENMAP_TILE_RE = re.compile(r"^enmap_potsdam_tile_(\d+)_(\d+)\.tif$")
_SAMPLE_NAME = "enmap_potsdam_sample.tif"


def shared_data_dir() -> Path:
    """The shared data folder.

    ``$DCSTSF_SHARED_DATA`` if set; otherwise the first existing of ``<checkout>/../shared/data``
    (next to the repository) and ``/work/shared/data``.

    Raises
    ------
    DcstsfInputError
        If none exists.
    """
    env = os.environ.get("DCSTSF_SHARED_DATA")
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise DcstsfInputError(
                f"{p}: DCSTSF_SHARED_DATA points to a folder that does not exist. "
                "Set it to the shared data folder (the one holding enmap_potsdam/, sensor_tables/, ...)"
            )
        return p
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")]
    for c in candidates:
        if c.is_dir():
            return c
    raise DcstsfInputError(
        f"the shared data folder was not found (looked in {', '.join(str(c) for c in candidates)}). "
        "Set DCSTSF_SHARED_DATA to its location; the bundled sample (load_bundled_sample) needs no shared data"
    )


def _root(root: str | os.PathLike[str] | None) -> Path:
    return shared_data_dir() if root is None else Path(root).expanduser()


def _need(path: Path) -> Path:
    if not path.exists():
        raise DcstsfInputError(
            f"{path}: not found. Check the shared data folder (root= or DCSTSF_SHARED_DATA) holds it"
        )
    return path


# --------------------------------------------------------------------------------------------------
# EnMAP Potsdam
# --------------------------------------------------------------------------------------------------


def _enmap_names(n: int) -> np.ndarray:
    # Same names as the registered "enmap" sensor (dcstsf.sensors), in the same (file) order.
    return np.array([f"B{i + 1:03d}" for i in range(n)], dtype=object)


def _read_enmap_tile(path: Path) -> xr.DataArray:
    da = open_raster(path, require_crs=True)
    if "wavelength" not in da.coords or "bbl" not in da.coords:
        raise DcstsfInputError(f"{path}: EnMAP tile without wavelength/bbl metadata. Use the original tiles")
    return da.assign_coords(band=_enmap_names(da.sizes["band"]))


def _tile_index(tiles_dir: Path) -> list[tuple[int, int, Path]]:
    found = []
    for p in sorted(_need(tiles_dir).iterdir()):
        m = _ENMAP_TILE_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), p))
    if not found:
        raise DcstsfInputError(f"{tiles_dir}: no enmap_potsdam_tile_<col>_<row>.tif files. Check the folder")
    return sorted(found, key=lambda t: (t[1], t[0]))


def _check_parent_offset(da: xr.DataArray, col: int, row: int, origin: tuple[float, float], path: Path) -> None:
    """The tile's transform must put it at pixel (col, row) of the parent scene."""
    t = da.rio.transform()
    res_x, res_y = t.a, -t.e
    exp_x, exp_y = origin[0] + col * res_x, origin[1] - row * res_y
    at_offset = np.isclose(t.c, exp_x, atol=1e-6 * res_x) and np.isclose(t.f, exp_y, atol=1e-6 * res_y)
    if t.b != 0 or t.d != 0 or not at_offset:
        raise DcstsfInputError(
            f"{path}: the tile's transform (origin {t.c}, {t.f}) does not match its name's pixel offset "
            f"(col {col}, row {row} -> expected {exp_x}, {exp_y}). Use the original EnMAP-Box tiles"
        )


def _drop_bad(da: xr.DataArray, drop_bad_bands: bool) -> xr.DataArray:
    if not drop_bad_bands or "bbl" not in da.coords:
        return da
    return da.isel(band=np.flatnonzero(da["bbl"].values > 0))


def load_enmap_potsdam_tiles(
    root: str | os.PathLike[str] | None = None, *, drop_bad_bands: bool = True
) -> list[xr.DataArray]:
    """All 18 EnMAP L2A Potsdam tiles (32 x 32 pixels, 224 bands), for training.

    Each tile is reflectance (the files' band scale applied), CRS EPSG:32633, band names ``B001``...
    ``B224`` (as the ``"enmap"`` sensor), with ``wavelength``/``fwhm``/``bbl`` coordinates and
    ``attrs["tile_col"]``/``attrs["tile_row"]`` = the tile's pixel offset in the parent scene. Every
    transform is checked against that offset.

    Parameters
    ----------
    root
        The shared data folder (default :func:`shared_data_dir`).
    drop_bad_bands
        Drop the bands flagged bad (``bbl == 0``: the six all-nodata water-vapour bands).
    """
    tiles = _tile_index(_root(root) / "enmap_potsdam" / "tiles")
    out = []
    origin: tuple[float, float] | None = None
    for col, row, path in tiles:
        da = _read_enmap_tile(path)
        t = da.rio.transform()
        if origin is None:
            origin = (t.c - col * t.a, t.f - row * t.e)
        _check_parent_offset(da, col, row, origin, path)
        da.attrs.update({"tile_col": col, "tile_row": row, "source_file": path.name})
        out.append(_drop_bad(da, drop_bad_bands))
    return out


def load_enmap_potsdam_block(
    root: str | os.PathLike[str] | None = None,
    *,
    tiles: Iterable[tuple[int, int]] = ENMAP_BLOCK_TILES,
    drop_bad_bands: bool = True,
) -> xr.DataArray:
    """An EnMAP L2A block mosaicked from Potsdam tiles: by default the 64 columns x 128 rows of 8 tiles.

    The tiles ``enmap_potsdam_tile_<col>_<row>.tif`` are placed by their own transforms (checked against
    the ``<col>_<row>`` offsets in their names), giving a gap-free 30 m block in UTM 33N (EPSG:32633). The
    default block, :data:`ENMAP_BLOCK_TILES`, has its top-left corner at parent-scene pixel (160, 64).

    Parameters
    ----------
    root
        The shared data folder (default :func:`shared_data_dir`).
    tiles
        The tiles' parent offsets ``(col, row)``; together they must cover a rectangle without gaps.
    drop_bad_bands
        Drop the bands flagged bad (``bbl == 0``: the six all-nodata water-vapour bands).

    Returns
    -------
    xarray.DataArray
        float32 reflectance ``(band, rows, cols)`` (``(band, 128, 64)`` by default): 224 bands, or 218 with
        ``drop_bad_bands`` (the six bands with ``bbl == 0`` are all nodata, i.e. NaN). Coordinates
        ``wavelength``, ``fwhm`` (nm) and ``bbl``; ``attrs["block_parent_col"]``/``["block_parent_row"]``
        the top-left corner in the parent scene.
    """
    tiles_dir = _root(root) / "enmap_potsdam" / "tiles"
    wanted = {(int(c), int(r)) for c, r in tiles}
    if not wanted:
        raise DcstsfInputError("tiles is empty: give the (col, row) offsets of the block's EnMAP tiles")
    found = {(c, r): p for c, r, p in _tile_index(tiles_dir) if (c, r) in wanted}
    missing = sorted(wanted - set(found))
    if missing:
        raise DcstsfInputError(
            f"{tiles_dir}: tiles {[f'enmap_potsdam_tile_{m[0]}_{m[1]}.tif' for m in missing]} are missing. "
            f"The block needs all {len(wanted)} tiles"
        )
    c0, r0 = min(c for c, _ in wanted), min(r for _, r in wanted)
    ncols = max(c for c, _ in wanted) + ENMAP_TILE_SIZE - c0
    nrows = max(r for _, r in wanted) + ENMAP_TILE_SIZE - r0
    first = _read_enmap_tile(found[(c0, r0)])
    t0 = first.rio.transform()
    origin = (t0.c - c0 * t0.a, t0.f - r0 * t0.e)
    nb = first.sizes["band"]
    block = np.full((nb, nrows, ncols), np.nan, dtype=np.float32)
    covered = np.zeros((nrows, ncols), dtype=bool)
    for (col, row), path in sorted(found.items()):
        da = first if (col, row) == (c0, r0) else _read_enmap_tile(path)
        _check_parent_offset(da, col, row, origin, path)
        if da.sizes["band"] != nb or not np.array_equal(da["wavelength"].values, first["wavelength"].values):
            raise DcstsfInputError(f"{path}: band layout differs from the other tiles. Use the original tiles")
        if da.rio.crs != first.rio.crs:
            raise DcstsfInputError(f"{path}: CRS {da.rio.crs} differs from {first.rio.crs}. Use the original tiles")
        t = da.rio.transform()
        # Offsets from the transforms themselves (checked above to equal the names' offsets).
        y0 = int(round((t0.f - t.f) / -t0.e))
        x0 = int(round((t.c - t0.c) / t0.a))
        h, w = da.sizes["y"], da.sizes["x"]
        block[:, y0 : y0 + h, x0 : x0 + w] = da.values
        covered[y0 : y0 + h, x0 : x0 + w] = True
    if not covered.all():
        raise DcstsfInputError(
            f"{tiles_dir}: the {len(wanted)} tiles leave gaps in the block. Give tiles that cover a rectangle"
        )
    xs = t0.c + t0.a * (np.arange(ncols) + 0.5)
    ys = t0.f + t0.e * (np.arange(nrows) + 0.5)
    coords = {
        "band": first["band"].values,
        "wavelength": ("band", first["wavelength"].values, {"units": "nm"}),
        "fwhm": ("band", first["fwhm"].values, {"units": "nm"}),
        "bbl": ("band", first["bbl"].values),
        "y": ys,
        "x": xs,
    }
    attrs = {k: v for k, v in first.attrs.items() if k != "_FillValue"}
    attrs.update(
        {
            "title": f"EnMAP L2A Potsdam 2022-07-24, {ncols} x {nrows} block of the EnMAP-Box example scene",
            "block_parent_col": c0,
            "block_parent_row": r0,
        }
    )
    out = xr.DataArray(block, dims=("band", "y", "x"), coords=coords, attrs=attrs)
    out = out.rio.write_crs(first.rio.crs).rio.write_transform(t0)
    out.rio.write_nodata(np.nan, encoded=False, inplace=True)
    return _drop_bad(out, drop_bad_bands)


def bundled_sample_path() -> Path:
    """Path of the EnMAP sample GeoTIFF shipped inside the package."""
    return Path(str(resources.files("dcstsf.data") / _SAMPLE_NAME))


def load_bundled_sample(*, drop_bad_bands: bool = True) -> xr.DataArray:
    """The EnMAP Potsdam 64 x 128 block shipped with dcstsf (no shared data needed).

    Same pixels as :func:`load_enmap_potsdam_block` (stored as int16 with the L2A scale recorded as band
    scales, so values agree to that quantisation), all 224 bands, CRS EPSG:32633. Built by
    ``experiments/make_sample.py``; see ``data/README.md``.
    """
    path = bundled_sample_path()
    if not path.is_file():
        raise DcstsfInputError(
            f"{path}: the bundled sample is missing from this installation. Reinstall dcstsf, or rebuild it "
            "with experiments/make_sample.py"
        )
    return _drop_bad(open_raster(path, require_crs=True), drop_bad_bands)


# --------------------------------------------------------------------------------------------------
# evaluation-only scenes
# --------------------------------------------------------------------------------------------------


def load_jasper_ridge(root: str | os.PathLike[str] | None = None) -> xr.DataArray:
    """AVIRIS Jasper Ridge subscene, 198 x 100 x 100 reflectance (evaluation only).

    Evaluation only: never train, tune or select checkpoints on this scene.

    Read with :func:`dcstsf.io.read_envi`; the header's ``reflectance scale factor`` is applied and
    ``wavelength``/``fwhm``/``bbl`` become coordinates. About 20 m pixels. The file has **no CRS** and no map
    info: x/y are pixel coordinates (0.5, 1.5, ...).
    """
    da = read_envi(_need(_root(root) / "jasper_ridge_aviris" / "jasperRidge2_R198.hdr"))
    da.attrs.update(
        {
            "title": "AVIRIS Jasper Ridge subscene (jasperRidge2_R198)",
            "sensor": "AVIRIS",
            "crs_note": "no CRS in the file; x/y are pixel coordinates",
            "usage": EVAL_ONLY_NOTE,
        }
    )
    return da


def load_evaluation_scenes(root: str | os.PathLike[str] | None = None) -> dict[str, xr.DataArray]:
    """The evaluation-only HS cubes, by name, as the evaluation takes them for the fine truth at t1:
    ``"jasper_ridge_aviris"`` (:func:`load_jasper_ridge`) and ``"paris_hyperion"`` (the HS cube of
    :func:`load_paris`, divided by its maximum into [0, 1]: it is radiance-like).

    Evaluation only: never train, tune or select checkpoints on these scenes.
    """
    jasper = load_jasper_ridge(root)
    paris, _ = load_paris(root)
    scaled = paris / float(np.nanmax(paris.values))
    scaled.attrs.update(paris.attrs)
    scaled.attrs["scaling"] = "divided by the cube's maximum"
    scaled.attrs["values_note"] = "radiance-like scaled numbers, not reflectance; divided by the cube's maximum"
    return {"jasper_ridge_aviris": jasper, "paris_hyperion": scaled}


def _hyperion_table(root: Path) -> dict[str, tuple[float, float]]:
    path = _need(root / "sensor_tables" / "Hyperion_Spectral_Coverage_USGS.tab")
    table: dict[str, tuple[float, float]] = {}
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 3 or not re.fullmatch(r"B\d+", parts[0].strip()):
            continue
        table[parts[0].strip()] = (float(parts[1]), float(parts[2]))
    return table


# Hyperion bands covered by each of ALI's nine MS bands, as used by the HySure demo for this scene
# (alfaiate/HySure demos/demo_paris_hs_ms.m); names follow the ALI band designations.
_ALI_BANDS: tuple[tuple[str, int, int], ...] = (
    ("MS-1p", 9, 10),
    ("MS-1", 11, 16),
    ("MS-2", 18, 25),
    ("MS-3", 28, 33),
    ("MS-4", 42, 45),
    ("MS-4p", 49, 53),
    ("MS-5p", 106, 115),
    ("MS-5", 141, 160),
    ("MS-7", 193, 219),
)


def load_paris(root: str | os.PathLike[str] | None = None) -> tuple[xr.DataArray, xr.DataArray]:
    """EO-1 Paris pair: Hyperion ``HSim`` (128 x 72 x 72) and ALI ``MSim`` (9 x 72 x 72) (evaluation only).

    Evaluation only: never train, tune or select checkpoints on this scene.

    Both images are on the same 30 m grid and date (same platform). Values are **radiance-like**
    scaled numbers (HS about 0.001-1.3, MS about 0.07-1.45), not reflectance; they are returned as stored,
    not rescaled. HS bands are named by Hyperion band number (``B8``...) from ``non_del_bands``, with
    ``wavelength``/``fwhm`` from the USGS Hyperion table. MS bands carry ALI names and an *approximate*
    ``wavelength``/``fwhm`` spanning the Hyperion bands each covers (the HySure demo's mapping). No CRS:
    x/y are pixel coordinates.
    """
    from scipy.io import loadmat

    base = _root(root)
    path = _need(base / "paris_hyperion_ali" / "paris_data_hs_ms.mat")
    mat = loadmat(path)
    for key in ("HSim", "MSim", "non_del_bands"):
        if key not in mat:
            raise DcstsfInputError(f"{path}: variable {key!r} missing. Use the original HySure file")
    hs = np.asarray(mat["HSim"], dtype=np.float32).transpose(2, 0, 1)
    ms = np.asarray(mat["MSim"], dtype=np.float32).transpose(2, 0, 1)
    numbers = np.asarray(mat["non_del_bands"]).ravel().astype(int)
    if numbers.size != hs.shape[0]:
        raise DcstsfInputError(f"{path}: non_del_bands has {numbers.size} entries for {hs.shape[0]} bands")
    table = _hyperion_table(base)
    names = [f"B{n}" for n in numbers]
    wl = np.array([table[n][0] for n in names])
    fwhm = np.array([table[n][1] for n in names])
    ny, nx = hs.shape[1:]
    yx = {"y": np.arange(ny) + 0.5, "x": np.arange(nx) + 0.5}
    common = {
        "title": "EO-1 Hyperion/ALI Paris pair (Simoes et al. 2015, dataset C)",
        "values_note": "radiance-like scaled numbers, not reflectance; returned as stored",
        "crs_note": "no CRS in the file; x/y are pixel coordinates",
        "usage": EVAL_ONLY_NOTE,
    }
    hs_da = xr.DataArray(
        hs,
        dims=("band", "y", "x"),
        coords={
            "band": np.array(names, dtype=object),
            "wavelength": ("band", wl, {"units": "nm"}),
            "fwhm": ("band", fwhm, {"units": "nm"}),
            **yx,
        },
        attrs={**common, "sensor": "EO-1 Hyperion"},
    )
    ms_wl, ms_fwhm = [], []
    for _, lo, hi in _ALI_BANDS:
        cov = [table[f"B{i}"] for i in range(lo, hi + 1)]
        lo_nm = min(c[0] - c[1] / 2 for c in cov)
        hi_nm = max(c[0] + c[1] / 2 for c in cov)
        ms_wl.append((lo_nm + hi_nm) / 2)
        ms_fwhm.append(hi_nm - lo_nm)
    if ms.shape[0] != len(_ALI_BANDS):
        raise DcstsfInputError(f"{path}: MSim has {ms.shape[0]} bands, expected {len(_ALI_BANDS)}")
    ms_da = xr.DataArray(
        ms,
        dims=("band", "y", "x"),
        coords={
            "band": np.array([b[0] for b in _ALI_BANDS], dtype=object),
            "wavelength": ("band", np.array(ms_wl), {"units": "nm"}),
            "fwhm": ("band", np.array(ms_fwhm), {"units": "nm"}),
            **yx,
        },
        attrs={
            **common,
            "sensor": "EO-1 ALI (9 MS bands, pan excluded)",
            "band_note": "wavelength/fwhm approximate: the span of the Hyperion bands each ALI band covers "
            "(HySure demo mapping: "
            + "; ".join(f"{n}: B{lo}-B{hi}" for n, lo, hi in _ALI_BANDS)
            + ")",
        },
    )
    return hs_da, ms_da


_TAHOE_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def load_lake_tahoe_s2(root: str | os.PathLike[str] | None = None) -> xr.DataArray:
    """Sentinel-2 MSI image of the Lake Tahoe HS/MS pair, 10 x 100 x 80 reflectance (evaluation only).

    Evaluation only: never train, tune or select checkpoints on this scene.

    Resampled by its publishers onto the AVIRIS grid. Band names ``B02``...``B12`` (B2-B8A, B11, B12) are
    **presumed**: the source does not state them (see ``attrs["band_note"]``). No CRS: x/y are pixel
    coordinates. The matching AVIRIS images are not in the shared folder.
    """
    from scipy.io import loadmat

    path = _need(_root(root) / "lake_tahoe_s2" / "MSI_tahoe_better_registered.mat")
    mat = loadmat(path)
    if "MSI" not in mat:
        raise DcstsfInputError(f"{path}: variable 'MSI' missing. Use the original DIFIV_release file")
    msi = np.asarray(mat["MSI"], dtype=np.float32).transpose(2, 0, 1)
    if msi.shape[0] != len(_TAHOE_BANDS):
        raise DcstsfInputError(f"{path}: MSI has {msi.shape[0]} bands, expected {len(_TAHOE_BANDS)}")
    ny, nx = msi.shape[1:]
    return xr.DataArray(
        msi,
        dims=("band", "y", "x"),
        coords={"band": np.array(_TAHOE_BANDS, dtype=object), "y": np.arange(ny) + 0.5, "x": np.arange(nx) + 0.5},
        attrs={
            "title": "Sentinel-2 MSI, Lake Tahoe (Borsoi et al. HS/MS pair with inter-image variability)",
            "sensor": "Sentinel-2 MSI",
            "band_note": "band names presumed (Sentinel-2 B2-B8A, B11, B12); the source does not state them",
            "crs_note": "no CRS in the file; x/y are pixel coordinates",
            "usage": EVAL_ONLY_NOTE,
        },
    )
