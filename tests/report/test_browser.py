"""report.html opened in a real headless browser: no broken image, no script error, figures not shrunk.

Needs a Chromium (or Chrome) binary: ``apt-get install -y chromium`` on Debian/Ubuntu, or set
``DCSTSF_BROWSER`` to one. Without it the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Collects load errors of images and script errors, then writes what it saw into the page on load.
_CHECKER = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t.tagName === 'IMG') { window.__errors.push('image failed: ' + (t.alt || t.src.slice(0, 40))); }
  else { window.__errors.push('script error: ' + e.message); }
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var seen = {errors: window.__errors, images: imgs.map(function (i) {
    return {alt: i.alt, complete: i.complete, natural: i.naturalWidth, shown: i.getBoundingClientRect().width};
  })};
  var pre = document.createElement('pre');
  pre.id = 'browser-check';
  pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
</script>"""


def _browser() -> str | None:
    env = os.environ.get("DCSTSF_BROWSER")
    if env:
        return env if shutil.which(env) or Path(env).is_file() else None
    return next((p for p in map(shutil.which, _CANDIDATES) if p), None)


BROWSER = _browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no headless Chromium: install it with `apt-get install -y chromium` (Debian/Ubuntu) or set "
    "DCSTSF_BROWSER to a Chrome/Chromium binary",
)


def _open(page: Path, tmp: Path) -> dict[str, Any]:
    """What the checker saw when the browser loaded ``page`` (a copy with the checker injected)."""
    checked = tmp / f"checked-{page.stem}.html"
    checked.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>\n" + _CHECKER, 1), encoding="utf-8")
    assert BROWSER is not None
    cmd = [BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,2000",
           f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=15000", "--dump-dom", checked.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="browser-check">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the page did not finish loading in the browser: {proc.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def test_report_opens_without_errors(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, res = report
    seen = _open(out / "report.html", tmp_path)
    assert seen["errors"] == []
    assert len(seen["images"]) == len(res["files"]["figures"])
    for img in seen["images"]:
        assert img["complete"] and img["natural"] > 0, img["alt"]
        # shown at (at least) its own size: 9 pt labels stay about 12 px high
        assert img["shown"] >= img["natural"] - 1, img


def test_the_check_sees_broken_images_and_script_errors(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body>'
                    '<img alt="missing" src="data:image/png;base64,AAAA"><script>undefinedFunction();</script>'
                    "</body></html>")
    seen = _open(page, tmp_path)
    assert any(e.startswith("image failed: missing") for e in seen["errors"])
    assert any(e.startswith("script error") for e in seen["errors"])
    assert seen["images"][0]["natural"] == 0
