"""The settings of :func:`~dcstsf.preparation.prepare_products`, in one small frozen dataclass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from dcstsf.errors import DcstsfInputError
from dcstsf.products.open import ProductOptions
from dcstsf.products.scl import DEFAULT_SCL, SclOptions
from dcstsf.products.sentinel2 import DEFAULT_BANDS, DEFAULT_CHUNKS
from dcstsf.sensors import Sensor

if TYPE_CHECKING:
    from dcstsf.coregistration import CoregistrationOptions

__all__ = ["PrepareOptions"]


@dataclass(frozen=True)
class PrepareOptions:
    """What the preparation reads and does.

    Attributes
    ----------
    ms_bands
        Sentinel-2 bands read from both MS products, in this order: the set the method's weights need
        (default: the shipped weights' ten bands, B02 B03 B04 B08 B05 B06 B07 B8A B11 B12).
    scl
        Scene Classification classes that become NaN in both MS dates (None: no SCL mask).
    coregister
        Estimate the HS-to-MS displacement and resample the HS cube by it (:mod:`dcstsf.coregistration`).
    coregistration
        Options of the co-registration (None: its defaults).
    ratio
        HS to MS pixel-size ratio; by default the HS sensor's nominal GSD over the MS grid's pixel size.
    union_masks
        Also set a pixel to NaN in both MS dates when either date has no data there (the fused output is
        NaN there anyway; this keeps the dates' statistics on the same pixels).
    hs_sensor
        HS sensor of the observation model used for co-registration (default: from the cube).
    ms_sensor, ms_sensor_t2
        Registry sensors overriding the spacecraft named in the MS(t1) and MS(t2) metadata (Sentinel-2C,
        whose responses are not shipped, needs one).
    chunks
        Dask chunk size (pixels) of the lazy arrays; None reads into memory.
    readers
        The hyperspectral readers' options (EnMAP quality masks, PRISMA overlap and error codes, AHSI
        scale); its ``ms_bands``, ``scl``, ``ms_sensor`` and ``chunks`` are replaced by the fields above.
    """

    ms_bands: Sequence[str] = DEFAULT_BANDS
    scl: SclOptions | None = DEFAULT_SCL
    coregister: bool = True
    coregistration: CoregistrationOptions | None = None
    ratio: int | None = None
    union_masks: bool = False
    hs_sensor: str | Sensor | None = None
    ms_sensor: str | Sensor | None = None
    ms_sensor_t2: str | Sensor | None = None
    chunks: int | None = DEFAULT_CHUNKS
    readers: ProductOptions = field(default_factory=ProductOptions)

    def __post_init__(self) -> None:
        if isinstance(self.ms_bands, str):
            object.__setattr__(self, "ms_bands", tuple(b.strip() for b in self.ms_bands.split(",") if b.strip()))
        else:
            object.__setattr__(self, "ms_bands", tuple(self.ms_bands))
        if self.ratio is not None and (not isinstance(self.ratio, int) or self.ratio < 1):
            raise DcstsfInputError(f"ratio must be a positive integer, got {self.ratio!r} (CLI --ratio)")
        if self.chunks is not None and (not isinstance(self.chunks, int) or self.chunks < 1):
            raise DcstsfInputError(f"chunks must be a positive number of pixels or None, got {self.chunks!r}")

    def product_options(self, date: str) -> ProductOptions:
        """The reader options of one input: ``"hs"``, ``"ms_t1"`` or ``"ms_t2"``."""
        sensor = self.ms_sensor_t2 if date == "ms_t2" else self.ms_sensor
        return replace(self.readers, ms_bands=self.ms_bands, scl=self.scl, ms_sensor=sensor, chunks=self.chunks)

    def describe(self) -> dict[str, object]:
        """The options as plain values (for the output's attributes and the resume key)."""
        return {
            "ms_bands": list(self.ms_bands),
            "scl_classes": None if self.scl is None else list(self.scl.classes),
            "coregister": self.coregister,
            "coregistration": None if self.coregistration is None else repr(self.coregistration),
            "ratio": self.ratio,
            "union_masks": self.union_masks,
            "hs_sensor": getattr(self.hs_sensor, "name", self.hs_sensor),
            "ms_sensor": getattr(self.ms_sensor, "name", self.ms_sensor),
            "ms_sensor_t2": getattr(self.ms_sensor_t2, "name", self.ms_sensor_t2),
        }
