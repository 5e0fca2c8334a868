"""The :class:`Sensor` model, the registry of shipped sensors and the spectral matrices."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np

from dcstsf.errors import DcstsfInputError, UncoveredBandsError
from dcstsf.sensors.names import band_runs

__all__ = [
    "SENSOR_NAMES",
    "Sensor",
    "available",
    "from_envi_header",
    "from_wavelengths",
    "get",
    "register",
    "spectral_resampling_matrix",
    "spectral_response_matrix",
    "resampling_coverage",
]

_DATA = Path(__file__).with_name("data")
#: The common 1 nm integration grid for every spectral matrix (covers all shipped sensors).
WAVELENGTH_GRID_NM = np.arange(300.0, 2601.0, 1.0)
#: Gaussian responses are evaluated out to this many standard deviations; beyond, zero.
_GAUSS_TRUNCATE_SIGMA = 4.0
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True, eq=False)
class Sensor:
    """An imaging sensor: its bands, their spectral responses, GSD and MTF.

    Parameters
    ----------
    name
        Registry name, e.g. ``"zy1-02d-ahsi"``.
    band_names
        One name per band (``"B02"``, ``"B001"``...).
    centers_nm, fwhm_nm
        Band centre wavelengths and full widths at half maximum, nanometres.
    gsd_m
        Ground sampling distance of each band, metres.
    mtf_nyquist
        Modulation transfer function of each band at its own Nyquist frequency (0-1).
    good
        ``False`` for bands that should not be used (water vapour, low SNR, uncalibrated).
    srf
        Optional tabulated responses: ``(wavelengths_nm, responses)`` with responses of shape
        ``(n_bands, n_wavelengths)``. Without it, responses are Gaussians from centre and FWHM.
    source
        Where the numbers come from.
    """

    name: str
    band_names: tuple[str, ...]
    centers_nm: np.ndarray
    fwhm_nm: np.ndarray
    gsd_m: np.ndarray
    mtf_nyquist: np.ndarray
    good: np.ndarray
    srf: tuple[np.ndarray, np.ndarray] | None = None
    source: str = ""
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.band_names)
        for attr in ("centers_nm", "fwhm_nm", "gsd_m", "mtf_nyquist", "good"):
            value = np.asarray(getattr(self, attr))
            if value.shape != (n,):
                raise DcstsfInputError(
                    f"sensor {self.name!r}: {attr} has shape {value.shape}, expected ({n},) for {n} bands"
                )
            object.__setattr__(self, attr, value.astype(bool if attr == "good" else float))
        if len(set(self.band_names)) != n:
            raise DcstsfInputError(f"sensor {self.name!r}: band names are not unique")
        if np.any(self.fwhm_nm <= 0) or np.any(~np.isfinite(self.centers_nm)):
            raise DcstsfInputError(f"sensor {self.name!r}: centres must be finite and FWHM positive")
        if np.any((self.mtf_nyquist <= 0) | (self.mtf_nyquist >= 1)):
            raise DcstsfInputError(f"sensor {self.name!r}: MTF at Nyquist must lie in (0, 1)")
        self._index.update({b: i for i, b in enumerate(self.band_names)})

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return len(self.band_names)

    def band_index(self, bands: Sequence[str] | None) -> list[int]:
        """Indices of ``bands`` (all bands when ``None``); clear error for unknown names."""
        if bands is None:
            return list(range(self.n_bands))
        unknown = [b for b in bands if b not in self._index]
        if unknown:
            raise DcstsfInputError(
                f"sensor {self.name!r} has no band(s) {unknown}; its bands are {list(self.band_names)}"
            )
        return [self._index[b] for b in bands]

    def select(self, bands: Sequence[str]) -> Sensor:
        """A new sensor with only ``bands``, in the order given."""
        idx = self.band_index(bands)
        srf = None if self.srf is None else (self.srf[0], self.srf[1][idx])
        return replace(
            self,
            band_names=tuple(self.band_names[i] for i in idx),
            centers_nm=self.centers_nm[idx],
            fwhm_nm=self.fwhm_nm[idx],
            gsd_m=self.gsd_m[idx],
            mtf_nyquist=self.mtf_nyquist[idx],
            good=self.good[idx],
            srf=srf,
            _index={},
        )

    def good_bands(self) -> Sensor:
        """A new sensor without the bands flagged bad."""
        return self.select([b for b, g in zip(self.band_names, self.good) if g])

    def responses(self, grid_nm: np.ndarray = WAVELENGTH_GRID_NM) -> np.ndarray:
        """Relative spectral responses on ``grid_nm``, shape ``(n_bands, len(grid_nm))``, peak 1."""
        if self.srf is not None:
            wl, resp = self.srf
            out = np.stack([np.interp(grid_nm, wl, r, left=0.0, right=0.0) for r in resp])
        else:
            sigma = self.fwhm_nm[:, None] * _FWHM_TO_SIGMA
            z = (grid_nm[None, :] - self.centers_nm[:, None]) / sigma
            out = np.where(np.abs(z) <= _GAUSS_TRUNCATE_SIGMA, np.exp(-0.5 * z**2), 0.0)
        peak = out.max(axis=1, keepdims=True)
        empty = peak[:, 0] <= 0
        if np.any(empty):
            idx = np.flatnonzero(empty)
            names = band_runs(self.band_names, None, idx)  # the centres follow, with their decimals
            raise DcstsfInputError(
                f"sensor {self.name!r}: {idx.size} of {self.n_bands} bands ({names}) have no response on the "
                f"{grid_nm[0]:.0f}-{grid_nm[-1]:.0f} nm grid (their centres run from {self.centers_nm[idx].min():g} "
                f"to {self.centers_nm[idx].max():g} nm); band centres and widths are in nanometres"
            )
        return out / peak

    def gaussian_psf_sigma(self, *, grid_gsd_m: float, bands: Sequence[str] | None = None) -> np.ndarray:
        """Std-dev (in pixels of a grid of ``grid_gsd_m``) of each band's MTF-matched Gaussian PSF.

        A Gaussian PSF of std-dev ``s`` native pixels has MTF ``exp(-2 pi^2 s^2 f^2)``; at the band's own
        Nyquist frequency ``f = 0.5`` cycles/pixel it equals ``mtf_nyquist`` when
        ``s = sqrt(-2 ln MTF) / pi``. Measured on a finer grid, the width grows by ``gsd / grid_gsd``,
        which is why 20 m Sentinel-2 bands resampled to 10 m are blurrier than the 10 m bands.
        """
        idx = self.band_index(bands)
        native = np.sqrt(-2.0 * np.log(self.mtf_nyquist[idx])) / np.pi
        return native * self.gsd_m[idx] / float(grid_gsd_m)


_FACTORIES: dict[str, Callable[[], Sensor]] = {}


def register(name: str, factory: Callable[[], Sensor]) -> None:
    """Register a sensor factory under ``name`` (lower case); used by :func:`get`."""
    _FACTORIES[name.lower()] = factory
    _get_cached.cache_clear()


def available() -> list[str]:
    """Names of the registered sensors."""
    return sorted(_FACTORIES)


def get(name: str | Sensor) -> Sensor:
    """The registered sensor called ``name`` (a :class:`Sensor` passes through)."""
    if isinstance(name, Sensor):
        return name
    key = str(name).lower()
    if key not in _FACTORIES:
        raise DcstsfInputError(
            f"unknown sensor {name!r}; known sensors: {', '.join(available())}. "
            "For another sensor build one with dcstsf.sensors.from_wavelengths(...) or from_envi_header(path)."
        )
    return _get_cached(key)


@cache
def _get_cached(key: str) -> Sensor:
    return _FACTORIES[key]()


def _read_table(path: Path, key: str = "band") -> tuple[list[str], dict[str, np.ndarray], str]:
    with path.open() as f:
        lines = f.read().splitlines()
    comments = " ".join(ln[1:].strip() for ln in lines if ln.startswith("#"))
    rows = list(csv.reader(ln for ln in lines if ln and not ln.startswith("#")))
    header, body = rows[0], rows[1:]
    cols = {h: np.array([r[i] for r in body]) for i, h in enumerate(header)}
    names = [str(b) for b in cols.pop(key)]
    return names, {k: v.astype(float) for k, v in cols.items()}, comments


def _from_table(name: str, table: str, srf: tuple[np.ndarray, np.ndarray] | None = None) -> Sensor:
    names, cols, comments = _read_table(_DATA / table)
    return Sensor(
        name=name,
        band_names=tuple(names),
        centers_nm=cols["center_nm"],
        fwhm_nm=cols["fwhm_nm"],
        gsd_m=cols["gsd_m"],
        mtf_nyquist=cols["mtf_nyquist"],
        good=cols["good"] > 0,
        srf=srf,
        source=comments,
    )


def _s2_factory(unit: str) -> Callable[[], Sensor]:
    def build() -> Sensor:
        names, cols, _ = _read_table(_DATA / f"sentinel-2{unit}_srf.csv", key="wavelength_nm")
        wl = np.array([float(n) for n in names])
        table_names, _, _ = _read_table(_DATA / f"sentinel-2{unit}.csv")
        resp = np.stack([cols[b] for b in table_names])
        return _from_table(f"sentinel-2{unit}", f"sentinel-2{unit}.csv", srf=(wl, resp))

    return build


def _enmap_factory() -> Sensor:
    payload = json.loads((_DATA / "enmap_srf.json").read_text())
    bands = payload["bands"]
    grid = WAVELENGTH_GRID_NM
    resp = np.stack([np.interp(grid, bands[b]["x"], bands[b]["y"], left=0.0, right=0.0) for b in sorted(bands)])
    return _from_table("enmap", "enmap.csv", srf=(grid, resp))


SENSOR_NAMES = ("zy1-02d-ahsi", "sentinel-2a", "sentinel-2b", "enmap", "hyperion")
register("zy1-02d-ahsi", lambda: _from_table("zy1-02d-ahsi", "zy1-02d-ahsi.csv"))
register("sentinel-2a", _s2_factory("a"))
register("sentinel-2b", _s2_factory("b"))
register("enmap", _enmap_factory)
register("hyperion", lambda: _from_table("hyperion", "hyperion.csv"))


def from_wavelengths(
    centers_nm: Sequence[float] | np.ndarray,
    fwhm_nm: Sequence[float] | np.ndarray | float | None = None,
    *,
    name: str = "custom",
    band_names: Sequence[str] | None = None,
    gsd_m: float | Sequence[float] = 30.0,
    mtf_nyquist: float | Sequence[float] = 0.3,
    good: Sequence[bool] | None = None,
) -> Sensor:
    """A generic sensor with Gaussian responses from centre/FWHM lists (e.g. AVIRIS headers).

    When ``fwhm_nm`` is omitted, each band's FWHM is taken as its spacing to the neighbouring bands.
    Centres must be strictly increasing.
    """
    centers = np.asarray(centers_nm, dtype=float)
    if centers.ndim != 1 or centers.size == 0:
        raise DcstsfInputError(f"sensor {name!r}: wavelengths must be a non-empty 1-D list")
    if np.any(np.diff(centers) <= 0):
        raise DcstsfInputError(
            f"sensor {name!r}: band wavelengths are not strictly increasing; sort the bands by wavelength "
            "(and the data with them) before building the sensor"
        )
    if fwhm_nm is None:
        fwhm = np.gradient(centers) if centers.size > 1 else np.array([10.0])
    else:
        fwhm = np.broadcast_to(np.asarray(fwhm_nm, dtype=float), centers.shape).copy()
    n = centers.size
    names = tuple(band_names) if band_names is not None else tuple(f"B{i + 1:03d}" for i in range(n))
    return Sensor(
        name=name,
        band_names=names,
        centers_nm=centers,
        fwhm_nm=fwhm,
        gsd_m=np.broadcast_to(np.asarray(gsd_m, dtype=float), (n,)).copy(),
        mtf_nyquist=np.broadcast_to(np.asarray(mtf_nyquist, dtype=float), (n,)).copy(),
        good=np.ones(n, bool) if good is None else np.asarray(good, bool),
        source="user-supplied wavelength/FWHM lists",
    )


def from_envi_header(path: str | Path, *, name: str | None = None, gsd_m: float = 30.0) -> Sensor:
    """A sensor from an ENVI header's ``wavelength``, ``fwhm`` and ``bbl`` fields.

    Micrometre wavelengths (``wavelength units = Micrometers`` or values below 100) are converted to nm.
    """
    from dcstsf.io import parse_envi_header

    hdr = parse_envi_header(path)
    if "wavelength" not in hdr:
        raise DcstsfInputError(
            f"{path}: the ENVI header has no 'wavelength' field, so the bands' spectral positions are "
            "unknown; add 'wavelength = {...}' (nm) to the header or build the sensor with from_wavelengths"
        )
    wl = np.asarray(hdr["wavelength"], dtype=float)
    units = str(hdr.get("wavelength units", "")).lower()
    factor = 1000.0 if units.startswith("micro") or (not units.startswith("nano") and wl.max() < 100) else 1.0
    fwhm = np.asarray(hdr["fwhm"], dtype=float) * factor if "fwhm" in hdr else None
    good = np.asarray(hdr["bbl"], dtype=float) > 0 if "bbl" in hdr else None
    return from_wavelengths(wl * factor, fwhm, name=name or Path(path).stem, gsd_m=gsd_m, good=good)


def _response_integrals(src: Sensor, dst: Sensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``M[d, s] = sum_l r_d(l) r_s(l)`` on the 1 nm grid, plus each response's own integral."""
    rs = src.responses()
    rd = dst.responses()
    return rd @ rs.T, rd.sum(axis=1), rs


