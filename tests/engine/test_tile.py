"""One tile and the nodata policy shared by the engine and fuse_arrays: scene-mean fill, output mask."""

from __future__ import annotations

from typing import Any, ClassVar

import dask.array as da
import numpy as np
import pytest

from dcstsf.engine import fuse
from dcstsf.engine.tile import tile_context
from dcstsf.errors import MethodOutputError
from dcstsf.methods import fuse_arrays, get_method
from dcstsf.methods.bicubic import Bicubic
from dcstsf.scene_stats import scene_fill_values
from tests.engine.cases import HS_SENSOR, engine_model


def _with_nodata(case: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hs, ms1, ms2 = (np.array(a, copy=True) for a in case.arrays())
    hs[:, 4, 5] = np.nan
    ms1[2, 40:44, 50:52] = np.nan
    ms2[:, 80, 100] = np.inf  # +/-Inf is nodata too
    return hs, ms1, ms2


def test_fuse_arrays_equals_the_untiled_engine_with_nodata(case: Any) -> None:
    hs, ms1, ms2 = _with_nodata(case)
    arrays = fuse_arrays(hs, ms1, ms2, method="two-step", model=engine_model())
    engine = fuse(*(case.hs_t1.copy(data=hs), case.ms_t1.copy(data=ms1), case.ms_t2.copy(data=ms2)),
                  method="two-step", hs_sensor=HS_SENSOR, chunk=999).values
    np.testing.assert_array_equal(arrays, engine)
    bad = np.isnan(arrays).all(axis=0)
    assert bad[12:15, 15:18].all() and bad[40:44, 50:52].all() and bad[80, 100]
    assert bad.sum() == 9 + 8 + 1 and np.isfinite(arrays[:, ~bad]).all()


def test_fill_values_are_scene_means_of_a_regular_sample(case: Any) -> None:
    hs = np.array(case.hs_t1.values, copy=True)
    hs[0] = np.nan  # an empty band has no mean
    hs[1, :5] = np.nan
    n = hs.shape[0]
    means = scene_fill_values([hs, da.from_array(hs, chunks=(n, 7, 11))])
    assert np.isnan(means[0][0]) and np.isfinite(means[0][1:]).all()
    np.testing.assert_allclose(means[0][1], np.nanmean(hs[1]), rtol=1e-6)
    np.testing.assert_allclose(means[1], means[0], rtol=1e-12)  # Dask and NumPy alike
    assert means[0].shape == (n,)


def test_empty_hs_bands_do_not_mask_the_output(case: Any) -> None:
    hs, ms1, ms2 = (np.array(a, copy=True) for a in case.arrays())
    hs[0] = np.nan
    model = engine_model()
    ctx = tile_context(get_method("bicubic"), model, {}, hs, ms1, ms2)
    assert 0 not in ctx.mask_bands and ctx.fill_hs[0] == 0.0
    out = fuse_arrays(hs, ms1, ms2, method="bicubic", model=model)
    assert np.isfinite(out[1:]).all()


class _Recording(Bicubic):
    name = "recording-test"
    calls: ClassVar[int] = 0

    def apply(self, hs_t1, ms_t1, ms_t2, *, model, fitted):  # type: ignore[no-untyped-def,override]
        type(self).calls += 1
        return super().apply(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted)


def test_an_all_nodata_window_skips_the_method(case: Any) -> None:
    hs, ms1, ms2 = case.arrays()
    _Recording.calls = 0
    out = fuse_arrays(hs, np.full_like(ms1, np.nan), ms2, method=_Recording(), model=engine_model())
    assert _Recording.calls == 0 and np.isnan(out).all() and out.dtype == np.float32


class _Diverging(Bicubic):
    """A method whose result turns NaN at valid pixels (a diverged optimisation)."""

    name = "diverging-test"

    def apply(self, hs_t1, ms_t1, ms_t2, *, model, fitted):  # type: ignore[no-untyped-def,override]
        out = super().apply(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted)
        out[:, 2, 3] = np.nan
        return out


def test_non_finite_values_at_valid_pixels_are_a_method_failure(case: Any) -> None:
    hs, ms1, ms2 = case.arrays()
    with pytest.raises(MethodOutputError, match=r"'diverging-test' returned \d+ non-finite values at valid pixels"):
        fuse_arrays(hs, ms1, ms2, method=_Diverging(), model=engine_model())
    # where the inputs are nodata, NaN is the answer, not a failure
    ms1 = ms1.copy()
    ms1[:, 2, 3] = np.nan
    out = fuse_arrays(hs, ms1, ms2, method=_Diverging(), model=engine_model())
    assert np.isnan(out[:, 2, 3]).all()
    out[:, 2, 3] = 0.0
    assert np.isfinite(out).all()


def test_a_value_no_reflectance_takes_is_nodata_not_garbage(case: Any) -> None:
    # a saturation code in one MS(t2) pixel: the value checks read a sample and may miss it; the fusion
    # treats it as nodata (NaN there) instead of spreading it over every pixel within the method's reach
    ms2 = case.ms_t2.copy(data=np.array(case.ms_t2.values, copy=True))
    ms2.values[:, 50, 60] = 6.5535
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="two-step", hs_sensor=HS_SENSOR, chunk=999).values
    with pytest.warns(UserWarning, match=r"MS\(t2\) holds values outside \[-1, 2.5\]"):
        out = fuse(case.hs_t1, case.ms_t1, ms2, method="two-step", hs_sensor=HS_SENSOR, chunk=999,
                   checks=False).values
    bad = np.isnan(out).all(axis=0)
    assert bad[50, 60] and bad.sum() == 1
    assert np.nanmax(np.abs(out - ref)) < 0.05
