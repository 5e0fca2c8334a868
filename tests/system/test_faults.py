"""Real faults met by real processes: full file systems, signals, concurrent runs, outputs that are inputs.

Every test here runs ``dcstsf`` in a subprocess, as a user does, and checks two promises: nothing the
user had is lost or overwritten, and no run reports success on a broken output.

A full disk is a real small file system where the test can mount one (a tmpfs, directly as root or in a
user namespace), else a per-process file-size limit (``RLIMIT_FSIZE``): either way the failure is met by
GDAL's own write path, not faked inside Python.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dcstsf.cli import main
from dcstsf.io import write_raster
from tests.scenes import synthetic_scene

MOUNT = shutil.which("mount")
UMOUNT = shutil.which("umount")


# --------------------------------------------------------------------------------------------------
# inputs and helpers
# --------------------------------------------------------------------------------------------------


def simulated_case(tmp_path_factory: pytest.TempPathFactory, size: int) -> Path:
    """A simulated case: AHSI HS(t1) ``size/3`` pixels square, Sentinel-2 MS(t1), MS(t2) (four bands)."""
    src = write_raster(synthetic_scene(ny=size, nx=size, nb=50), tmp_path_factory.mktemp("src") / "scene.tif")
    out = tmp_path_factory.mktemp("case") / "case"
    assert main(["-q", "simulate", str(src), "-o", str(out), "--ms-bands", "B02,B03,B04,B08", "--seed", "2"]) == 0
    return out


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 x 30 fine pixels: one tile."""
    return simulated_case(tmp_path_factory, 30)


@pytest.fixture(scope="module")
def many_tiles_case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """192 x 192 fine pixels: 16 tiles of 48, long enough to be stopped half-way."""
    return simulated_case(tmp_path_factory, 192)


def inputs(case: Path) -> list[str]:
    return [str(case / "hs_t1.tif"), str(case / "ms_t1.tif"), str(case / "ms_t2.tif")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dcstsf_cmd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "dcstsf.cli", *argv]


