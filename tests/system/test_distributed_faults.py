"""Faults of Dask clusters met by real processes: dead workers, wrong addresses, other working directories.

The clusters are real ``dask scheduler`` and ``dask worker`` processes started in a directory of their
own, and workers die by SIGKILL. Every wait that Dask would leave unbounded is run under a bound here
too, so that a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from dcstsf.cli import main
from dcstsf.engine import run_batch, work_dir_for
from dcstsf.engine.cluster import NoWorkerError
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster, write_raster
from tests.engine.cases import make_case

T = TypeVar("T")

#: What a run may take beyond the timeout it was given: opening the inputs, connecting, closing.
MARGIN_S = 10.0
INPUTS = ("hs_t1.tif", "ms_t1.tif", "ms_t2.tif")


# --------------------------------------------------------------------------------------------------
# inputs, processes and helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated case: 30 x 37 HS pixels, 90 x 111 MS pixels (6 GeoTIFF tiles of 48)."""
    case = make_case()
    d = tmp_path_factory.mktemp("dask-case")
    for name, arr in zip(INPUTS, (case.hs_t1, case.ms_t1, case.ms_t2)):
        write_raster(arr, d / name)
    return d


@pytest.fixture(scope="module")
def reference(case_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The case fused with bicubic on local threads, in 48-pixel tiles."""
    out = tmp_path_factory.mktemp("dask-reference") / "threaded.tif"
    run_batch(*[case_dir / n for n in INPUTS], out, method="bicubic", chunk=48, progress=False)
    return open_raster(out).values


class DaskProcesses:
    """``dask scheduler`` and ``dask worker`` processes, each in a process group of its own."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.procs: list[subprocess.Popen[bytes]] = []

    def _start(self, *argv: str) -> subprocess.Popen[bytes]:
        log = open(self.cwd / f"dask-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen([sys.executable, "-m", "dask", *argv], cwd=self.cwd, stdout=log, stderr=log,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def scheduler(self) -> str:
        """Start a scheduler on a free local port; its address."""
        info = self.cwd / f"scheduler-{len(self.procs)}.json"
        p = self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(info))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            try:
                return str(json.loads(info.read_text())["address"])
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise AssertionError(f"the Dask scheduler did not start: {self.logs()}")

    def worker(self, address: str) -> subprocess.Popen[bytes]:
        """Start one single-threaded worker and wait until the scheduler has it."""
        from distributed import Client

        with Client(address, timeout="30s") as c:
            before = len(c.nthreads())
            p = self._start("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard")
            c.wait_for_workers(before + 1, timeout=60)
        return p

    @staticmethod
    def kill(p: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and everything it started."""
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(f.read_text(errors="replace")[-2000:] for f in sorted(self.cwd.glob("dask-*.log")))

    def close(self) -> None:
        for p in self.procs:
            self.kill(p)


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[DaskProcesses]:
    """Dask processes started in ``tmp_path/cluster``, a directory without the inputs."""
    cwd = tmp_path / "cluster"
    cwd.mkdir()
    procs = DaskProcesses(cwd)
    try:
        yield procs
    finally:
        procs.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port where a server accepts connections and never says anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        for conn in held:
            conn.close()


def closed_port() -> int:
    """A local port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def bounded(fn: Callable[[], T], seconds: float) -> tuple[T | None, BaseException | None, float]:
    """``fn()`` in a thread: its result or error and its wall time; fails the test if it runs past ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t0 = time.monotonic()
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"still waiting after {seconds:g} s")
    return box.get("result"), box.get("error"), time.monotonic() - t0


def copy_inputs(case_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for n in INPUTS:
        shutil.copy2(case_dir / n, dest / n)
    return dest


def run_cli(*argv: str, cwd: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "dcstsf.cli", *argv], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    return p, time.monotonic() - t0


def error_line(p: subprocess.CompletedProcess[str]) -> str:
    """The one ``dcstsf: error:`` line of stderr (and no traceback)."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("dcstsf: error:")]
    assert len(lines) == 1, p.stderr
    return lines[0]


# --------------------------------------------------------------------------------------------------
# addresses
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["tcp:/host", "host:notaport", "foo://x", "tcp://host:99999", "tcp://host"])
def test_malformed_scheduler_address_is_a_clear_input_error(
    address: str, case_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.tif"
    rc = main(["-q", "fuse", *[str(case_dir / n) for n in INPUTS], "-o", str(out), "--method", "bicubic",
               "--scheduler", address])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("dcstsf: error: "), err
    assert repr(address) in err and "tcp://HOST:PORT" in err
    assert sorted(os.listdir(tmp_path)) == []


def test_silent_port_fails_within_the_scheduler_timeout(case_dir: Path, tmp_path: Path, silent_port: int) -> None:
    address = f"tcp://127.0.0.1:{silent_port}"
    timeout = 1.5
    _, error, took = bounded(
        lambda: run_batch(*[case_dir / n for n in INPUTS], tmp_path / "api.tif", method="bicubic", progress=False,
                          scheduler=address, scheduler_timeout=timeout),
        timeout + 3 * MARGIN_S,
    )
    assert isinstance(error, DcstsfInputError), error
    assert f"no Dask scheduler answered at {address} within 1.5 s" in str(error)
    assert took < timeout + MARGIN_S
    # The command line: exit 2, one line, and the option that sets the wait.
    p, _ = run_cli("fuse", *[str(case_dir / n) for n in INPUTS], "-o", str(tmp_path / "cli.tif"), "--method",
                   "bicubic", "--scheduler", address, "--scheduler-timeout", "1", cwd=tmp_path, timeout=120)
    assert p.returncode == 2, p.stderr
    line = error_line(p)
    assert f"no Dask scheduler answered at {address} within 1 s" in line and "--scheduler-timeout" in line
    assert sorted(os.listdir(tmp_path)) == []


def test_closed_port_fails_within_the_scheduler_timeout(case_dir: Path, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{closed_port()}"
    timeout = 1.5
    _, error, took = bounded(
        lambda: run_batch(*[case_dir / n for n in INPUTS], tmp_path / "out.tif", method="bicubic", progress=False,
                          scheduler=address, scheduler_timeout=timeout),
        timeout + 3 * MARGIN_S,
    )
    assert isinstance(error, DcstsfInputError), error
    # Dask retries a refused connection until its timeout, so either cause may be the one reported.
    assert f"cannot reach the Dask scheduler at {address}" in str(error)
    assert "refused" in str(error) or "Timed out" in str(error), str(error)
    assert took < timeout + MARGIN_S


def test_dask_worker_address_is_not_taken_for_the_scheduler(
    dask_processes: DaskProcesses, case_dir: Path, tmp_path: Path
) -> None:
    from distributed import Client

    address = dask_processes.scheduler()
    dask_processes.worker(address)
    with Client(address, timeout="30s") as c:
        (worker,) = c.nthreads()
    with pytest.raises(DcstsfInputError, match=f"{worker} is a Dask Worker, not a scheduler"):
        run_batch(*[case_dir / n for n in INPUTS], tmp_path / "out.tif", method="bicubic", progress=False,
                  scheduler=worker, scheduler_timeout=10)


# --------------------------------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------------------------------


def test_relative_input_paths_with_a_scheduler_in_another_directory(
    dask_processes: DaskProcesses, case_dir: Path, reference: np.ndarray, tmp_path: Path
) -> None:
    address = dask_processes.scheduler()
    dask_processes.worker(address)
    run = copy_inputs(case_dir, tmp_path / "run")
    p, _ = run_cli("-q", "fuse", *INPUTS, "-o", "fused.tif", "--method", "bicubic", "--chunk", "48",
                   "--scheduler", address, cwd=run, timeout=300)
    assert p.returncode == 0, p.stderr + dask_processes.logs()
    np.testing.assert_array_equal(open_raster(run / "fused.tif").values, reference)


def test_scheduler_without_workers_stops_after_the_worker_timeout(
    dask_processes: DaskProcesses, case_dir: Path, tmp_path: Path
) -> None:
    address = dask_processes.scheduler()
    out = tmp_path / "out.tif"
    p, took = run_cli("fuse", *[str(case_dir / n) for n in INPUTS], "-o", str(out), "--method", "bicubic",
                      "--scheduler", address, "--worker-timeout", "2", cwd=tmp_path, timeout=120)
    assert p.returncode == 1, p.stderr
    line = error_line(p)
    assert f"no Dask worker is left: none has been connected to the scheduler at {address} for 2 s" in line
    assert "finished tiles are kept" in line and "run the same command again" in line
    assert not out.exists()
    # Python's start and imports come on top of the run's own bound here.
    assert took < 2 + 3 * MARGIN_S


def test_all_workers_killed_mid_run_stop_the_run_and_the_next_run_resumes(
    dask_processes: DaskProcesses, case_dir: Path, reference: np.ndarray, tmp_path: Path
) -> None:
    address = dask_processes.scheduler()
    worker = dask_processes.worker(address)
    out = tmp_path / "out.tif"
    files = [case_dir / n for n in INPUTS]
    killed_at: list[float] = []

    def kill_after_first_tile(t: tuple[int, int], finished: int, total: int) -> None:
        if not killed_at:
            DaskProcesses.kill(worker)
            killed_at.append(time.monotonic())

    timeout = 2.0
    _, error, _ = bounded(
        lambda: run_batch(*files, out, method="bicubic", chunk=48, progress=False, scheduler=address,
                          worker_timeout=timeout, on_tile=kill_after_first_tile),
        120,
    )
    ended = time.monotonic()
    assert killed_at, f"no tile finished before the worker was to be killed; the run ended with {error!r}"
    assert isinstance(error, NoWorkerError) and isinstance(error, OSError), error
    msg = str(error)
    assert f"no Dask worker is left: none has been connected to the scheduler at {address} for 2 s" in msg
    assert "finished tiles are kept: run the same command again" in msg
    assert ended - killed_at[0] < timeout + MARGIN_S
    # Nothing under the output's name; the finished tile is in the work directory.
    assert not out.exists()
    ledger = json.loads((work_dir_for(out) / "ledger.json").read_text())
    assert len(ledger["done"]) >= 1
    # A new worker, the same call: the finished tiles are resumed and the output is the threaded one.
    dask_processes.worker(address)
    res = run_batch(*files, out, method="bicubic", chunk=48, progress=False, scheduler=address)
    assert res.tiles_skipped >= 1 and res.tiles_skipped + res.tiles_computed == res.tiles_total
    np.testing.assert_array_equal(open_raster(out).values, reference)


# --------------------------------------------------------------------------------------------------
# command-line options
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--scheduler", "tcp://127.0.0.1:1", "--dashboard"], "applies to a local cluster"),
        (["--workers", "1", "--dashboard", "nowhere"], "dashboard address 'nowhere' is not of the form HOST:PORT"),
        (["--workers", "1", "--worker-timeout", "0"], "--worker-timeout: expected a positive number"),
    ],
)
def test_cluster_option_errors_are_one_line(
    extra: list[str], expected: str, case_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["-q", "fuse", *[str(case_dir / n) for n in INPUTS], "-o", str(tmp_path / "out.tif"), "--method",
               "bicubic", *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert expected in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == []
