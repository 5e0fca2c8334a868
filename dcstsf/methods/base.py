"""The seam between fusion methods and the engine.

A :class:`Method` fuses small in-memory windows; the engine (``dcstsf.engine``) knows scenes: grids,
chunks, halos, files and schedulers. A method has three parts:

- :meth:`Method.halo`: the receptive field in fine pixels (a multiple of the ratio). A window padded by
  this halo gives exactly the whole-image result in its interior.
- :meth:`Method.fit`: scene-level statistics computed **once** on the whole scene (possibly Dask-backed,
  possibly subsampled), small NumPy arrays. Tiled fusion equals whole-image fusion because every
  tile sees the same fitted state. The engine calls it through :func:`fit_scene`.
- :meth:`Method.apply`: fuse one window, NumPy in, NumPy out, no NaN in the inputs (the engine fills
  nodata before and masks it after). The engine calls :meth:`Method.apply_region`, which by default
  crops ``apply``'s result to the tile core and which a method may override to skip work in the halo.

Window shapes: ``hs_t1`` is ``(n_hs, h, w)`` on the coarse grid; ``ms_t1``/``ms_t2`` are
``(n_ms, h*r, w*r)`` on the fine grid covering exactly the same area (pixel corners coincide).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from dcstsf._threads import fixed_threads
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import (
    SceneSamples,
    apply_spectral_map,
    fit_spectral_map,
    round_up_to_ratio,
    scene_samples,
)

__all__ = [
    "Fitted",
    "Method",
    "RegionMethod",
    "SceneSamples",
    "available_methods",
    "apply_spectral_map",
    "fit_scene",
    "fit_spectral_map",
    "round_up_to_ratio",
    "fuse_arrays",
    "get_method",
    "method_name",
    "register_method",
    "scene_samples",
]

#: Fitted scene state: small NumPy arrays (and JSON-friendly scalars) keyed by name.
Fitted = dict[str, Any]

#: NumPy's BLAS threads while a method fits a scene. A multi-threaded BLAS rounds the scene statistics by
#: thread count; with one the fitted state, and the ``fitted_sha256`` of the output, are the same
#: whatever ``OMP_NUM_THREADS`` or the machine's cores. The fits are small products and decompositions.
FIT_BLAS_THREADS = 1


def fit_scene(method: Method, hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel) -> Fitted:
    """``method.fit`` with NumPy's BLAS on :data:`FIT_BLAS_THREADS` threads: how every engine path fits."""
    with fixed_threads(blas=FIT_BLAS_THREADS):
        return method.fit(hs_t1, ms_t1, ms_t2, model=model)


class Method(ABC):
    """A fusion method: predict fine HS(t2) from coarse HS(t1) and fine MS(t1), MS(t2)."""

    #: Registry name, e.g. ``"two-step"``.
    name: ClassVar[str]
    #: One line for ``dcstsf methods``.
    description: ClassVar[str]
    #: The paper(s) it follows.
    reference: ClassVar[str]
    #: Whether the method fuses through the observation model (and the MS images): the scene diagnosis
    #: (estimated physics, consistency checks of the MS inputs) runs only for such methods.
    uses_scene_physics: ClassVar[bool] = True

    @abstractmethod
    def halo(self, model: ObservationModel) -> int:
        """Receptive field in fine pixels, a multiple of ``model.ratio``."""

    @abstractmethod
    def fit(self, hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel) -> Fitted:
        """Scene-level statistics from whole-scene arrays (NumPy or Dask, NaN = nodata)."""

    @abstractmethod
    def apply(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
    ) -> np.ndarray:
        """Fuse one window; returns ``(n_hs, H, W)`` float32 on the fine grid."""

    def apply_region(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
        region: tuple[slice, slice],
    ) -> np.ndarray:
        """Fuse one window but return only the fine-grid ``region`` (the tile core the engine keeps).

        The default crops :meth:`apply`; a method whose last steps are per-pixel and expensive (e.g. a
        subspace expansion to ``n_hs`` bands) overrides it to do those steps on the region only. The
        values must equal ``apply(...)[:, region[0], region[1]]``.
        """
        out = self.apply(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted)
        return np.asarray(out)[(slice(None), *region)]

    def ms_band_order(self, model: ObservationModel) -> list[str] | None:
        """The MS band order the method needs, or ``None`` when any order will do (the default).

        A method with learned weights reads the MS bands by position; it returns the order its weights
        were trained with when ``model``'s MS bands are that set, and the engine puts the bands in that
        order (:func:`dcstsf.engine.bands.reorder_ms_bands`) before fitting. The output's bands are the
        HS sensor's whatever the MS order.
        """
        return None

    def identity(self) -> dict[str, Any]:
        """What goes into output attrs (name, and e.g. a weights hash)."""
        return {"method": self.name}


