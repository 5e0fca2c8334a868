"""A memory limit on real runs: refused before any tile, refused after the first tile with the limit and tile
size that fit, then held by the limit the message names; not silently dropped on a Dask cluster.

The runs are ``dcstsf fuse`` in subprocesses, so the resident memory measured is the run's own.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.io import open_raster, write_raster
from dcstsf.simulate import simulate_case
from tests.scenes import synthetic_scene

GIB = 2**30

#: Runs ``dcstsf`` and prints the process's peak resident memory (bytes) on the last line of stderr. The
#: peak is the kernel's ``VmHWM``, which starts afresh at ``exec``; ``getrusage``'s ``ru_maxrss`` would
#: carry over the resident memory of the test process that started it.
_FUSE_WITH_PEAK = (
    "import re, sys\n"
    "from dcstsf.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "with open('/proc/self/status') as f:\n"
    "    kib = int(re.search(r'VmHWM:\\s*(\\d+) kB', f.read()).group(1))\n"
    "print(f'peak-rss {kib * 1024}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def case_files(model4: Any, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """AHSI + four Sentinel-2 bands, 288 x 288 fine pixels: 2 x 2 DC-STSF tiles of 144 px."""
    case = simulate_case(synthetic_scene(ny=288, nx=288, nb=50), model=model4, seed=2)
    d = tmp_path_factory.mktemp("memory-case")
    return [str(write_raster(getattr(case, n), d / f"{n}.tif")) for n in ("hs_t1", "ms_t1", "ms_t2")]


def fuse(inputs: list[str], out: Path, limit: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``dcstsf fuse`` with ``--memory-limit limit`` in a subprocess; the result and its peak resident memory."""
    argv = ["-q", "fuse", *inputs, "-o", str(out), "--method", "dcstsf", "--chunk", "144", "--memory-limit", limit]
    proc = subprocess.run([sys.executable, "-c", _FUSE_WITH_PEAK, *argv], capture_output=True, text=True, timeout=300)
    peak = int(re.findall(r"peak-rss (\d+)", proc.stderr)[-1])
    return proc, peak


def gib(pattern: str, text: str) -> float:
    """The GiB figure of ``text`` that ``pattern`` (one ``([\\d.]+)`` group) finds."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return float(found.group(1))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="resident memory is read from /proc (Linux)")
def test_a_limit_too_small_for_one_tile_is_refused_with_the_limit_that_fits(
    case_files: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "fused.tif"
    work = tmp_path / "fused.tif.dcstsf-work"
    # 1. Far below what the process holds: refused before any tile, nothing written.
    proc, _ = fuse(case_files, out, "10MB")
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "dcstsf: error: memory_limit=0.01 GiB (CLI --memory-limit) is too small for tiles of 144 px" in err
    assert "Traceback" not in err and not out.exists() and not work.exists()
    held = gib(r"this process holds ([\d.]+) GiB", err)
    writer = gib(r"the output writer ([\d.]+) GiB", err)
    floor = gib(r"output alone take ([\d.]+) GiB", err)

    # 2. Enough for a tile's inputs and output but not for the method's working memory (a DC-STSF tile of
    #    this case adds about 0.09 GiB, several times its inputs and output): refused after the first tile,
    #    which is kept. The margin stays well under that, as the process's own memory varies between runs.
    proc, _ = fuse(case_files, out, f"{held + writer + floor + 0.02:.2f}GiB")
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "one tile at a time needs" in err and "the finished tiles are kept and resumed" in err
    assert "Traceback" not in err and not out.exists()
    # the first tile is kept; a reading near the limit is confirmed by running the second tile alone too
    # (docs/design.md), which is then kept as well
    assert 1 <= len(list(work.glob("tile_*.npy"))) <= 2
    suggested = re.search(r"CLI --memory-limit ([\d.]+GiB):", err)
    assert suggested, err
    assert gib(r"one tile added ([\d.]+) GiB", err) > floor

    # 3. The limit named: the run resumes the finished tile and stays within it (a tile's reading with
    #    its 1.15x headroom, and the writer's GDAL cache, leave it well below).
    proc, peak = fuse(case_files, out, suggested.group(1))
    assert proc.returncode == 0, proc.stderr
    assert peak <= float(suggested.group(1).removesuffix("GiB")) * GIB
    assert out.exists() and not work.exists()
    assert np.isfinite(open_raster(out).values).all()


def test_a_memory_limit_is_shared_out_among_local_workers() -> None:
    """With workers=N the limit is not ignored: each worker process is held to 1/N of it by Dask."""
    from dcstsf.engine.cluster import client

    with client(2, None, memory_limit=4 * GIB) as c:
        limits = sorted(w["memory_limit"] for w in c.scheduler_info()["workers"].values())
    assert limits == [2 * GIB, 2 * GIB]
