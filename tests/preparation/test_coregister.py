"""Co-registration inside the preparation: an EnMAP product whose georeference is off by a known amount is
found off by that amount, recorded in the attributes, and a whole-pixel error is corrected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from dcstsf.coregistration import CoregistrationOptions
from dcstsf.preparation import PartialFootprintWarning, PrepareOptions, prepare_products
from tests.preparation.scenes import ORIGIN, Scene, block_mean, make_scene, write_enmap

# A 48 x 48 HS scene holds 5 x 5 windows of 16 pixels 8 apart per MS date.
OPTIONS = PrepareOptions(coregistration=CoregistrationOptions(window=16, spacing=8))
# Without any georeference error the co-registration finds up to 0.036 coarse pixels on these scenes
# (depending on where the HS pixels lie on the upsampled cube's own 3-pixel pattern): 0.06 allows for it.
SHIFT_TOL = 0.06


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("scene"), hs_origin=(12, 6))


@pytest.mark.parametrize(
    ("east", "south", "expected"),
    [(30.0, 0.0, (0.0, -1.0)), (10.0, 0.0, (0.0, -1 / 3)), (0.0, -20.0, (2 / 3, 0.0))],
    ids=["one-pixel-east", "third-pixel-east", "two-thirds-north"],
)
def test_known_georeference_error_is_found(scene: Scene, tmp_path: Path, east: float, south: float,
                                           expected: tuple[float, float]) -> None:
    # The pixels are those of the scene; only the georeference moves: east by `east` m, south by `south` m.
    # The HS then shows at its nominal place what lies `east` m west (and `south` m north) of it, so its
    # footprints lie -east/30 (and -south/30) coarse pixels from their nominal places.
    r0, c0 = scene.hs_origin
    transform = from_origin(ORIGIN[0] + 10.0 * c0 + east, ORIGIN[1] - 10.0 * r0 - south, 30.0, 30.0)
    hs = write_enmap(tmp_path / "enmap", scene.hs, scene.wl, scene.fwhm, transform=transform, cloud=scene.hs_cloud)
    with pytest.warns(PartialFootprintWarning):
        p = prepare_products(hs, scene.ms1.safe, scene.ms2.safe, options=OPTIONS)
    reg = p.coregistration
    assert reg is not None
    np.testing.assert_allclose(reg.shift_px, expected, atol=SHIFT_TOL)
    record = json.loads(p.hs_t1.attrs["coregistration"])
    np.testing.assert_allclose(record["shift_px"], expected, atol=SHIFT_TOL)
    assert record["statistics"]["n_kept"] >= 10
    assert reg.summary() in p.notes and any(line.startswith("co-registration: global shift") for line in p.describe())
    if east == 30.0:
        # a whole-pixel error is resampled away: the corrected cube is the fine cube's block means on the grid
        r, c = p.grid.ms_window
        h, w = p.hs_t1.shape[1:]
        truth = block_mean(scene.fine[:, r : r + 3 * h, c : c + 3 * w], 3)
        good = np.asarray(p.hs_t1["bbl"].values) > 0
        inner = (slice(None), slice(3, -3), slice(3, -3))
        assert (r, c) == (r0, c0 + 3)  # the grid follows the (wrong) georeference
        raw = np.where(scene.hs_cloud, np.nan, scene.hs)[:, :h, :w]  # what was there before the correction

        def rmse(a: np.ndarray) -> float:
            d = (a - truth)[good][inner]
            return float(np.sqrt(np.nanmean(d**2)))

        # measured: 0.0007 after, 0.023 before (reflectance RMS about 0.19)
        assert rmse(p.hs_t1.values) < 2e-3 < rmse(raw) / 10


def test_a_failed_co_registration_names_the_inputs_once(scene: Scene) -> None:
    from dcstsf.errors import DcstsfInputError

    # the default 32-pixel windows leave too few tie points on this small scene
    with pytest.raises(DcstsfInputError) as err:
        prepare_products(scene.enmap, scene.ms1.safe, scene.ms2.safe)
    text = str(err.value)
    assert text.count("co-registration of") == 1 and "usable tie points" in text and "--no-coregister" in text
