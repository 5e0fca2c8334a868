"""Spectral libraries of real materials, read into one form and resampled to a sensor's bands.

Four libraries are known (:data:`LIBRARY_NAMES`):

``usgs``
    ``spectral_libraries/USGS_1995_Library.mat`` in the shared data folder: 498 laboratory spectra of
    minerals on 224 AVIRIS-like bands, 383-2508 nm (reflectance 0-1).
``earthlib``
    The library shipped inside the PyPI package ``earthlib`` (``earthlib/data/spectra.sli`` + ``.hdr`` +
    ``spectra.csv``, read from the installed package; install with ``pip install 'dcstsf[train]'``): 7,261
    spectra on 180 bands of 10 nm, 400-2450 nm without the 1350-1460 and 1790-1960 nm water-vapour windows
    (soils, built surfaces, NPV, burned areas, PROSAIL canopies).
``berlin``
    ``spectral_libraries/library_berlin.{sli,hdr,csv}``: 75 urban spectra (SpecLib Berlin Urban Gradient
    2009) on 177 HyMap-like bands, 460-2409 nm with the water-vapour windows removed; reflectance x 10000.
``gamsberg``
    ``spectral_libraries/gamsberg_field_library{,.hdr}``: 27 field spectra (rocks, gossans, dry and green
    vegetation) at 1 nm, 350-2500 nm.

Every spectrum carries its library's own class label (``classes``) and a common cover type
(``covers``, one of :data:`COVER_TYPES`), which is how scenes pick materials for a land-cover class
whatever the library.

**Bad bands.** A library band is *good* when it is finite in every spectrum and outside the ranges a
library is known to be unreliable in: the field spectra of Gamsberg are noisy below 400 nm, in the
atmospheric water-vapour windows (1340-1460 and 1790-1960 nm) and above 2450 nm, so those bands are
flagged bad. :meth:`SpectralLibrary.to_sensor` gives bad bands no weight, exactly as
:func:`dcstsf.sensors.spectral_resampling_matrix` treats a sensor's bad bands: a target band covered by
the good bands for less than half of its response is filled by linear interpolation in wavelength between
the nearest covered target bands, and held constant beyond the library's range (never extrapolated with a
slope). The resampled library records which target bands were filled (``filled``). Spectra with a
non-finite value or a value outside 0-1 on a good band are dropped when a library is read.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.io

from dcstsf import sensors as _sensors
from dcstsf.datasets import shared_data_dir
from dcstsf.errors import DcstsfInputError
from dcstsf.io import parse_envi_header
from dcstsf.io.envi import ENVI_DTYPES
from dcstsf.sensors import Sensor

__all__ = [
    "COVER_TYPES",
    "LIBRARY_NAMES",
    "SpectralLibrary",
    "earthlib_data_dir",
    "load_libraries",
]

#: Names accepted by :func:`load_libraries`.
LIBRARY_NAMES: tuple[str, ...] = ("usgs", "earthlib", "berlin", "gamsberg")

#: Common cover types of the spectra of every library.
COVER_TYPES: tuple[str, ...] = (
    "roof", "pavement", "built", "vegetation", "tree", "npv", "burned", "soil", "mineral", "water",
)

# Spectral ranges (nm) where field spectra are unreliable: detector edges and atmospheric water vapour.
_FIELD_BAD_RANGES_NM: tuple[tuple[float, float], ...] = ((0.0, 400.0), (1340.0, 1460.0), (1790.0, 1960.0), (2450.0, 1e9))

# earthlib LEVEL_2 / LEVEL_3 labels -> common cover type; built surfaces are split into roofs and pavements
_EARTHLIB_ROOF = {"comp_shingle", "tile", "concrete_tile", "wood_shingle", "metal"}
_EARTHLIB_PAVEMENT = {"asphalt", "road", "parking_lot", "sidewalk", "driveway", "bridge", "gravel"}
_EARTHLIB_LEVEL2 = {"bare": "soil", "burned": "burned", "npv": "npv", "vegetation": "vegetation", "built": "built"}
# Berlin level_3 labels -> common cover type
_BERLIN_COVERS = {
    "roof": "roof", "pavement": "pavement", "low vegetation": "vegetation", "tree": "tree", "soil": "soil",
    "water": "water",
}


@dataclass(frozen=True, eq=False)
class SpectralLibrary:
    """Spectra of real materials on one set of bands.

    Parameters
    ----------
    name
        Library name (one of :data:`LIBRARY_NAMES` for the shipped readers).
    wavelengths_nm, fwhm_nm
        Band centres and widths, nanometres, increasing.
    spectra
        ``(n_spectra, n_bands)`` reflectance, 0-1, float32.
    names
        One name per spectrum.
    classes
        The library's own class label of each spectrum (e.g. ``"roof"``, ``"Kaolinite"``, ``"canopy"``).
    covers
        The common cover type of each spectrum, one of :data:`COVER_TYPES`.
    good
        ``False`` for bands without reliable values (see the module notes).
    filled
        ``True`` for bands not measured but filled by interpolation when resampled to a sensor
        (all ``False`` for a library on its own bands).
    sensor
        Name of the sensor the library was resampled to, ``""`` on its own bands.
    source
        Where the spectra come from.
    """

    name: str
    wavelengths_nm: np.ndarray
    fwhm_nm: np.ndarray
    spectra: np.ndarray
    names: tuple[str, ...]
    classes: tuple[str, ...]
    covers: tuple[str, ...]
    good: np.ndarray
    filled: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    sensor: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        # own copies, read-only: cached libraries are shared, and callers keep their arrays writable
        kinds = {"wavelengths_nm": np.float64, "fwhm_nm": np.float64, "spectra": np.float32, "good": bool, "filled": bool}
        for attr, dtype in kinds.items():
            object.__setattr__(self, attr, np.array(getattr(self, attr), dtype=dtype))
        if self.spectra.ndim != 2:
            raise DcstsfInputError(f"library {self.name!r}: spectra must be 2-D (n_spectra, n_bands), got {self.spectra.shape}")
        n, nb = self.spectra.shape
        if not (len(self.names) == len(self.classes) == len(self.covers) == n):
            raise DcstsfInputError(f"library {self.name!r}: names, classes and covers must have one entry per spectrum")
        if self.wavelengths_nm.shape != (nb,) or self.fwhm_nm.shape != (nb,) or self.good.shape != (nb,):
            raise DcstsfInputError(f"library {self.name!r}: wavelengths, fwhm and good need one value per band ({nb})")
        unknown = sorted(set(self.covers) - set(COVER_TYPES))
        if unknown:
            raise DcstsfInputError(f"library {self.name!r}: unknown cover types {unknown}; use {COVER_TYPES}")
        if self.filled.shape != (nb,):
            object.__setattr__(self, "filled", np.zeros(nb, bool))
        for attr in kinds:
            getattr(self, attr).setflags(write=False)

    @property
    def n_spectra(self) -> int:
        """Number of spectra."""
        return int(self.spectra.shape[0])

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return int(self.spectra.shape[1])

    def cover_index(self, covers: str | Iterable[str]) -> np.ndarray:
        """Indices of the spectra whose cover type is ``covers`` (one name or several)."""
        wanted = {covers} if isinstance(covers, str) else set(covers)
        return np.array([i for i, c in enumerate(self.covers) if c in wanted], dtype=np.intp)

    def select(self, index: Sequence[int] | np.ndarray) -> SpectralLibrary:
        """A library with only the spectra at ``index`` (in that order)."""
        idx = np.asarray(index, dtype=np.intp)
        return replace(
            self,
            spectra=self.spectra[idx],
            names=tuple(self.names[i] for i in idx),
            classes=tuple(self.classes[i] for i in idx),
            covers=tuple(self.covers[i] for i in idx),
        )

    def as_sensor(self) -> Sensor:
        """The library's own bands as a :class:`~dcstsf.sensors.Sensor` (Gaussian responses, bad bands flagged)."""
        return _sensors.from_wavelengths(self.wavelengths_nm, self.fwhm_nm, name=f"library-{self.name}", good=self.good)

    def to_sensor(self, sensor: Sensor | str) -> SpectralLibrary:
        """The spectra resampled to the bands of ``sensor`` (see the module notes on bad and uncovered bands).

        The result's ``good`` is the sensor's own bad-band flag and ``filled`` marks the bands that the
        library's good bands cover for less than half of their response.
        """
        target = _sensors.get(sensor)
        return _resampled(self, target)

    def describe(self) -> dict[str, object]:
        """Counts per cover type and the spectral range, for logs and reports."""
        return {
            "name": self.name,
            "n_spectra": self.n_spectra,
            "n_bands": self.n_bands,
            "range_nm": [float(self.wavelengths_nm[self.good].min()), float(self.wavelengths_nm[self.good].max())],
            "covers": {c: int(n) for c, n in zip(*np.unique(np.array(self.covers), return_counts=True))},
            "sensor": self.sensor,
            "filled_bands": int(self.filled.sum()),
        }


@functools.lru_cache(maxsize=32)
def _resampled(library: SpectralLibrary, target: Sensor) -> SpectralLibrary:
    if library.sensor == target.name and library.n_bands == target.n_bands:
        return library
    src = library.as_sensor()
    w = _sensors.spectral_resampling_matrix(src, target)
    coverage = _sensors.resampling_coverage(src, target)
    # rows of w are convex weights, so resampled values stay inside each spectrum's own 0-1 range
    spectra = np.clip(library.spectra.astype(np.float64) @ w.T, 0.0, 1.0).astype(np.float32)
    return replace(
        library,
        wavelengths_nm=target.centers_nm,
        fwhm_nm=target.fwhm_nm,
        spectra=spectra,
        good=target.good,
        filled=coverage < 0.5,
        sensor=target.name,
    )


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------


def _need(path: Path, fix: str) -> Path:
    if not path.is_file():
        raise DcstsfInputError(f"{path}: spectral library file not found. {fix}")
    return path


def _shared_fix() -> str:
    return "Check that the shared data folder (root= or DCSTSF_SHARED_DATA) holds spectral_libraries/"


def _read_envi_library(hdr_path: Path, data_path: Path, *, default_scale: float) -> tuple[np.ndarray, dict]:
    """``(spectra (n, bands) float64 reflectance, header)`` of an ENVI spectral library."""
    hdr = parse_envi_header(hdr_path)
    try:
        n_bands, n_spectra = int(hdr["samples"]), int(hdr["lines"])
        dtype = np.dtype(("<" if int(hdr.get("byte order", 0)) == 0 else ">") + ENVI_DTYPES[int(hdr["data type"])])
        offset = int(hdr.get("header offset", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise DcstsfInputError(
            f"{hdr_path}: spectral library header lacks or garbles samples/lines/data type ({exc}). "
            "Use the original header"
        ) from exc
    raw = np.fromfile(_need(data_path, _shared_fix()), dtype=dtype, offset=offset)
    if raw.size != n_spectra * n_bands:
        raise DcstsfInputError(
            f"{data_path}: holds {raw.size} values, the header says {n_spectra} spectra x {n_bands} bands. "
            "Use the original library files"
        )
    scale = float(hdr.get("reflectance scale factor", default_scale))
    return raw.reshape(n_spectra, n_bands).astype(np.float64) / scale, hdr


def _header_wavelengths(hdr: dict, path: Path, n_bands: int) -> tuple[np.ndarray, np.ndarray | None]:
    wl = np.asarray(hdr.get("wavelength", []), dtype=float)
    if wl.shape != (n_bands,):
        raise DcstsfInputError(f"{path}: the header needs {n_bands} 'wavelength' values. Use the original header")
    units = str(hdr.get("wavelength units", "")).lower()
    factor = 1000.0 if units.startswith("micro") or (not units.startswith("nano") and wl.max() < 100) else 1.0
    fwhm = np.asarray(hdr["fwhm"], dtype=float) * factor if "fwhm" in hdr else None
    return wl * factor, fwhm


def _read_csv(path: Path) -> list[dict[str, str]]:
    with _need(path, "Use the original library files").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _read_usgs(root: Path) -> SpectralLibrary:
    path = _need(root / "spectral_libraries" / "USGS_1995_Library.mat", _shared_fix())
    mat = scipy.io.loadmat(path)
    data = np.asarray(mat["datalib"], dtype=float)
    # the first three rows of `names` describe the wavelength, FWHM and index columns
    names = [bytes(np.asarray(r, np.uint8)).decode("latin-1").strip() for r in mat["names"]][3:]
    spectra = data[:, 3:].T
    if len(names) != spectra.shape[0]:
        raise DcstsfInputError(f"{path}: {len(names)} names for {spectra.shape[0]} spectra. Use the original file")
    classes = tuple(n.split()[0] if n.split() else n for n in names)
    return _finish(
        "usgs", data[:, 0] * 1000.0, data[:, 1] * 1000.0, spectra, names, classes, ("mineral",) * len(names),
        source=f"{path} (USGS 1995 mineral library on AVIRIS bands)",
    )


def earthlib_data_dir() -> Path:
    """The ``data`` folder of the installed ``earthlib`` package (found without importing it).

    Raises
    ------
    DcstsfInputError
        If ``earthlib`` is not installed.
    """
    spec = importlib.util.find_spec("earthlib")
    if spec is None or not spec.submodule_search_locations:
        raise DcstsfInputError(
            "the earthlib spectral library needs the PyPI package earthlib: pip install 'dcstsf[train]' "
            "(or pip install earthlib==1.1.0), or load only the shared-data libraries "
            "(load_libraries(names=('usgs', 'berlin', 'gamsberg')))"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_earthlib() -> SpectralLibrary:
    d = earthlib_data_dir()
    spectra, hdr = _read_envi_library(d / "spectra.sli.hdr", d / "spectra.sli", default_scale=1.0)
    wl, fwhm = _header_wavelengths(hdr, d / "spectra.sli.hdr", spectra.shape[1])
    rows = _read_csv(d / "spectra.csv")
    if len(rows) != spectra.shape[0]:
        raise DcstsfInputError(f"{d / 'spectra.csv'}: {len(rows)} rows for {spectra.shape[0]} spectra. Reinstall earthlib")
    classes, covers = [], []
    for r in rows:
        l2, l3 = r["LEVEL_2"].strip().lower(), r["LEVEL_3"].strip().lower()
        classes.append(l3)
        if l2 == "built":
            covers.append("roof" if l3 in _EARTHLIB_ROOF else "pavement" if l3 in _EARTHLIB_PAVEMENT else "built")
        else:
            covers.append(_EARTHLIB_LEVEL2.get(l2, "soil"))
    # 10 nm samples: the header has no FWHM, and the spacing would widen the bands beside the removed windows
    return _finish(
        "earthlib", wl, fwhm if fwhm is not None else np.full(wl.shape, 10.0), spectra,
        [r["NAME"] for r in rows], classes, covers, source=f"{d} (earthlib package spectral library)",
    )


def _read_berlin(root: Path) -> SpectralLibrary:
    base = root / "spectral_libraries"
    hdr_path = _need(base / "library_berlin.hdr", _shared_fix())
    spectra, hdr = _read_envi_library(hdr_path, base / "library_berlin.sli", default_scale=10000.0)
    wl, fwhm = _header_wavelengths(hdr, hdr_path, spectra.shape[1])
    rows = _read_csv(base / "library_berlin.csv")
    names = [str(n).strip() for n in hdr.get("spectra names", [])]
    if len(rows) != spectra.shape[0] or len(names) != spectra.shape[0]:
        raise DcstsfInputError(f"{base}: library_berlin .csv/.hdr names do not match its {spectra.shape[0]} spectra")
    classes = [r["level_3"].strip().lower() for r in rows]
    unknown = sorted(set(classes) - set(_BERLIN_COVERS))
    if unknown:
        raise DcstsfInputError(f"{base / 'library_berlin.csv'}: unknown level_3 classes {unknown}. Use the original file")
    return _finish(
        "berlin", wl, fwhm, spectra, names, classes, [_BERLIN_COVERS[c] for c in classes],
        source=f"{hdr_path} (SpecLib Berlin Urban Gradient 2009, doi 10.5880/enmap.2016.008)",
    )


def _gamsberg_cover(name: str) -> str:
    n = name.lower().replace(" ", "_")
    if "green" in n and ("veg" in n or "grass" in n):
        return "vegetation"
    if "veg" in n:
        return "npv"
    return "soil" if "sand" in n else "mineral"


def _read_gamsberg(root: Path) -> SpectralLibrary:
    base = root / "spectral_libraries"
    hdr_path = _need(base / "gamsberg_field_library.hdr", _shared_fix())
    spectra, hdr = _read_envi_library(hdr_path, base / "gamsberg_field_library", default_scale=1.0)
    wl, fwhm = _header_wavelengths(hdr, hdr_path, spectra.shape[1])
    names = [str(n).strip() for n in hdr.get("spectra names", [])]
    if len(names) != spectra.shape[0]:
        raise DcstsfInputError(f"{hdr_path}: {len(names)} spectra names for {spectra.shape[0]} spectra")
    covers = [_gamsberg_cover(n) for n in names]
    bad = np.zeros(wl.shape, bool)
    for lo, hi in _FIELD_BAD_RANGES_NM:
        bad |= (wl >= lo) & (wl < hi)
    return _finish(
        "gamsberg", wl, fwhm, spectra, names, covers, covers, bad=bad,
        source=f"{hdr_path} (Gamsberg field spectra, ASD, 1 nm)",
    )


def _finish(
    name: str,
    wl: np.ndarray,
    fwhm: np.ndarray | None,
    spectra: np.ndarray,
    names: Sequence[str],
    classes: Sequence[str],
    covers: Sequence[str],
    *,
    bad: np.ndarray | None = None,
    source: str,
) -> SpectralLibrary:
    """Sort bands, flag bad bands, drop spectra out of range, and build the library."""
    order = np.argsort(wl, kind="stable")
    wl, spectra = wl[order], spectra[:, order]
    fwhm = np.gradient(wl) if fwhm is None else np.asarray(fwhm, float)[order]
    good = np.isfinite(spectra).all(axis=0) & np.isfinite(wl)
    if bad is not None:
        good &= ~bad[order]
    on_good = spectra[:, good]
    keep = np.isfinite(on_good).all(axis=1) & (on_good >= 0.0).all(axis=1) & (on_good <= 1.0).all(axis=1)
    keep &= on_good.max(axis=1) > 0.0
    idx = np.flatnonzero(keep)
    values = np.nan_to_num(spectra[idx], nan=0.0).astype(np.float32)
    return SpectralLibrary(
        name=name,
        wavelengths_nm=wl.astype(float),
        fwhm_nm=np.maximum(fwhm, 1e-3),
        spectra=values,
        names=tuple(names[i] for i in idx),
        classes=tuple(classes[i] for i in idx),
        covers=tuple(covers[i] for i in idx),
        good=good,
        source=source,
    )


@functools.lru_cache(maxsize=16)
def _load_one(name: str, root: str) -> SpectralLibrary:
    if name == "earthlib":
        return _read_earthlib()
    readers = {"usgs": _read_usgs, "berlin": _read_berlin, "gamsberg": _read_gamsberg}
    return readers[name](Path(root))


def load_libraries(
    root: str | os.PathLike[str] | None = None, *, names: Sequence[str] = LIBRARY_NAMES
) -> dict[str, SpectralLibrary]:
    """Read spectral libraries on their own bands (name -> :class:`SpectralLibrary`).

    Parameters
    ----------
    root
        The shared data folder; default :func:`dcstsf.datasets.shared_data_dir`. ``earthlib`` is read from
        the installed package whatever ``root`` is.
    names
        Which libraries, from :data:`LIBRARY_NAMES`.

    Raises
    ------
    DcstsfInputError
        An unknown name, a missing file, or ``earthlib`` asked for but not installed.
    """
    unknown = [n for n in names if n not in LIBRARY_NAMES]
    if unknown:
        raise DcstsfInputError(f"unknown spectral libraries {unknown}; choose from {', '.join(LIBRARY_NAMES)}")
    base = str(shared_data_dir() if root is None else Path(root).expanduser().resolve())
    return {n: _load_one(n, base) for n in names}