class RegionMethod(Method):
    """A method written for regions: :meth:`apply_region` is the implementation and :meth:`apply` is
    the whole window as the region (DC-STSF, two-step, variational expand to ``n_hs`` bands on the
    region only, so the engine's halo costs them no 166-band work)."""

    def apply(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
    ) -> np.ndarray:
        h, w = np.shape(ms_t1)[1:]
        return self.apply_region(
            hs_t1, ms_t1, ms_t2, model=model, fitted=fitted, region=(slice(0, h), slice(0, w))
        )

    @abstractmethod
    def apply_region(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
        region: tuple[slice, slice],
    ) -> np.ndarray:
        """Fuse one window and return ``(n_hs, H, W)`` float32 on the fine-grid ``region`` only."""


_REGISTRY: dict[str, Callable[[], Method]] = {}


def register_method(name: str, factory: Callable[[], Method]) -> None:
    """Register a method factory under ``name``."""
    _REGISTRY[name] = factory


def available_methods() -> dict[str, type[Method] | Callable[[], Method]]:
    """Registered method names and their factories."""
    return dict(sorted(_REGISTRY.items()))


def method_name(name: str) -> str:
    """The registered name ``name`` spells, ignoring case and ``-``/``_``/spaces (``"DC-STSF"`` ->
    ``"dcstsf"``, ``"TwoStep"`` -> ``"two-step"``); ``name`` itself when it spells none."""
    def key(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch not in "-_ ")

    return next((registered for registered in _REGISTRY if key(registered) == key(str(name))), name)


def get_method(method: str | Method) -> Method:
    """A method instance by name, in any spelling :func:`method_name` reads (an instance passes through)."""
    if isinstance(method, Method):
        return method
    method = method_name(method)
    if method not in _REGISTRY:
        raise DcstsfInputError(
            f"unknown fusion method {method!r}; available: {', '.join(sorted(_REGISTRY))} "
            "(see `dcstsf methods`)"
        )
    return _REGISTRY[method]()


def fuse_arrays(
    hs_t1: np.ndarray,
    ms_t1: np.ndarray,
    ms_t2: np.ndarray,
    *,
    method: str | Method,
    model: ObservationModel,
    physics: str = "tables",
    checks: bool = False,
) -> np.ndarray:
    """Fuse in-memory NumPy arrays in one window (no tiling): ``fit`` then ``apply``, nodata as in the engine.

    The engine's nodata policy applies (:mod:`dcstsf.engine.tile`): +/-Inf counts as NaN, NaN is filled
    with the per-band scene mean before ``apply``, and the output is NaN wherever any MS band is NaN at
    t1 or t2 or the covering HS pixel is NaN in a good band.

    This is the low-level path: by default it fuses with the physics ``model`` holds, unchecked.
    ``physics="estimated"`` first diagnoses the scene as :func:`dcstsf.fuse` does
    (:func:`dcstsf.diagnosis.diagnose_scene`, with the consistency checks when ``checks``). The result
    equals an untiled :func:`dcstsf.fuse` of the same arrays with the same ``physics`` (``fuse`` also
    checks the values and orders the MS bands as the method needs them).
    """
    # Imported here: dcstsf.engine imports this module.
    from dcstsf.engine.tile import fuse_whole_image

    m = get_method(method)
    _check_shapes(hs_t1, ms_t1, ms_t2, model)
    if physics != "tables" or checks:
        from dcstsf.diagnosis import DiagnosisOptions, diagnose_scene
        from dcstsf.nodata import inf_to_nan

        arrays = [inf_to_nan(np.asarray(a, dtype=np.float32)) for a in (hs_t1, ms_t1, ms_t2)]
        model = diagnose_scene(*arrays, model=model, options=DiagnosisOptions(physics=physics, checks=checks)).model
    return fuse_whole_image(m, hs_t1, ms_t1, ms_t2, model=model)


def _check_shapes(hs: Any, ms1: Any, ms2: Any, model: ObservationModel) -> None:
    r = model.ratio
    if hs.shape[0] != model.n_hs:
        raise DcstsfInputError(
            f"HS(t1) has {hs.shape[0]} bands but the HS sensor {model.hs_sensor.name} has {model.n_hs}"
        )
    for label, ms in (("MS(t1)", ms1), ("MS(t2)", ms2)):
        if ms.shape[0] != model.n_ms:
            raise DcstsfInputError(
                f"{label} has {ms.shape[0]} bands but {model.n_ms} MS bands were declared "
                f"({', '.join(model.ms_sensor.band_names)})"
            )
        if tuple(ms.shape[1:]) != (hs.shape[1] * r, hs.shape[2] * r):
            raise DcstsfInputError(
                f"{label} is {ms.shape[1]}x{ms.shape[2]} pixels but HS(t1) {hs.shape[1]}x{hs.shape[2]} at ratio {r} "
                f"needs {hs.shape[1] * r}x{hs.shape[2] * r}; crop the MS images to the HS footprint"
            )
