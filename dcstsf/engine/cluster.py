"""Dask schedulers for batch runs: a ``dask.distributed`` client when asked for, local schedulers otherwise.

The default runs tiles on threads in the calling process; ``workers=N`` starts a
``dask.distributed.LocalCluster`` of N single-threaded worker processes (its dashboard only when asked
for); ``scheduler="tcp://host:8786"`` connects to a running scheduler (its workers must see the input
paths, which :func:`~dcstsf.engine.run_batch` makes absolute). Nothing imports ``dask.distributed``
without a cluster.

Every wait on a cluster is bounded, since Dask itself would wait for ever: a scheduler address is
checked for its form, then for a Dask scheduler answering within ``scheduler_timeout`` seconds; while
the client is open, a watch stops the run with :class:`NoWorkerError` once no worker has been connected
for ``worker_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from dcstsf.errors import DcstsfInputError

__all__ = [
    "DEFAULT_DASHBOARD_ADDRESS",
    "DEFAULT_SCHEDULER_TIMEOUT",
    "DEFAULT_WORKER_TIMEOUT",
    "NoWorkerError",
    "check_scheduler",
    "client",
    "local_scheduler",
    "scheduler_address",
]

#: Seconds to wait for a scheduler to answer (Dask's own connect timeout).
DEFAULT_SCHEDULER_TIMEOUT = 30.0
#: Seconds a run waits with no worker connected before it stops: long enough for a worker to restart or
#: for a batch system to start a replacement, short enough that a dead cluster does not hold a job.
DEFAULT_WORKER_TIMEOUT = 60.0
#: Seconds a scheduler may leave the worker watch's questions unanswered before the run stops as if no
#: worker were left: a loaded scheduler can hold one reply for seconds, a gone one answers never.
SILENT_SCHEDULER_S = 30.0
#: Where ``dashboard=True`` (CLI ``--dashboard`` without an address) serves the local cluster's
#: dashboard: the local host only, since the dashboard shows the run to whoever reaches the port.
DEFAULT_DASHBOARD_ADDRESS = "127.0.0.1:8787"

_EXPECTED = "the form tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
_ADDRESS = re.compile(rf"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>{_HOST}):(?P<port>[0-9]{{1,5}})$")
_DASHBOARD = re.compile(rf"^(?P<host>{_HOST})?:(?P<port>[0-9]{{1,5}})$")


class NoWorkerError(ConnectionError):
    """No Dask worker was connected for ``worker_timeout`` seconds while the run needed one.

    A :class:`ConnectionError` (an ``OSError``): the cluster failed, not the inputs. The tiles finished
    before are kept in the work directory, and running the same command again resumes from them.
    """


def scheduler_address(address: str) -> str:
    """``address`` checked for the form ``[PROTOCOL://]HOST:PORT``, with ``tcp://`` added when it has none.

    ``inproc://`` addresses (a ``LocalCluster(processes=False)`` in this process) are returned as given.

    Raises
    ------
    DcstsfInputError
        Any other form, naming the address and the form expected.
    """
    text = str(address).strip()
    if text.startswith("inproc://"):
        return text
    m = _ADDRESS.match(text)
    scheme = (m.group("scheme") or "tcp").lower() if m else None
    if m is None or scheme not in _SCHEMES or not 1 <= int(m.group("port")) <= 65535:
        why = f"unknown protocol {scheme!r}, " if m is not None and scheme not in _SCHEMES else ""
        raise DcstsfInputError(
            f"scheduler address {address!r} is not a Dask scheduler address ({why}expected {_EXPECTED}); "
            "give the address `dask scheduler` prints after 'Scheduler at:'"
        )
    return f"{scheme}://{m.group('host')}:{int(m.group('port'))}"


def _reason(exc: BaseException) -> str:
    """The deepest telling cause of ``exc``, on one line.

    Dask's "Timed out trying to connect" wraps the error of its last attempt (a refusal, say), which may
    itself be only the timeout of that attempt.
    """
    best: BaseException = exc
    cause = exc.__cause__
    while cause is not None:
        if not isinstance(cause, (TimeoutError, asyncio.CancelledError)):
            best = cause
        cause = cause.__cause__
    return " ".join(f"{type(best).__name__}: {best}".split())


async def _identity(address: str, timeout: float) -> dict[str, Any]:
    """The identity a Dask server at ``address`` reports (its handshake and one ``identity`` call)."""
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        reply = await comm.read()
    finally:
        comm.abort()
    return reply if isinstance(reply, dict) else {}


def check_scheduler(address: str, *, timeout: float = DEFAULT_SCHEDULER_TIMEOUT) -> None:
    """Raise :class:`~dcstsf.errors.DcstsfInputError` unless a Dask scheduler answers at ``address`` in time.

    Dask's own connection waits for ever on a port where something accepts the connection but does not
    answer its handshake, whatever its timeout (the handshake's read has none); here the whole exchange
    has ``timeout`` seconds. A refused connection is retried until then, as Dask does, for a scheduler
    that is still starting.
    """

    async def bounded() -> dict[str, Any]:
        # The connection attempts stop a little before the whole exchange does, so that a refused
        # connection is reported as such rather than as a silent server.
        return await asyncio.wait_for(_identity(address, 0.9 * timeout), timeout)

    # A thread of its own: the caller may already run an event loop (a notebook). It is not waited for
    # beyond the timeout: a host name lookup, which no event loop can interrupt, may outlast it.
    ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcstsf-scheduler-check")
    try:
        try:
            reply = ex.submit(asyncio.run, bounded()).result(timeout=timeout + 1.0)
        except TimeoutError:
            raise DcstsfInputError(
                f"no Dask scheduler answered at {address} within {timeout:g} s: what listens there does not "
                "speak Dask's protocol (another service?), the host cannot be reached, or the scheduler is "
                "overloaded; give the address `dask scheduler` prints after 'Scheduler at:', or wait longer "
                "(scheduler_timeout=, CLI --scheduler-timeout)"
            ) from None
        except OSError as exc:
            raise DcstsfInputError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({_reason(exc)}); start one "
                "with `dask scheduler` and workers with `dask worker ADDRESS`, or use workers=N (CLI --workers N) "
                "for a local cluster"
            ) from exc
        except Exception as exc:  # anything the other end sends that is not Dask's protocol
            raise DcstsfInputError(
                f"{address} did not answer as a Dask scheduler ({type(exc).__name__}: {exc}); give the address "
                "`dask scheduler` prints after 'Scheduler at:'"
            ) from exc
    finally:
        ex.shutdown(wait=False)
    kind = reply.get("type")
    if kind != "Scheduler":
        raise DcstsfInputError(
            f"{address} is a Dask {kind or 'server'}, not a scheduler; give the scheduler's address (a worker's "
            "log names it after 'Registered to:')"
        )


class _WorkerWatch:
    """A thread that ends the client's waits once no worker has been connected for ``timeout`` seconds.

    Dask keeps tasks without a worker waiting until one joins, and nothing the client waits on has a
    timeout. When the time is up, the watch cancels every future of the client (a wait then raises)
    and :func:`client` turns the error into :class:`NoWorkerError`. Work submitted later, while there is
    still no worker, is cancelled at the next look. A scheduler that leaves the watch's questions
    unanswered counts as one without workers only after :data:`SILENT_SCHEDULER_S` (or the timeout,
    if longer): a slow reply is not a lost worker.
    """

    def __init__(self, dask_client: Any, address: str, timeout: float, *, local: bool) -> None:
        self.client = dask_client
        self.address = address
        self.timeout = timeout
        self.local = local
        self.fired = False
        self.unreachable: str | None = None
        self.silent_scheduler_s = SILENT_SCHEDULER_S
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dcstsf-worker-watch", daemon=True)

    def __enter__(self) -> _WorkerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A question to a scheduler that does not answer may still be pending; the daemon thread ends
        # with it, and the run need not wait.
        self._thread.join(timeout=1.0)

    def message(self) -> str:
        """What happened and what to do, for :class:`NoWorkerError`."""
        why = f" (the scheduler does not answer: {self.unreachable})" if self.unreachable else ""
        if self.local:
            fix = ("the local cluster's worker processes died and were not restarted: out of memory? Try fewer "
                   "workers or a smaller chunk")
        else:
            fix = f"start workers (`dask worker {self.address}`) or find out why they died"
        return (
            f"no Dask worker is left: none has been connected to the scheduler at {self.address} for "
            f"{self.timeout:g} s{why}; {fix}, or let the run wait longer for workers (worker_timeout=, CLI "
            "--worker-timeout). The finished tiles are kept: run the same command again to resume"
        )

    def _workers(self) -> int | None:
        """The number of connected workers, or ``None`` when the scheduler gave no answer."""
        try:
            n = len(self.client.nthreads(callback_timeout=max(self.timeout, 1.0)))
        except Exception as exc:  # gone, or too busy to answer in time
            self.unreachable = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return None
        self.unreachable = None
        return n

    def _run(self) -> None:
        from distributed import Future

        poll = min(1.0, max(0.05, self.timeout / 10))
        last_seen = time.monotonic()
        last_answer: int | None = None
        while not self._stop.wait(poll):
            n = self._workers()
            if n:
                last_seen, last_answer = time.monotonic(), n
                continue
            if n == 0:
                last_answer = 0
            # No workers count from the last worker seen, also while the scheduler, having said so, is
            # silent. A scheduler that does not answer may only be busy (a loaded machine can hold one
            # reply for seconds), so silence after workers stops the run only once it has lasted the
            # longer of the timeout and SILENT_SCHEDULER_S.
            limit = self.timeout if last_answer == 0 else max(self.timeout, self.silent_scheduler_s)
            if time.monotonic() - last_seen < limit:
                continue
            self.fired = True
            keys = list(self.client.futures)
            if keys:
                try:
                    self.client.cancel([Future(k, self.client) for k in keys])
                except Exception:  # a closed client has nothing left to wait on
                    return


def _dashboard_address(dashboard: bool | str | None) -> str | None:
    """The address to serve the dashboard at, or ``None``; errors for a bad address or without bokeh."""
    if dashboard is None or dashboard is False:
        return None
    address = DEFAULT_DASHBOARD_ADDRESS if dashboard is True else str(dashboard).strip()
    m = _DASHBOARD.match(address)
    if m is None or not 0 <= int(m.group("port")) <= 65535:
        raise DcstsfInputError(
            f"dashboard address {dashboard!r} is not of the form HOST:PORT (e.g. {DEFAULT_DASHBOARD_ADDRESS}, or "
            ":8787 for every interface)"
        )
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        raise DcstsfInputError("the Dask dashboard needs the bokeh package: pip install bokeh (or drop --dashboard)")
    return address


def _check_seconds(name: str, value: Any, *, forever: bool = False) -> float:
    """``value`` as seconds; positive, and finite unless ``forever`` allows ``inf``."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not number or not value > 0 or (np.isinf(value) and not forever):
        extra = " (inf waits for ever)" if forever else ""
        raise DcstsfInputError(f"{name} must be a positive number of seconds{extra}, got {value!r}")
    return float(value)


def _local_cluster(workers: int, dashboard_at: str | None, memory_limit: int | None = None) -> Any:
    """A ``LocalCluster`` of ``workers`` single-threaded processes, serving a dashboard only at ``dashboard_at``.

    ``memory_limit`` (bytes, for the whole cluster) is shared out evenly: each worker process is held to
    its share by Dask (which restarts a worker that passes it). ``None`` leaves Dask's default.
    """
    import dask
    from distributed import LocalCluster

    per_worker: Any = "auto" if memory_limit is None else max(1, int(memory_limit) // workers)
    if dashboard_at is not None:
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=dashboard_at, silence_logs=logging.ERROR,
            memory_limit=per_worker,
        )
    # A Dask scheduler starts its web server whatever ``dashboard_address`` says: without one, at port 8787
    # with pages about the run (workers, tasks, metrics) and a proxy to the workers. Unasked, it gets no
    # pages and a free port of the local host only, so a run neither takes 8787 nor shows itself there.
    with dask.config.set({"distributed.scheduler.http.routes": []}):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, memory_limit=per_worker,
        )


@contextmanager
def _watched(dask_client: Any, address: str, worker_timeout: float, *, local: bool) -> Iterator[Any]:
    """Yield ``dask_client`` under a :class:`_WorkerWatch`; an error after it fired is a :class:`NoWorkerError`."""
    if np.isinf(worker_timeout):
        yield dask_client
        return
    with _WorkerWatch(dask_client, address, worker_timeout, local=local) as watch:
        try:
            yield dask_client
        except Exception as exc:
            if watch.fired:
                raise NoWorkerError(watch.message()) from exc
            raise


@contextmanager
def client(
    workers: int | None,
    scheduler: str | None,
    *,
    dashboard: bool | str | None = None,
    scheduler_timeout: float = DEFAULT_SCHEDULER_TIMEOUT,
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT,
    memory_limit: int | None = None,
) -> Iterator[Any]:
    """A distributed Client (LocalCluster or external scheduler), or ``None`` for the threaded scheduler.

    Parameters
    ----------
    workers
        Start a ``LocalCluster`` of this many single-threaded worker processes.
    scheduler
        Or connect to the scheduler at this address (:func:`scheduler_address`), checked first with
        :func:`check_scheduler`.
    dashboard
        The local cluster's dashboard: ``None``/``False`` (default) none, ``True`` at
        :data:`DEFAULT_DASHBOARD_ADDRESS`, or a ``HOST:PORT`` address. Needs ``workers``.
    scheduler_timeout
        Seconds to wait for the scheduler to answer.
    worker_timeout
        Seconds the client waits with no worker connected; then the block's error is :class:`NoWorkerError`.
    memory_limit
        Bytes the local cluster's workers may use together (each gets an even share); an external
        scheduler's workers keep the limits they were started with.
    """
    if workers is not None and scheduler is not None:
        raise DcstsfInputError("give either workers= (a local cluster) or scheduler= (an address), not both")
    if dashboard not in (None, False) and workers is None:
        raise DcstsfInputError(
            "dashboard= (CLI --dashboard) applies to a local cluster started with workers=N (CLI --workers N); "
            "a scheduler started with `dask scheduler` serves its own dashboard"
        )
    wait_workers = _check_seconds("worker_timeout", worker_timeout, forever=True)
    wait_scheduler = _check_seconds("scheduler_timeout", scheduler_timeout)
    if workers is None and scheduler is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise DcstsfInputError("workers=/scheduler= need dask.distributed: pip install distributed") from exc
    if scheduler is not None:
        address = scheduler_address(scheduler)
        if not address.startswith("inproc://"):
            check_scheduler(address, timeout=wait_scheduler)
        try:
            c = Client(address, timeout=f"{wait_scheduler}s")
        except OSError as exc:
            raise DcstsfInputError(
                f"cannot reach the Dask scheduler at {address} ({_reason(exc)}); start one with `dask scheduler` "
                "and workers with `dask worker ADDRESS`, or use workers=N (CLI --workers N) for a local cluster"
            ) from exc
        try:
            with _watched(c, address, wait_workers, local=False):
                yield c
        finally:
            c.close()
        return
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise DcstsfInputError(f"workers must be a positive integer, got {workers!r}")
    dashboard_at = _dashboard_address(dashboard)
    cluster = _local_cluster(int(workers), dashboard_at, memory_limit)
    try:
        c = Client(cluster)
        if dashboard_at is not None:
            logging.getLogger("dcstsf").info("Dask dashboard: %s", c.dashboard_link)
        try:
            with _watched(c, cluster.scheduler_address, wait_workers, local=True):
                yield c
        finally:
            c.close()
    finally:
        cluster.close()


def local_scheduler(kind: str) -> Callable[..., Any]:
    """Dask's ``"threads"`` or ``"synchronous"`` scheduler, as the function itself.

    Dask resolves a scheduler given by name by importing ``dask.distributed`` to look for a client, which
    costs a noticeable part of a small run; a function is used as given. Local batch runs want the local
    scheduler even when the caller has a global Client: ``workers``/``scheduler`` choose the cluster.
    """
    import dask.local
    import dask.threaded

    return dask.threaded.get if kind == "threads" else dask.local.get_sync
