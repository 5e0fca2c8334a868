"""Which HS bands a report scores: the sensor's good bands by default, every band on request.

Hyperspectral sensors list bands that carry no usable signal (water-vapour absorption near 1400 and
1900 nm, detector edges): ``Sensor.good`` in :mod:`dcstsf.sensors` (31 of AHSI's 166 bands are bad),
or the ENVI ``bbl`` coordinate of a file. Errors there are large and meaningless, so a report leaves
those bands out of every metric unless asked to include them, lists them, and greys them in the plots.
A band in which a prediction or the truth holds no finite value at all (a band its producer left empty)
is left out as well, with a note: the metrics are computed over pixels finite in every scored band, so
one empty band would leave none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dcstsf.report.inputs import EvaluationInputs

__all__ = ["ScoredBands", "scored_bands"]

# Band centres within this many nm of a registered sensor's name that sensor.
_MATCH_NM = 5.0


@dataclass(frozen=True)
class ScoredBands:
    """The bad-band list of the predictions' HS bands and whether the metrics use it.

    Attributes
    ----------
    good
        ``(n_bands,)`` True for a good band.
    source
        Where the list comes from (e.g. ``"sensor zy1-02d-ahsi"``), ``"none"`` when no list is known.
    include_bad
        Bad bands are scored too (``include_bad_bands=True``, CLI ``--include-bad-bands``).
    empty
        ``{cube: band indices}``: bands left out because that cube (a prediction, ``"the truth"``) holds
        no finite value in them; no pixel could be scored over every band otherwise.
    """

    good: np.ndarray
    source: str
    include_bad: bool = False
    empty: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def scored(self) -> np.ndarray:
        """``(n_bands,)`` True for a band the metrics use."""
        scored = np.ones_like(self.good) if self.include_bad else self.good.copy()
        for idx in self.empty.values():
            scored[idx] = False
        return scored

    @property
    def empty_indices(self) -> np.ndarray:
        """Indices of the bands left out because a cube has no finite value in them."""
        idx = [np.asarray(v, int) for v in self.empty.values()]
        return np.unique(np.concatenate(idx)) if idx else np.zeros(0, int)

    def without_empty(self, empty: dict[str, np.ndarray]) -> ScoredBands:
        """These bands with ``{cube: band indices}`` left out: bands where a cube holds no finite value."""
        merged = {k: np.asarray(v, int) for k, v in self.empty.items()}
        for cube, idx in empty.items():
            old = merged.get(cube, np.zeros(0, int))
            merged[cube] = np.union1d(old, np.asarray(idx, int))
        return replace(self, empty=merged)

    @property
    def indices(self) -> np.ndarray:
        """Indices of the scored bands."""
        return np.flatnonzero(self.scored)

    @property
    def bad(self) -> np.ndarray:
        """Indices of the bad bands (scored or not)."""
        return np.flatnonzero(~self.good)

    @property
    def excluded(self) -> np.ndarray:
        """Indices of the bands left out of the metrics."""
        return np.flatnonzero(~self.scored)


def _bbl(da: object) -> np.ndarray | None:
    coords = getattr(da, "coords", {})
    if "bbl" in coords and coords["bbl"].dims == ("band",):
        return np.asarray(coords["bbl"].values, dtype=float) > 0
    return None


def scored_bands(ev: EvaluationInputs, *, include_bad_bands: bool = False) -> ScoredBands:
    """The bad-band list of ``ev``'s HS bands, from (in order) the observation model's HS sensor, a ``bbl``
    coordinate of a prediction or of the truth, a registered sensor named in a prediction's
    ``hs_sensor`` attribute with the same band count, a registered sensor whose band centres match the
    cubes' ``wavelength`` coordinate within 5 nm (as the fusion inputs are matched); else every band is
    good."""
    from dcstsf import sensors as _sensors

    nb = ev.n_bands
    if ev.model is not None and ev.model.n_hs == nb:
        return ScoredBands(np.asarray(ev.model.hs_sensor.good, bool), f"sensor {ev.model.hs_sensor.name}",
                           include_bad_bands)
    cubes = list(ev.predictions.items()) + ([("the truth", ev.truth)] if ev.truth is not None else [])
    for name, da in cubes:
        bbl = _bbl(da)
        if bbl is not None and bbl.shape == (nb,):
            label = ev.sources.get(name) or ev.truth_source or name
            return ScoredBands(bbl, f"bbl coordinate of {label}", include_bad_bands)
    registered = set(_sensors.available())
    for da in ev.predictions.values():
        name = da.attrs.get("hs_sensor")
        if name in registered and _sensors.get(name).n_bands == nb:
            return ScoredBands(np.asarray(_sensors.get(name).good, bool), f"sensor {name}", include_bad_bands)
    wl = ev.wavelengths
    if wl is not None:
        for name in sorted(registered):
            sensor = _sensors.get(name)
            if sensor.n_bands == nb and np.allclose(sensor.centers_nm, wl, atol=_MATCH_NM):
                return ScoredBands(np.asarray(sensor.good, bool), f"sensor {name}", include_bad_bands)
    return ScoredBands(np.ones(nb, bool), "none", include_bad_bands)
