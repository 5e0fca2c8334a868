"""Scene diagnosis: the sensor physics estimated from the inputs, and checks that the inputs agree.

See :func:`diagnose_scene`. One module per concept: :mod:`~dcstsf.diagnosis.windows` (what is read),
:mod:`~dcstsf.diagnosis.psf` (blur and shift), :mod:`~dcstsf.diagnosis.response` (spectral responses),
:mod:`~dcstsf.diagnosis.consistency` (band labels, date order, offset), :mod:`~dcstsf.diagnosis.values`
(plausible reflectance), :mod:`~dcstsf.diagnosis.diagnose` (the whole step).
"""

from dcstsf.diagnosis.diagnose import PHYSICS, DiagnosisOptions, SceneDiagnosis, diagnose_scene, estimated_model
from dcstsf.diagnosis.windows import SceneWindows, WindowOptions, scene_windows

__all__ = [
    "PHYSICS",
    "DiagnosisOptions",
    "SceneDiagnosis",
    "SceneWindows",
    "WindowOptions",
    "diagnose_scene",
    "estimated_model",
    "scene_windows",
]
