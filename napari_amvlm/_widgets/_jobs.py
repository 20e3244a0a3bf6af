"""Background work of the AMVLM widget: short tasks on a worker thread (training rounds: :mod:`._rounds`).

**Tasks** (:class:`Jobs`): each widget owns one queue, run in submission order by its worker thread (one plain
Python thread, started by the first task and ended when the widget closes), so a task that writes to the
project (a correction) is stored before any task submitted after it (the export of a Retrain round) reads the
project. Results and errors go back to the GUI thread through one relay
object that lives as long as the process, never through an object that could be deleted while a task still
runs, and an error raised on the worker thread stays a Python exception: it cannot abort the process the way
an exception escaping a Qt thread-pool runnable does. When the viewer closes, :meth:`Jobs.shutdown` cancels the
cancellable tasks (between planes) and waits for the rest; at interpreter exit every queue is finished the same
way *before* any thread pool is shut down (zarr reads the project's files through one), so no task touches the
project store after its reader has gone.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (imported first, so that _finish_at_exit runs before its hook)
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from qtpy.QtCore import QObject, Qt, Signal

from .._cancel import Cancelled

EXIT_WAIT_S = 120.0  # at interpreter exit, how long to wait for a task that cannot be cancelled (a correction)

log = logging.getLogger("napari_amvlm")


def reason(what: str, err: BaseException) -> str:
    """Why ``what`` failed, for the status line; logged too (with the traceback when the error is unexpected,
    i.e. neither bad input nor a file problem, whose message says it all)."""
    if isinstance(err, Cancelled):
        return "cancelled"
    if isinstance(err, (ValueError, OSError)):
        log.warning("%s failed: %s", what, err)
        return str(err)
    log.error("%s failed unexpectedly", what, exc_info=(type(err), err, err.__traceback__))
    return f"unexpected {type(err).__name__}: {err} (the details are in the log)"


def error_message(what: str, err: BaseException) -> str:
    """The one line that tells the user why ``what`` failed (see :func:`reason`)."""
    return f"{what} cancelled." if isinstance(err, Cancelled) else f"{what} failed: {reason(what, err)}"


class _Relay(QObject):
    """Calls what the worker threads send on the GUI thread (queued). One per process, never deleted: a
    worker always reports to a live object."""

    call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._call, Qt.ConnectionType.QueuedConnection)

    @staticmethod
    def _call(fn: Callable[[], None]) -> None:
        fn()


_RELAY: list[_Relay] = []  # made on the GUI thread by the first Jobs


@dataclass
class _Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None] | None
    what: str
    cancellable: bool


class Jobs:
    """One widget's background tasks (see the module docstring). Plain Python: usable from any thread, and
    after the widget's Qt side is gone.

    ``report(what, err)`` shows an error that has no ``on_error`` of its own, or that a callback raised."""

    def __init__(self, report: Callable[[str, BaseException], None]) -> None:
        if not _RELAY:
            _RELAY.append(_Relay())
        self.stop = threading.Event()  # set when the owner closes: long tasks end between planes
        self.closed = False  # no new task starts and no callback runs
        self._report = report
        self._cond = threading.Condition()
        self._queue: deque[_Task] = deque()
        self._running: _Task | None = None
        self._thread: threading.Thread | None = None  # started by the first task, then waits for the next one

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None, what: str = "Background task",
               cancellable: bool = True) -> bool:  # fmt: skip
        """Queue ``fn(*args)``; ``on_done(result)`` or ``on_error(exception)`` then runs on the GUI thread. A
        ``cancellable`` task still queued when the owner closes ends with :class:`Cancelled` without running.
        Returns False (and runs nothing) once :meth:`shutdown` was called."""
        with self._cond:
            if self.closed:
                return False
            self._queue.append(_Task(fn, args, on_done, on_error, what, cancellable))
            if self._thread is None:  # once (starting a thread makes the caller wait for it, on a busy machine
                # long enough to be felt: later tasks only wake it)
                self._thread = threading.Thread(target=self._work, name="amvlm-worker", daemon=True)
                _ACTIVE.add(self)
                self._thread.start()
            self._cond.notify_all()
        return True

    @property
    def idle(self) -> bool:
        """No task is queued or running."""
        with self._cond:
            return self._idle()

    def _idle(self) -> bool:
        return not self._queue and self._running is None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued task has run (their callbacks run later, on the GUI thread); False on
        timeout."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """The owner is closing: cancel what can be cancelled, wait for the rest and for the worker thread to
        end, run no more callbacks. Returns False if the thread was still running after ``timeout`` seconds."""
        self.stop.set()
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return thread is None
        thread.join(timeout)
        return not thread.is_alive()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._running = None
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._queue or self.closed)
                if not self._queue:  # closed, and nothing left to do
                    self._thread = None
                    _ACTIVE.discard(self)
                    return
                self._running = self._queue.popleft()
            self._run(self._running)  # (in a frame of its own: nothing of the task stays referenced here)

    def _run(self, task: _Task) -> None:
        try:
            if task.cancellable and self.stop.is_set():
                raise Cancelled("stopped on request")
            result = task.fn(*task.args)
        except Exception as err:  # every error is reported, on the GUI thread
            self._send(task, task.on_error, err)
        else:
            self._send(task, task.on_done, result)

    def _send(self, task: _Task, callback: Callable[[Any], None] | None, value: Any) -> None:
        if self.closed:
            if isinstance(value, BaseException) and not isinstance(value, Cancelled):
                log.warning("%s failed while the viewer closed: %s", task.what, value)
            return
        call = partial(self._callback, task.what, callback, value)
        try:
            _RELAY[0].call.emit(call)
        except RuntimeError:  # the Qt side is gone (the process is ending): nobody is left to tell
            pass

    def _callback(self, what: str, callback: Callable[[Any], None] | None, value: Any) -> None:
        """On the GUI thread: hand the result to its callback; report any error that has no handler, or that
        the handler itself raised."""
        if self.closed:
            return
        try:
            if callback is None:
                raise value
            callback(value)
        except Exception as err:  # noqa: BLE001 - never let it reach Qt (it would abort the process)
            try:
                self._report(what, err)
            except Exception:  # noqa: BLE001 - the widget itself is gone
                log.exception("%s failed", what)


_ACTIVE: set[Jobs] = set()  # queues whose worker thread is alive


def _finish_at_exit() -> None:
    """Cancel and wait for every queue before the interpreter's thread pools shut down."""
    for jobs in list(_ACTIVE):
        jobs.shutdown(timeout=0)  # every queue stops taking work and cancels what it can...
    for jobs in list(_ACTIVE):
        if not jobs.shutdown(timeout=EXIT_WAIT_S):  # ...then each one is waited for
            log.error("a background task of napari-amvlm was still running at exit")


# hooks of threading run before the interpreter joins its threads and before the thread pools shut down (theirs
# run in the reverse order of registration: this one first); atexit's run only after that
getattr(threading, "_register_atexit", atexit.register)(_finish_at_exit)
