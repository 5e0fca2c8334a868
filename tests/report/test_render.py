"""Tests of dcstsf.report.render: how numbers and JSON pointers are written."""

from __future__ import annotations

from dcstsf.report.render import format_value, json_pointer


def test_format_value_and_json_pointer() -> None:
    assert format_value(float("nan"), 2) == "n/a" and format_value(None, 2) == "n/a"
    assert format_value(1.23456, 3) == "1.235"
    assert json_pointer("methods", "a/b", "x~y") == "methods/a~1b/x~0y"
