"""``run_batch`` given product paths prepares them itself and fuses exactly what it fuses from the prepared
GeoTIFFs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcstsf.coregistration import CoregistrationOptions
from dcstsf.engine import run_batch
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from dcstsf.preparation import PartialFootprintWarning, PrepareOptions, prepare_products, write_prepared
from tests.preparation.scenes import make_scene

# A 32 x 32 HS scene holds 3 x 3 windows of 16 pixels 8 apart per MS date: 18 tie points.
OPTIONS = PrepareOptions(coregistration=CoregistrationOptions(window=16, spacing=8))


def test_products_fuse_as_their_prepared_geotiffs(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "scene", hs_origin=(12, 6), hs_shape=(32, 32))
    products = (scene.enmap, scene.ms1.safe, scene.ms2.safe)
    with pytest.warns(PartialFootprintWarning):
        prepared = prepare_products(*products, options=OPTIONS)
    files = write_prepared(prepared, tmp_path / "prepared")
    kw = {"method": "two-step", "progress": False}  # a fast method that reads all three inputs
    with pytest.warns(PartialFootprintWarning):
        a = run_batch(*products, tmp_path / "from_products.tif", preparation=OPTIONS, **kw)
    b = run_batch(files["hs_t1"], files["ms_t1"], files["ms_t2"], tmp_path / "from_prepared.tif", **kw)
    pa, pb = open_raster(a.path), open_raster(b.path)
    assert pa.shape == pb.shape == (224, 96, 96)
    np.testing.assert_array_equal(np.isnan(pa.values), np.isnan(pb.values))
    np.testing.assert_allclose(pa.values, pb.values, rtol=0, atol=1e-5, equal_nan=True)
    assert np.isfinite(pa.values).mean() > 0.9
    # the inputs are named as given, and the preparation is part of the resume key
    assert [i["source"] for i in json.loads(pa.attrs["inputs"])] == [str(p) for p in products]
    assert a.fingerprint != b.fingerprint
    # what the preparation did travels with both outputs: the co-registration field (for the report's plot)
    # and the footprint
    for out in (pa, pb):
        record = json.loads(out.attrs["coregistration"])
        assert "field" in record and "statistics" in record
        assert json.loads(out.attrs["footprint"])
    # a product's scale comes from its metadata: overriding it is refused
    with pytest.raises(DcstsfInputError, match=r"come from its own metadata; drop --hs-scale"):
        run_batch(*products, tmp_path / "scaled.tif", preparation=OPTIONS, hs_scale=1e-4, **kw)
