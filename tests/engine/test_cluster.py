"""Dask clusters: an external scheduler and a local cluster of worker processes give the threaded result;
their options are checked before any cluster starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.engine import fuse, run_batch
from dcstsf.engine.cluster import scheduler_address
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.engine.cases import HS_SENSOR, batch_args


def test_distributed_results_equal_threaded(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    threaded = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21).values
    ref = tmp_path / "threaded.tif"
    run_batch(*batch_args(files), ref, method="bicubic", chunk=21, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster):
            dist = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21)
            np.testing.assert_array_equal(dist.values, threaded)
        out = tmp_path / "external.tif"
        run_batch(*batch_args(files), out, method="bicubic", chunk=21, progress=False,
                  scheduler=cluster.scheduler_address)
        np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)


def test_dcstsf_on_a_cluster_equals_threaded(case: Any) -> None:
    """The default method travels to the workers (pickled into each tile task), scene adaptation included."""
    import pickle

    from distributed import Client, LocalCluster

    from dcstsf.methods import DCSTSF
    from dcstsf.training.adapt import AdaptOptions

    method = DCSTSF(adapt=AdaptOptions(steps=2))
    copy = pickle.loads(pickle.dumps(method))
    assert isinstance(copy, DCSTSF) and copy.adapt == method.adapt
    threaded = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=method, hs_sensor=HS_SENSOR, chunk=30).values
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster):
            dist = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=DCSTSF(adapt=AdaptOptions(steps=2)),
                        hs_sensor=HS_SENSOR, chunk=30)
            np.testing.assert_array_equal(dist.values, threaded)


def scheduler_pages() -> dict[str, int]:
    """HTTP status of the dashboard, info and health pages of the scheduler of the client a run has open.

    A Dask scheduler always runs a web server; its identity names the port as ``dashboard``.
    """
    import urllib.error
    import urllib.request

    from distributed import default_client

    port = default_client().scheduler_info()["services"]["dashboard"]
    statuses = {"port": port}
    for page in ("/status", "/info/main/workers.html", "/health", "/metrics"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=10) as r:
                statuses[page] = r.status
        except urllib.error.HTTPError as exc:
            statuses[page] = exc.code
    return statuses


def test_local_cluster_with_worker_processes_serves_no_dashboard(files: dict[str, Path], tmp_path: Path) -> None:
    ref = tmp_path / "threaded.tif"
    run_batch(*batch_args(files), ref, method="bicubic", chunk=48, progress=False)
    out = tmp_path / "cluster.tif"
    pages: list[dict[str, int]] = []

    def look(*_: Any) -> None:
        if not pages:
            pages.append(scheduler_pages())

    res = run_batch(*batch_args(files), out, method="bicubic", chunk=48, progress=False, workers=1, on_tile=look)
    assert res.tiles_computed == res.tiles_total
    np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)
    # The dashboard is opt-in: unasked, the scheduler's web server serves no page, and not at 8787.
    (statuses,) = pages
    assert statuses.pop("port") != 8787
    assert statuses == {"/status": 404, "/info/main/workers.html": 404, "/health": 404, "/metrics": 404}


def test_dashboard_is_opt_in(files: dict[str, Path], tmp_path: Path) -> None:
    import importlib.util

    out = tmp_path / "out.tif"
    if importlib.util.find_spec("bokeh") is None:
        with pytest.raises(DcstsfInputError, match="the Dask dashboard needs the bokeh package"):
            run_batch(*batch_args(files), out, method="bicubic", progress=False, workers=1, dashboard=True)
        assert list(tmp_path.iterdir()) == []
        return
    pages: list[dict[str, int]] = []
    run_batch(*batch_args(files), out, method="bicubic", chunk=48, progress=False, workers=1,
              dashboard="127.0.0.1:0", on_tile=lambda *_: pages.append(scheduler_pages()))
    assert pages and all(p["/status"] == 200 for p in pages)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("localhost:8786", "tcp://localhost:8786"),
        (" tls://sched.example.org:8786 ", "tls://sched.example.org:8786"),
        ("tcp://[::1]:8786", "tcp://[::1]:8786"),
        ("inproc://10.0.0.5/123/1", "inproc://10.0.0.5/123/1"),
    ],
)
def test_scheduler_addresses_are_normalised(given: str, expected: str) -> None:
    assert scheduler_address(given) == expected


@pytest.mark.parametrize("address", ["tcp:/host", "host:notaport", "foo://x:1", "tcp://host", "tcp://host:0",
                                     "tcp://host:65536", "http://host:8787", ""])
def test_malformed_scheduler_addresses_are_refused(address: str) -> None:
    with pytest.raises(DcstsfInputError, match="expected the form tcp://HOST:PORT") as err:
        scheduler_address(address)
    assert repr(address) in str(err.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 1, "worker_timeout": 0}, "worker_timeout must be a positive number of seconds"),
        ({"scheduler": "tcp://127.0.0.1:1", "scheduler_timeout": float("inf")},
         "scheduler_timeout must be a positive number of seconds"),
        ({"scheduler": "tcp://127.0.0.1:1", "dashboard": True}, "applies to a local cluster"),
        ({"dashboard": ":8787"}, "applies to a local cluster"),
        ({"workers": 1, "dashboard": "127.0.0.1"}, "is not of the form HOST:PORT"),
    ],
)
def test_cluster_options_are_checked_before_any_cluster_starts(
    options: dict[str, Any], message: str, files: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(DcstsfInputError, match=message):
        run_batch(*batch_args(files), tmp_path / "x.tif", method="bicubic", progress=False, **options)
    assert list(tmp_path.iterdir()) == []


def test_workers_and_scheduler_together_are_an_error(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="not both"):
        run_batch(*batch_args(files), tmp_path / "x.tif", method="bicubic", progress=False, workers=1,
                  scheduler="tcp://127.0.0.1:1")


class _ScriptedClient:
    """A stand-in for a distributed Client whose ``nthreads`` answers follow a script, then repeat the last."""

    def __init__(self, answers: list[int | None]) -> None:
        self.answers = answers
        self.asked = 0
        self.futures: dict[str, Any] = {}

    def nthreads(self, *, callback_timeout: float) -> dict[str, int]:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        if answer is None:
            raise TimeoutError(f"timed out after {callback_timeout:g} s")
        return {f"tcp://127.0.0.1:{9000 + i}": 1 for i in range(answer)}


def _watch_for(seconds: float, client: _ScriptedClient, *, timeout: float, silent_s: float) -> bool:
    """Whether the worker watch fires within ``seconds`` on ``client``'s scripted answers."""
    import time

    from dcstsf.engine.cluster import _WorkerWatch

    watch = _WorkerWatch(client, "tcp://127.0.0.1:8786", timeout, local=False)
    watch.silent_scheduler_s = silent_s
    with watch:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not watch.fired:
            time.sleep(0.02)
    return watch.fired


def test_a_scheduler_that_is_slow_to_answer_does_not_stop_the_run() -> None:
    # Unanswered questions for longer than the worker timeout, between answers with workers.
    client = _ScriptedClient([1] + [None] * 12 + [1])
    assert not _watch_for(1.5, client, timeout=0.3, silent_s=5.0)
    assert client.asked > 12


def test_a_scheduler_that_never_answers_stops_the_run_after_the_silence_limit() -> None:
    client = _ScriptedClient([None])
    assert _watch_for(3.0, client, timeout=0.3, silent_s=0.8)


def test_an_answer_of_no_workers_stops_the_run_after_the_worker_timeout() -> None:
    client = _ScriptedClient([1, 0])
    assert _watch_for(2.0, client, timeout=0.3, silent_s=60.0)


def test_silence_after_an_answer_of_no_workers_stops_the_run_after_the_worker_timeout() -> None:
    client = _ScriptedClient([1, 0, None])
    assert _watch_for(2.0, client, timeout=0.3, silent_s=60.0)