def run_cli(*argv: str, timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(dcstsf_cmd(*argv), capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


def readable(path: Path) -> bool:
    """Whether ``path`` opens as a raster and every pixel decodes."""
    import rasterio

    try:
        with rasterio.open(path) as f:
            f.read()
    except Exception:
        return False
    return True


def _can_mount_tmpfs() -> bool:
    return bool(MOUNT and UMOUNT and os.geteuid() == 0)


#: How a write fails: ``tmpfs``, a real 1 MiB file system, where it can be mounted; ``fsize``, a per-process
#: file-size limit (EFBIG instead of ENOSPC), everywhere. Both reach GDAL's and HDF5's own write paths.
MECHANISMS = ["tmpfs", "fsize"] if _can_mount_tmpfs() else ["fsize"]
# The file-size limit: above every saved tile of the 192^2 case (1.5 MB) and below its output.
_FSIZE_LIMIT = 8 << 20


@pytest.fixture(params=MECHANISMS)
def full_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory where the output cannot be written completely, and the mechanism that makes it so."""
    d = tmp_path / "small"
    d.mkdir()
    mechanism = request.param
    if mechanism == "tmpfs":
        mounted = subprocess.run([MOUNT, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)],  # type: ignore[list-item]
                                 capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("a tmpfs could not be mounted here; the file-size limit variant runs instead")
    try:
        yield d, mechanism
    finally:
        if mechanism == "tmpfs":
            subprocess.run([UMOUNT, "-l", str(d)], capture_output=True)  # type: ignore[list-item]


def run_out_of_space(mechanism: str, small: Path, many: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``dcstsf fuse`` into ``out`` where its output cannot be stored but its saved tiles can.

    On the 1 MiB tmpfs: the 30 x 30 case, one saved tile of 600 kB, then a compressed output of about
    450 kB that does not fit beside it. Under the file-size limit: the 192 x 192 case, tiles of 1.5 MB
    each, an output of about 20 MB. Either way GDAL meets the failure while it flushes compressed blocks,
    after its write calls have returned.
    """
    if mechanism == "tmpfs":
        return run_cli("fuse", *inputs(small), "-o", str(out), "--method", "bicubic", *extra)

    def limit() -> None:
        # Without SIG_IGN the kernel kills the writer with SIGXFSZ; ignored, the write fails with EFBIG
        # where a full disk makes it fail with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (_FSIZE_LIMIT, _FSIZE_LIMIT))

    return run_cli("fuse", *inputs(many), "-o", str(out), "--method", "bicubic", "--chunk", "48", *extra,
                   preexec_fn=limit)


# --------------------------------------------------------------------------------------------------
# a full disk
# --------------------------------------------------------------------------------------------------


def assert_disk_full_message(stderr: str, out: Path) -> None:
    """dcstsf's own error line says the disk is full, names the output and says how to go on."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("dcstsf: error:")]
    assert lines, stderr
    msg = lines[-1].lower()
    assert ("no space" in msg or "full" in msg or "too large" in msg) and str(out.name).lower() in msg, stderr
    assert "again" in msg and lines[-1] == stderr.strip().splitlines()[-1], stderr
    # No traceback through dcstsf's code (a storage library may still print its own finalizer errors).
    assert not re.search(r'File "[^"]*/dcstsf/[^"]*\.py", line', stderr), stderr


@pytest.mark.parametrize("extra", [[], ["--cog"]], ids=["gtiff", "cog"])
def test_disk_full_while_writing_the_output_fails_and_keeps_the_work(
    case_dir: Path, many_tiles_case_dir: Path, full_disk: tuple[Path, str], extra: list[str]
) -> None:
    d, mechanism = full_disk
    out = d / "fused.tif"
    r = run_out_of_space(mechanism, case_dir, many_tiles_case_dir, out, *extra)
    assert r.returncode == 1, r.stdout + r.stderr
    assert_disk_full_message(r.stderr, out)
    assert not out.exists(), "a broken output was put in place"
    assert list(d.glob("*.dcstsf-work/tile_*.npy")), "the finished tiles were deleted: nothing to resume from"
    assert not [p for p in d.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_disk_full_with_overwrite_keeps_the_earlier_output(
    case_dir: Path, many_tiles_case_dir: Path, full_disk: tuple[Path, str]
) -> None:
    d, mechanism = full_disk
    out = d / "fused.tif"
    # An earlier good output (a small valid GeoTIFF) that the failed run must leave as it was.
    shutil.copy(case_dir / "ms_t1.tif", out)
    before = sha256(out)
    r = run_out_of_space(mechanism, case_dir, many_tiles_case_dir, out, "--overwrite")
    assert r.returncode == 1, r.stdout + r.stderr
    assert_disk_full_message(r.stderr, out)
    assert out.exists() and sha256(out) == before, "the earlier output was replaced by a broken one"


def test_disk_full_while_writing_netcdf_fails_cleanly(
    case_dir: Path, many_tiles_case_dir: Path, full_disk: tuple[Path, str]
) -> None:
    d, mechanism = full_disk
    out = d / "fused.nc"
    r = run_out_of_space(mechanism, case_dir, many_tiles_case_dir, out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert_disk_full_message(r.stderr, out)
    assert not out.exists()


# --------------------------------------------------------------------------------------------------
# outputs that would destroy what the user has
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1, 2])
def test_output_equal_to_an_input_is_refused_even_with_overwrite(case_dir: Path, tmp_path: Path, which: int) -> None:
    files = [Path(p) for p in inputs(case_dir)]
    copies = [tmp_path / p.name for p in files]
    for p, c in zip(files, copies):
        shutil.copy(p, c)
    before = sha256(copies[which])
    for extra in ([], ["--overwrite"]):
        r = run_cli("fuse", *map(str, copies), "-o", str(copies[which]), "--method", "bicubic", *extra)
        assert r.returncode == 2, r.stdout + r.stderr
        assert f"the output is also input {which + 1}" in r.stderr, r.stderr
        assert "add --overwrite" not in r.stderr
        assert sha256(copies[which]) == before


def test_output_equal_to_an_input_through_a_link_is_refused(case_dir: Path, tmp_path: Path) -> None:
    hs = tmp_path / "hs.tif"
    shutil.copy(case_dir / "hs_t1.tif", hs)
    link = tmp_path / "link.tif"
    link.symlink_to(hs)
    before = sha256(hs)
    r = run_cli("fuse", str(hs), *inputs(case_dir)[1:], "-o", str(link), "--method", "bicubic", "--overwrite")
    assert r.returncode == 2, r.stdout + r.stderr
    assert sha256(hs) == before and link.is_symlink()


def test_output_through_a_link_replaces_the_target(case_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "results" / "fused.tif"
    target.parent.mkdir()
    target.write_bytes(b"an earlier output")
    link = tmp_path / "latest.tif"
    link.symlink_to(target)
    r = run_cli("fuse", *inputs(case_dir), "-o", str(link), "--method", "bicubic", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert readable(target)


@pytest.mark.parametrize("suffix", [".tif", ".nc"])
def test_overwrite_never_deletes_a_directory_of_files(case_dir: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"results{suffix}"
    out.mkdir()
    (out / "precious.txt").write_text("a month of work")
    r = run_cli("fuse", *inputs(case_dir), "-o", str(out), "--method", "bicubic", "--overwrite")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "directory" in r.stderr
    assert (out / "precious.txt").read_text() == "a month of work"


# --------------------------------------------------------------------------------------------------
# two runs on one output
# --------------------------------------------------------------------------------------------------


def test_two_runs_on_one_output_do_not_mix(many_tiles_case_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fused.tif"
    args = [*inputs(many_tiles_case_dir), "-o", str(out), "--chunk", "48"]
    first = subprocess.Popen(dcstsf_cmd("fuse", *args, "--method", "variational"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    # Once the first run holds the output (its work directory exists), it is paused while the second runs:
    # however fast the machine, the second meets a run in progress.
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*.dcstsf-work")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before the second could start"
    first.send_signal(signal.SIGSTOP)
    try:
        second = run_cli("fuse", *args, "--method", "bicubic", "--overwrite")
    finally:
        first.send_signal(signal.SIGCONT)
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 2, second.stdout + second.stderr
    assert "another dcstsf run" in second.stderr and str(first.pid) in second.stderr, second.stderr
    # The output is the first run's alone.
    import rasterio

    with rasterio.open(out) as f:
        assert f.tags()["method"] == "variational"
        got = f.read()
    alone = tmp_path / "alone.tif"
    assert run_cli("fuse", *args[:3], "-o", str(alone), "--chunk", "48", "--method", "variational").returncode == 0
    with rasterio.open(alone) as f:
        np.testing.assert_array_equal(got, f.read())


# --------------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------------


def test_sigterm_stops_with_a_message_and_keeps_the_work(many_tiles_case_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fused.tif"
    args = ["fuse", *inputs(many_tiles_case_dir), "-o", str(out), "--method", "variational", "--chunk", "48",
            "--parallel-tiles", "1"]
    proc = subprocess.Popen(dcstsf_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    work = Path(str(out) + ".dcstsf-work")
    deadline = time.monotonic() + 120
    while not list(work.glob("tile_*.npy")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        _, err = proc.communicate()
        pytest.fail(f"the run ended (exit {proc.returncode}) before it could be stopped; its stderr:\n{err}")
    # Paused first, so the signal arrives with tiles still to do however fast the machine is.
    proc.send_signal(signal.SIGSTOP)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "interrupted by sigterm" in err.lower() and "again" in err.lower(), err
    assert "Traceback" not in err
    assert not out.exists()
    assert list(work.glob("tile_*.npy")), "the finished tiles were not kept for the resume"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert readable(out)


# --------------------------------------------------------------------------------------------------
# options that used to crash
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--ms-scale", "0"], ["--ms-scale", "-0.0001"], ["--scale", "nan"],
                                    ["--memory-limit", "inf"], ["--memory-limit", "0"]])
def test_impossible_option_values_are_usage_errors(case_dir: Path, tmp_path: Path, option: list[str]) -> None:
    r = run_cli("fuse", *inputs(case_dir), "-o", str(tmp_path / "x.tif"), "--method", "bicubic", *option)
    assert r.returncode == 2, r.stdout + r.stderr
    assert option[0] in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_progress_goes_to_stderr_and_stdout_carries_only_the_result(case_dir: Path, tmp_path: Path) -> None:
    for name in ("fused.zarr", "fused.nc", "fused.tif"):
        r = run_cli("fuse", *inputs(case_dir), "-o", str(tmp_path / name), "--method", "bicubic")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(str(tmp_path / name)), r.stdout

