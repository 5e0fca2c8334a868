"""Writing prepared inputs as the three GeoTIFFs ``dcstsf fuse`` reads as it reads any other."""

from __future__ import annotations

import os
from pathlib import Path

from dcstsf.io import write_raster
from dcstsf.io.errors import input_error
from dcstsf.preparation.prepared import INPUT_NAMES, PreparedInputs

__all__ = ["PREPARED_FILES", "write_prepared"]

#: File name of each prepared input in the output folder.
PREPARED_FILES: dict[str, str] = {name: f"{name}.tif" for name in INPUT_NAMES}


def write_prepared(
    prepared: PreparedInputs, out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> dict[str, Path]:
    """Write ``hs_t1.tif``, ``ms_t1.tif`` and ``ms_t2.tif`` into ``out_dir`` (created when missing).

    Float32 tiled GeoTIFFs through :func:`dcstsf.io.write_raster` (each written to a temporary and renamed into
    place), NaN as nodata, with the band names, ``wavelength``/``fwhm`` band tags and the arrays' attributes as
    tags (``sensor``, ``masked_fraction``, ``footprint``, ``preparation``, HS: ``coregistration``), so
    :func:`dcstsf.io.open_raster` and ``dcstsf fuse`` read them, sensors included, as they are.

    Parameters
    ----------
    prepared
        The result of :func:`~dcstsf.preparation.prepare_products` or :func:`~dcstsf.preparation.prepare_inputs`.
    out_dir
        Output folder.
    overwrite
        Replace existing files of these names; otherwise any of them existing is an error and nothing is
        written.

    Returns
    -------
    dict
        Input name (``"hs_t1"``, ``"ms_t1"``, ``"ms_t2"``) -> written path.

    Raises
    ------
    DcstsfInputError
        ``out_dir`` is a file, or an output exists without ``overwrite``.
    """
    folder = Path(out_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise input_error(folder, "is a file, not a folder", "give a folder for the prepared inputs (-o DIR)")
    paths = {name: folder / PREPARED_FILES[name] for name in INPUT_NAMES}
    existing = [p for p in paths.values() if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise input_error(
            folder,
            f"prepared inputs are already there ({', '.join(p.name for p in existing)}); nothing was written",
            "pass overwrite=True (CLI --overwrite) to replace them, or choose another folder",
        )
    folder.mkdir(parents=True, exist_ok=True)
    arrays = prepared.arrays()
    for name, path in paths.items():
        write_raster(arrays[name], path, overwrite=overwrite)
    return paths
