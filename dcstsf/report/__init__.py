"""Quality reports for fused hyperspectral predictions (``dcstsf evaluate``).

:func:`evaluate_predictions` writes ``metrics.json``, a self-contained ``report.html`` and a
``report.md`` (with ``figures/*.png``): full-reference metrics against a truth, global, per band and on
changed and unchanged pixels; quicklooks, error maps, the change between the dates, spectra at sample
pixels, a side-by-side comparison of several predictions; no-reference quality
(:func:`no_reference_quality`) with maps of where a prediction fails to reproduce MS(t2) and HS(t1),
for real scenes without truth; the scene physics and co-registration the fusion recorded; a per-pixel
uncertainty and its calibration. The sensor's bad bands are left out of every metric. Every cube is
read tile by tile (:mod:`dcstsf.report.passes`), so a scene larger than memory is evaluated within the
default memory limit.
"""

from dcstsf.report.display import FALSE_COLOUR_NM, TRUE_COLOUR_NM, nearest_bands
from dcstsf.report.document import FULL_REFERENCE_COLUMNS, NO_REFERENCE_COLUMNS
from dcstsf.report.evaluate import REPORT_FILES, evaluate_predictions
from dcstsf.report.headline import HEADLINE_COLUMNS, format_headline, headline_rows
from dcstsf.report.inputs import find_case_meta, load_mask
from dcstsf.report.noref import (
    DEFAULT_CHANGE_THRESHOLD,
    NO_REFERENCE_DEFINITIONS,
    no_reference_quality,
    unchanged_pixels,
)

__all__ = [
    "DEFAULT_CHANGE_THRESHOLD",
    "FALSE_COLOUR_NM",
    "FULL_REFERENCE_COLUMNS",
    "HEADLINE_COLUMNS",
    "NO_REFERENCE_COLUMNS",
    "NO_REFERENCE_DEFINITIONS",
    "REPORT_FILES",
    "TRUE_COLOUR_NM",
    "evaluate_predictions",
    "find_case_meta",
    "format_headline",
    "headline_rows",
    "load_mask",
    "nearest_bands",
    "no_reference_quality",
    "unchanged_pixels",
]