def spectral_response_matrix(
    hs_sensor: Sensor | str,
    ms_sensor: Sensor | str,
    ms_bands: Sequence[str] | None = None,
    *,
    use_bad_bands: bool = False,
    min_coverage: float = 0.9,
) -> np.ndarray:
    """The spectral operator ``R`` (``n_ms x n_hs``) mapping HS spectra to MS band values.

    ``R[m, b]`` is the integral over a 1 nm grid of the MS band's response times HS band ``b``'s
    response; each row is normalised to sum to 1, so a flat reflector maps to a flat MS spectrum.
    HS bands flagged bad get zero weight unless ``use_bad_bands``.

    Raises
    ------
    DcstsfInputError
        If an MS band's response is not covered (to ``min_coverage`` of its integral) by the HS bands.
    """
    hs, ms = get(hs_sensor), get(ms_sensor)
    ms = ms.select(list(ms_bands)) if ms_bands is not None else ms
    m, _, r_hs = _response_integrals(hs, ms)
    if not use_bad_bands:
        m[:, ~hs.good] = 0.0
    r_ms = ms.responses()
    usable = r_hs if use_bad_bands else r_hs[hs.good]
    covered = np.clip(usable.sum(axis=0), 0.0, 1.0) if usable.size else np.zeros(r_ms.shape[1])
    coverage = (r_ms * covered[None, :]).sum(axis=1) / r_ms.sum(axis=1)
    poor = coverage < min_coverage
    if np.any(poor) or np.any(m.sum(axis=1) <= 0):
        bad = [ms.band_names[i] for i in np.flatnonzero(poor | (m.sum(axis=1) <= 0))]
        raise UncoveredBandsError(
            f"{ms.name} band(s) {bad} are not covered by the good bands of {hs.name} "
            f"(coverage {np.round(coverage[poor], 2).tolist()}); choose MS bands inside the HS spectral range",
            bands=bad,
        )
    return m / m.sum(axis=1, keepdims=True)


