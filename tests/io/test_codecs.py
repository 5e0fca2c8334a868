"""GeoTIFF codec options in GDAL's GTiff and COG terms."""

from __future__ import annotations

import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.io import cog_codec_options, gtiff_codec_options


def test_codec_options() -> None:
    assert gtiff_codec_options("zstd") == {"compress": "zstd", "zstd_level": 1}
    assert gtiff_codec_options("ZSTD", level=5, predictor="float") == {
        "compress": "zstd", "predictor": 3, "zstd_level": 5,
    }
    assert gtiff_codec_options("deflate", dtype="uint16") == {"compress": "deflate", "predictor": 2}
    assert gtiff_codec_options(None) == {} and gtiff_codec_options("none") == {}
    assert cog_codec_options(gtiff_codec_options("zstd", predictor="float")) == {
        "compress": "zstd", "predictor": "FLOATING_POINT", "level": 1,
    }
    assert cog_codec_options(gtiff_codec_options("deflate", dtype="int16")) == {
        "compress": "deflate", "predictor": "STANDARD",
    }
    for kwargs, words in [
        ({"compress": "zstd", "predictor": "fancy"}, "unknown predictor 'fancy'"),
        ({"compress": "zstd", "predictor": "float", "dtype": "int16"}, "floating-point output"),
        ({"compress": None, "predictor": "float"}, "needs a codec"),
        ({"compress": "jpeg", "predictor": "horizontal"}, "takes no predictor"),
    ]:
        with pytest.raises(DcstsfInputError, match=words) as info:
            gtiff_codec_options(path="out.tif", **kwargs)
        assert "out.tif" in str(info.value)
