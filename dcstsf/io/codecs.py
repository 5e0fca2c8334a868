"""GeoTIFF compression: one choice of codec, level and predictor, in GDAL's GTiff and COG terms."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dcstsf.io.errors import input_error
from dcstsf.io.metadata import is_integer_dtype

__all__ = ["PREDICTORS", "cog_codec_options", "gtiff_codec_options"]

#: TIFF predictors by name (GDAL ``PREDICTOR`` 1, 2, 3) and their names in GDAL's COG driver.
PREDICTORS = {"none": 1, "horizontal": 2, "float": 3}
_COG_PREDICTORS = {2: "STANDARD", 3: "FLOATING_POINT"}
_PREDICTED_CODECS = ("deflate", "zstd", "lzw", "lzma")


def gtiff_codec_options(
    compress: str | None,
    *,
    level: int | None = None,
    predictor: str | None = None,
    dtype: Any = np.float32,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """GDAL GeoTIFF creation options (``compress``, ``predictor``, ``zstd_level``/``zlevel``) for a codec.

    ``predictor=None`` chooses ``"horizontal"`` for integer data (neighbouring counts differ little) and
    ``"none"`` for floating point: on reflectance the floating-point predictor makes ZSTD files only a
    little smaller at a much higher CPU cost of writing them (``docs/design.md``). ZSTD defaults to level 1.

    Raises
    ------
    DcstsfInputError
        An unknown predictor, a predictor without a codec or with a codec that takes none, or the float
        predictor for integer data (``path`` names the output).
    """
    if not compress or str(compress).lower() == "none":
        if predictor not in (None, "none"):
            raise input_error(
                path, f"predictor={predictor!r} needs a codec", "pass compress='zstd' (or 'deflate') with it"
            )
        return {}
    codec = str(compress).lower()
    integer = is_integer_dtype(dtype)
    opts: dict[str, Any] = {"compress": codec}
    if codec in _PREDICTED_CODECS:
        name = predictor if predictor is not None else ("horizontal" if integer else "none")
        if name not in PREDICTORS:
            raise input_error(path, f"unknown predictor {predictor!r}", f"use one of {', '.join(PREDICTORS)}")
        if name == "float" and integer:
            raise input_error(
                path, "the float predictor needs floating-point output", "use predictor='horizontal' for integers"
            )
        if PREDICTORS[name] != 1:
            opts["predictor"] = PREDICTORS[name]
    elif predictor not in (None, "none"):
        raise input_error(
            path, f"compress={compress!r} takes no predictor", f"use one of {', '.join(_PREDICTED_CODECS)}"
        )
    if codec == "zstd":
        opts["zstd_level"] = 1 if level is None else int(level)
    elif codec == "deflate" and level is not None:
        opts["zlevel"] = int(level)
    return opts


def cog_codec_options(gtiff_options: dict[str, Any]) -> dict[str, Any]:
    """The same codec as :func:`gtiff_codec_options` in GDAL's COG driver terms."""
    opts: dict[str, Any] = {}
    if "compress" in gtiff_options:
        opts["compress"] = gtiff_options["compress"]
    if gtiff_options.get("predictor") in _COG_PREDICTORS:
        opts["predictor"] = _COG_PREDICTORS[gtiff_options["predictor"]]
    level = gtiff_options.get("zstd_level", gtiff_options.get("zlevel"))
    if level is not None:
        opts["level"] = level
    return opts
