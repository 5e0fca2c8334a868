"""Quality reports for fused hyperspectral predictions (``dcstsf evaluate``).

:func:`evaluate_predictions` writes ``metrics.json``, a self-contained ``report.html`` and a
``report.md`` (with ``figures/*.png``): full-reference metrics against a truth, global and per band,
quicklooks, error maps, spectra at sample pixels, a side-by-side comparison of several predictions, and
no-reference quality (:func:`no_reference_quality`) for real scenes without truth.
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
