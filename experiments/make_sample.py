"""Build ``dcstsf/data/enmap_potsdam_sample.tif``, the EnMAP sample bundled with dcstsf.

Source: the 8 EnMAP L2A Potsdam tiles ``enmap_potsdam_tile_{160,192}_{64,96,128,160}.tif`` in the shared
data folder (EnMAP-Box test data, crops of the EnMAP-Box example scene ``enmap_potsdam.tif``; see
``data/README.md``). They are mosaicked by ``dcstsf.datasets.load_enmap_potsdam_block`` into the
64 columns x 128 rows block, all 224 bands kept.

Storage: int16 digital numbers with the source's L2A band scale and offset recorded as GDAL band
scales/offsets (so ``dcstsf.io.open_raster`` reads reflectance back), the source's nodata value,
per-band wavelength/fwhm/bbl tags, band descriptions ``B001``..``B224``, CRS and transform, DEFLATE
with horizontal predictor, tiled. The scale, offset and nodata are read from the source tiles, never
typed in here.

Usage::

    .venv/bin/python experiments/make_sample.py [--shared-data DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio

from dcstsf.datasets import ENMAP_BLOCK_TILES, bundled_sample_path, load_enmap_potsdam_block, shared_data_dir
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster, write_raster

__all__ = ["main", "make_sample"]

_MAX_BYTES = 5 * 1024 * 1024


def _source_encoding(tiles_dir: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-band scale, offset and the nodata value of the source tiles (all must agree)."""
    seen: set[tuple[tuple[float, ...], tuple[float, ...], float]] = set()
    for col, row in ENMAP_BLOCK_TILES:
        with rasterio.open(tiles_dir / f"enmap_potsdam_tile_{col}_{row}.tif") as src:
            nodata = src.nodatavals[0]
            if nodata is None or len(set(src.nodatavals)) != 1:
                raise DcstsfInputError(f"{src.name}: expected one nodata value for all bands")
            seen.add((tuple(src.scales), tuple(src.offsets), float(nodata)))
    if len(seen) != 1:
        raise DcstsfInputError(f"{tiles_dir}: the block's tiles disagree on scale/offset/nodata")
    scales, offsets, nodata = seen.pop()
    return np.asarray(scales), np.asarray(offsets), nodata


def make_sample(shared: Path | None = None, out: Path | None = None) -> Path:
    """Write the bundled sample and check it reads back equal to the block; returns its path."""
    shared = shared or shared_data_dir()
    out = out or bundled_sample_path()
    tiles_dir = shared / "enmap_potsdam" / "tiles"
    scales, offsets, nodata = _source_encoding(tiles_dir)
    block = load_enmap_potsdam_block(shared, drop_bad_bands=False)
    block.attrs.update(
        {
            "source": "EnMAP-Box test tiles enmap_potsdam_tile_{160,192}_{64,96,128,160}.tif "
            "(EnMAP-Box/enmap-box @f9e8f48), crops of the EnMAP-Box example scene enmap_potsdam.tif",
            "scene": "EnMAP L2A ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z",
            "licence_note": "EnMAP data (c) DLR, distributed with the EnMAP-Box (GPL-3) example data",
            "made_by": "experiments/make_sample.py",
        }
    )
    # 32 x 32 tiles: the 64 x 128 block then really is tiled (one 64 x 128 tile would read as a strip).
    write_raster(
        block, out, overwrite=True, dtype="int16", scale=scales, offset=offsets, nodata=nodata, blocksize=32
    )

    back = open_raster(out)
    same_nan = np.array_equal(np.isnan(back.values), np.isnan(block.values))
    diff = float(np.nanmax(np.abs(back.values - block.values)))
    if not same_nan or diff > float(np.max(scales)) / 2 + 1e-7:
        raise RuntimeError(f"{out}: read-back differs from the block (max |diff| {diff}, nodata match {same_nan})")
    if out.stat().st_size > _MAX_BYTES:
        raise RuntimeError(f"{out}: {out.stat().st_size} bytes, over the {_MAX_BYTES}-byte budget")
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-data", type=Path, default=None, help="shared data folder (default: auto)")
    ap.add_argument("--out", type=Path, default=None, help="output path (default: the package's data folder)")
    args = ap.parse_args(argv)
    out = make_sample(args.shared_data, args.out)
    with rasterio.open(out) as src:
        print(f"{out}: {out.stat().st_size} bytes, {src.count} bands, {src.height} x {src.width}, {src.dtypes[0]}, "
              f"scale {src.scales[0]}, nodata {src.nodata}, {src.crs}, compress {src.compression}")


if __name__ == "__main__":
    main()
