"""When each input was acquired, and the check that HS(t1) and MS(t1) show the same date.

The fusion takes HS(t1) and MS(t1) to observe the same surface: SSJE sharpens HS(t1) with MS(t1), and
everything MS(t1) shows that HS(t1) does not is taken for spatial detail. A pair weeks apart (a crop
grown, a field harvested) breaks that silently, and so does the same MS scene given for both dates.
Where the inputs carry their acquisition times, the engine compares them and warns:

* HS(t1) and MS(t1) more than :data:`MAX_T1_GAP_DAYS` apart;
* MS(t1) and MS(t2) acquired at the same time, by their product metadata (``acquisition_time``).

The times come from the ``acquisition_time`` attribute (set by the product readers: Sentinel-2, STAC, EnMAP, PRISMA, AHSI), else
``start_time`` (EnMAP-Box style GeoTIFF tags), else ``datetime`` (STAC), as ISO 8601 text. Inputs without
any are not checked.
"""

from __future__ import annotations

import datetime as dt
import warnings

import xarray as xr

from dcstsf.engine.sources import input_label

__all__ = ["MAX_T1_GAP_DAYS", "TIME_ATTRIBUTES", "acquisition_time", "check_acquisition_times"]

#: Attributes that hold an input's acquisition time, in the order they are read.
TIME_ATTRIBUTES = ("acquisition_time", "start_time", "datetime")

#: Days HS(t1) and MS(t1) may lie apart before the engine warns: vegetation and crops change within weeks,
#: and a Sentinel-2 scene within a few days of the HS overpass is usually available.
MAX_T1_GAP_DAYS = 10.0


def acquisition_time(da: xr.DataArray, *, keys: tuple[str, ...] = TIME_ATTRIBUTES) -> dt.datetime | None:
    """The input's acquisition time from its attributes ``keys`` (UTC when no zone is given), or ``None``."""
    for key in keys:
        text = da.attrs.get(key)
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return None


def check_acquisition_times(hs_t1: xr.DataArray, ms_t1: xr.DataArray, ms_t2: xr.DataArray) -> None:
    """Warn when HS(t1) and MS(t1) lie more than :data:`MAX_T1_GAP_DAYS` apart, or when MS(t1) and MS(t2)
    were acquired at the same time (inputs without acquisition times are not checked)."""
    t_hs, t_ms1 = acquisition_time(hs_t1), acquisition_time(ms_t1)
    if t_hs is not None and t_ms1 is not None:
        gap = abs((t_ms1 - t_hs).total_seconds()) / 86400.0
        if gap > MAX_T1_GAP_DAYS:
            warnings.warn(
                f"{input_label(hs_t1, 'HS(t1)')} was acquired on {t_hs:%Y-%m-%d} and {input_label(ms_t1, 'MS(t1)')} "
                f"on {t_ms1:%Y-%m-%d}, {gap:.0f} days apart: the fusion takes them to show the same surface, so "
                "what changed between them becomes errors in the output. Give an MS(t1) acquired within a few "
                "days of HS(t1)",
                UserWarning,
                stacklevel=3,
            )
    # only product metadata tells two MS scenes apart: a generic tag may have been copied from one file to
    # another (a simulated case's MS(t2) made from its MS(t1) source)
    p_ms1, p_ms2 = (acquisition_time(a, keys=("acquisition_time",)) for a in (ms_t1, ms_t2))
    if p_ms1 is not None and p_ms2 is not None and p_ms1 == p_ms2:
        warnings.warn(
            f"{input_label(ms_t1, 'MS(t1)')} and {input_label(ms_t2, 'MS(t2)')} were acquired at the same time "
            f"({p_ms1:%Y-%m-%d %H:%M}): MS(t2) should show the date to predict; check that the same scene was not "
            "given twice",
            UserWarning,
            stacklevel=3,
        )
