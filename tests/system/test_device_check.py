"""``experiments/device_check.py``, the script a machine with a GPU runs: it must work before one is lent.

On the CPU against a reference made here it finds identical results; a reference that differs beyond a
tolerance fails the check.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "device_check.py"


@pytest.fixture(scope="module")
def device_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_against_a_cpu_reference_passes_and_a_changed_one_fails(device_check: ModuleType, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    assert device_check.main(["prepare", "--out", str(ref), "--adapt-steps", "2", "--train-steps", "3"]) == 0
    assert device_check.main(["run", "--ref", str(ref), "--device", "cpu", "--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "device_check.json").read_text())
    assert set(report["checks"]) == set(device_check.TOLERANCES)
    assert all(c["value"] == 0 or name == "tiled_vs_whole_max_abs" for name, c in report["checks"].items())
    assert report["checks"]["tiled_vs_whole_max_abs"]["ok"]
    # a training loss 10 % off the reference's is beyond the 2 % tolerance
    result = json.loads((ref / "result.json").read_text())
    result["train_loss"] *= 1.1
    (ref / "result.json").write_text(json.dumps(result))
    assert device_check.main(["run", "--ref", str(ref), "--device", "cpu", "--out", str(tmp_path / "b")]) == 1
    failed = json.loads((tmp_path / "b" / "device_check.json").read_text())["checks"]
    assert [k for k, c in failed.items() if not c["ok"]] == ["trained_loss_rel"]
