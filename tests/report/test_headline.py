"""Tests of dcstsf.report.headline: the plain-text table printed by ``dcstsf demo`` and ``dcstsf evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dcstsf.report import format_headline, headline_rows
from dcstsf.report.render import format_value


def test_headline_table(report: tuple[Path, dict[str, Any]]) -> None:
    _, res = report
    text = format_headline(res)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["method", "PSNR(dB)", "SAM(deg)", "ERGAS", "SSIM"]
    assert any(line.startswith("bicubic") for line in lines)
    assert format_value(res["methods"]["bicubic"]["global"]["psnr"], 2) in text


def test_headline_without_runtimes_drops_the_time_column() -> None:
    result = {"methods": {"a": {"global": {"psnr": 30.0, "sam_deg": 2.0, "ergas": 1.5, "ssim": 0.9}}}}
    assert headline_rows(result) == [
        {"method": "a", "psnr": 30.0, "sam_deg": 2.0, "ergas": 1.5, "ssim": 0.9, "runtime_s": None}
    ]
    header = format_headline(result).splitlines()[0].split()
    assert header == ["method", "PSNR(dB)", "SAM(deg)", "ERGAS", "SSIM"]
