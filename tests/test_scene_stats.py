"""Per-scene samples: the same values from NumPy and from Dask whatever the chunks; NaN footprints dropped."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch

from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import scene_samples
from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS

S2_BANDS = list(SENTINEL2_DEFAULT_BANDS)


def _scene(model: ObservationModel, hc: int, wc: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hs = rng.random((model.n_hs, hc, wc)).astype(np.float32)
    ms1 = rng.random((model.n_ms, hc * 3, wc * 3)).astype(np.float32)
    ms2 = rng.random((model.n_ms, hc * 3, wc * 3)).astype(np.float32)
    return hs, ms1, ms2


def test_samples_are_ms_to_coarse_at_the_sampled_pixels(model: ObservationModel) -> None:
    hs, ms1, ms2 = _scene(model, 20, 26)
    s = scene_samples(hs, ms1, ms2, model=model, max_pixels=100)  # stride 3: rows 1, 4, ..., cols 1, 4, ...
    whole = model.ms_to_coarse(torch.as_tensor(ms1)).numpy()[:, 1::3, 1::3]
    np.testing.assert_allclose(s.ms1, whole.reshape(model.n_ms, -1).T, atol=1e-6)
    np.testing.assert_array_equal(s.hs, hs[:, 1::3, 1::3].reshape(model.n_hs, -1).T.astype(np.float64))


@pytest.mark.parametrize("chunks", [(7, 11), (30, 200), (9, 9)])
def test_dask_equals_numpy_for_any_chunks(model: ObservationModel, chunks: tuple[int, int]) -> None:
    hs, ms1, ms2 = _scene(model, 20, 26, seed=1)
    ms1[2, 30, 40] = np.nan  # drops the samples whose footprint holds it, in both paths
    ref = scene_samples(hs, ms1, ms2, model=model, max_pixels=150)
    lazy = [da.from_array(hs, chunks=(-1, 5, 6))] + [da.from_array(a, chunks=(-1, *chunks)) for a in (ms1, ms2)]
    got = scene_samples(*lazy, model=model, max_pixels=150)
    assert len(got) == len(ref) < 20 * 26
    for a, b in ((got.hs, ref.hs), (got.ms1, ref.ms1), (got.ms2, ref.ms2)):
        np.testing.assert_allclose(a, b, atol=1e-10)