#: A band of the target sensor covered by the source's good bands for less than this fraction of its
#: response is filled by interpolation in wavelength (:func:`spectral_resampling_matrix`).
RESAMPLING_MIN_COVERAGE = 0.5


def spectral_resampling_matrix(
    src: Sensor | str,
    dst: Sensor | str,
    *,
    min_coverage: float = RESAMPLING_MIN_COVERAGE,
) -> np.ndarray:
    """Resample spectra of ``src`` to the bands of ``dst`` (``n_dst x n_src``, rows sum to 1).

    Used to build e.g. AHSI-like cubes from EnMAP scenes. ``W[d, s]`` is the overlap integral of the
    responses over the good ``src`` bands. A ``dst`` band whose response is covered by the good ``src``
    bands for less than ``min_coverage`` of its integral (a water-vapour gap, or beyond the src range) is
    filled by linear interpolation in wavelength between the nearest covered ``dst`` bands (constant
    beyond the ends); the fill is a fixed linear map, so the whole resampling stays one matrix.
    :func:`resampling_coverage` tells which bands were filled.
    """
    src_s, dst_s = get(src), get(dst)
    w, _, _ = _response_integrals(src_s, dst_s)
    w[:, ~src_s.good] = 0.0
    coverage = resampling_coverage(src_s, dst_s)
    ok = (coverage >= min_coverage) & (w.sum(axis=1) > 0)
    if not np.any(ok):
        raise DcstsfInputError(f"{dst_s.name} and {src_s.name} share no spectral range")
    out = np.zeros_like(w)
    out[ok] = w[ok] / w[ok].sum(axis=1, keepdims=True)
    c_ok = dst_s.centers_nm[ok]
    rows_ok = out[ok]
    order = np.argsort(c_ok)
    c_ok, rows_ok = c_ok[order], rows_ok[order]
    for d in np.flatnonzero(~ok):
        c = dst_s.centers_nm[d]
        j = int(np.searchsorted(c_ok, c))
        if j == 0:
            out[d] = rows_ok[0]
        elif j >= len(c_ok):
            out[d] = rows_ok[-1]
        else:
            t = (c - c_ok[j - 1]) / (c_ok[j] - c_ok[j - 1])
            out[d] = (1 - t) * rows_ok[j - 1] + t * rows_ok[j]
    return out


def resampling_coverage(src: Sensor | str, dst: Sensor | str) -> np.ndarray:
    """Fraction of each ``dst`` band's response covered by the good bands of ``src`` (0-1)."""
    src_s, dst_s = get(src), get(dst)
    r_src = src_s.responses()[src_s.good]
    r_dst = dst_s.responses()
    covered = np.clip(r_src.sum(axis=0), 0.0, 1.0)
    return (r_dst * covered[None, :]).sum(axis=1) / r_dst.sum(axis=1)
