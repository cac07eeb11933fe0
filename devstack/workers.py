"""Warm worker processes that run one Lambda function each (see ``lambda_worker.py``).

A :class:`Worker` is one execution environment: an isolated ``python -I -S``
process with the function code, its layers and the Lambda runtime directory on
``sys.path``. A :class:`WorkerPool` keeps idle workers per function and starts new
ones (up to a per-function limit: a default, or the function's own) when invocations
overlap, like Lambda concurrency.

As on Lambda, the init phase (importing the handler module) has its own budget
(:data:`INIT_TIMEOUT_S`), separate from the function timeout: a slow import on a busy
machine does not make the first invocation time out. An init that overruns it goes on
under the invocation's timeout, as Lambda re-runs a timed-out init within the first
invoke. A worker that timed out or crashed is replaced at once by a pre-started one, so
the next invocation does not pay (or time out on) the cold start.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LogWriter = Callable[[str], None]

INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit

WORKER_SCRIPT = Path(__file__).resolve().with_name("lambda_worker.py")


class WorkerFailure(Exception):
    """The worker died or timed out; ``error`` is the Lambda-style error document."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("errorMessage", "worker failure"))
        self.error = error


@dataclass(frozen=True)
class WorkerSpec:
    """How to start a function's worker.

    Attributes:
        function_name: logical id of the function (used as the pool key).
        handler: ``module.function``.
        sys_path: directories, in order: task root, layer dirs, runtime dir.
        env: the complete environment of the worker process.
        timeout_s: the function's timeout in seconds (the invocation, not the init).
        fingerprint: identity of the build dirs; a change retires warm workers.
        init_timeout_s: budget of the init phase (the handler module's import).
    """

    function_name: str
    handler: str
    sys_path: tuple[str, ...]
    env: dict[str, str] = field(hash=False)
    timeout_s: float
    fingerprint: tuple[tuple[int, int], ...] = ()
    init_timeout_s: float = INIT_TIMEOUT_S


def build_fingerprint(paths: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(inode, mtime_ns) of each directory; ``sam build`` replaces them, changing this."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((st.st_ino, st.st_mtime_ns))
        except OSError:
            out.append((0, 0))
    return tuple(out)


class Worker:
    """One warm execution environment for ``spec`` (serves one request at a time).

    The init phase starts with the process. Everything the function prints (stdout and
    stderr) is passed line by line to ``log`` from a reader thread.
    """

    def __init__(self, spec: WorkerSpec, log: LogWriter) -> None:
        self.spec = spec
        self.started = time.monotonic()
        self.init: dict[str, Any] | None = None  # the worker's end-of-init document
        self.init_reported = False  # the REPORT line of the first invocation showed it
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-I", "-S", "-u", "-B", str(WORKER_SCRIPT),
                    str(req_r), str(resp_w), *spec.sys_path,
                ],
                pass_fds=(req_r, resp_w),
                stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**spec.env, "_HANDLER": spec.handler},
                cwd=spec.sys_path[0],
                start_new_session=True,  # Ctrl-C goes to the stack, which stops us in order
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        self._buffer = b""
        self._pump = threading.Thread(
            target=self._pump_logs, args=(log,), name=f"logs-{spec.function_name}", daemon=True
        )
        self._pump.start()

    def _pump_logs(self, log: LogWriter) -> None:
        assert self.process.stderr is not None
        with self.process.stderr as stream:
            for raw in stream:
                with contextlib.suppress(OSError, ValueError):  # closed log: drop the line
                    log(raw.decode(errors="replace"))

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    @property
    def init_failed(self) -> bool:
        """True when the handler module could not be imported."""
        return self.init is not None and not self.init.get("ready")

    def call(self, event: str, request_id: str) -> dict[str, Any]:
        """Send one invocation; return ``{"ok": True, "payload": str}`` or ``{"ok": False, ...}``.

        Waits for the end of the init phase first (up to ``spec.init_timeout_s`` from the
        start of the process; beyond it, init and handler share the function timeout).
        An init error is returned as ``{"ok": False, "error": ...}`` and stops the worker.
        Raises :class:`WorkerFailure` (and stops the worker) on timeout or a crash.
        """
        invoke_deadline: float | None = None
        if self.init is None:
            line = self._read_line(self.started + self.spec.init_timeout_s)
            if line is None and self.alive:  # init overran its budget: the invoke's counts now
                invoke_deadline = time.monotonic() + self.spec.timeout_s
                line = self._read_line(invoke_deadline)
            if line is None:
                raise self._failure(request_id)
            self.init = json.loads(line)
            if self.init_failed:
                self.stop()
                return {"ok": False, "error": {**self.init["error"], "requestId": request_id}}
        deadline = invoke_deadline or time.monotonic() + self.spec.timeout_s
        timeout_ms = max(int((deadline - time.monotonic()) * 1000), 1)
        request = {"event": event, "request_id": request_id, "timeout_ms": timeout_ms}
        try:
            os.write(self._req_w, (json.dumps(request) + "\n").encode())
        except OSError:
            self.stop()
            raise WorkerFailure(self._exit_error(request_id)) from None
        line = self._read_line(deadline)
        if line is None:
            raise self._failure(request_id)
        response: dict[str, Any] = json.loads(line)
        return response

    def _failure(self, request_id: str) -> WorkerFailure:
        """Stop the worker; the failure to raise: timed out if it still ran, else exited."""
        timed_out = self.alive
        self.stop()
        if timed_out:
            return WorkerFailure({
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after "
                f"{self.spec.timeout_s:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            })
        return WorkerFailure(self._exit_error(request_id))

    def _exit_error(self, request_id: str) -> dict[str, Any]:
        return {
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with "
            f"status {self.process.poll()}",
            "errorType": "Runtime.ExitError",
        }

    def _read_line(self, deadline: float) -> bytes | None:
        """The next line from the worker, or None at ``deadline`` or EOF (what is already
        in the pipe is read even when ``deadline`` has passed)."""
        while b"\n" not in self._buffer:
            remaining = max(deadline - time.monotonic(), 0.0)
            ready, _, _ = select.select([self._resp_r], [], [], remaining)
            if not ready:
                if remaining <= 0:
                    return None
                continue
            chunk = os.read(self._resp_r, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def close_pipes(self) -> None:
        """Close our pipe ends: an idle worker sees EOF and exits by itself."""
        for fd_name in ("_req_w", "_resp_r"):
            fd = getattr(self, fd_name)
            if fd >= 0:
                os.close(fd)
                setattr(self, fd_name, -1)

    def stop(self, timeout: float = 3.0) -> None:
        """Close the pipes (the worker exits on EOF), then terminate/kill if needed."""
        self.close_pipes()
        if self.process.poll() is None:
            try:
                self.process.wait(0.5)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self._pump.join(2)


class WorkerPool:
    """Idle workers per function, at most :meth:`limit` alive per function.

    The limit of a function is its entry in ``limits`` (``{function logical id: workers}``,
    e.g. the pollers of its event source mappings, see :meth:`set_limit`), else
    ``max_per_function``. :meth:`acquire` blocks while the limit is reached (like
    reserved concurrency); :meth:`release` replaces a worker that timed out or crashed
    with a pre-started one; :meth:`close` stops every worker, busy ones included.
    Thread-safe.
    """

    def __init__(self, log: LogWriter, max_per_function: int = 4,
                 limits: dict[str, int] | None = None) -> None:
        self.log = log
        self.max_per_function = max_per_function
        self._limits = {name: self._checked(name, n) for name, n in (limits or {}).items()}
        self._idle: dict[str, list[Worker]] = {}
        self._all: set[Worker] = set()
        self._cond = threading.Condition()
        self._closed = False

    @staticmethod
    def _checked(function_name: str, n: int) -> int:
        if n < 1:
            raise ValueError(f"{function_name}: a worker limit is at least 1, got {n}")
        return n

    def limit(self, function_name: str) -> int:
        """Workers ``function_name`` may have alive at once (its concurrent invocations)."""
        with self._cond:
            return self._limits.get(function_name, self.max_per_function)

    def set_limit(self, function_name: str, n: int) -> None:
        """Let ``function_name`` have up to ``n`` (>= 1) workers instead of the default.

        Callers waiting in :meth:`acquire` may go on at once when it grows. Lowering it
        stops no worker: the ones alive keep serving; new ones start only below the limit.
        """
        with self._cond:
            self._limits[function_name] = self._checked(function_name, n)
            self._cond.notify_all()

    def _count(self, function_name: str) -> int:
        return sum(1 for w in self._all if w.spec.function_name == function_name)

    def acquire(self, spec: WorkerSpec) -> Worker:
        """Return an idle warm worker for ``spec`` or start a new one (cold start).

        Raises ``RuntimeError`` once the pool is closed.
        """
        stale: list[Worker] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise RuntimeError("worker pool is closed")
                    idle = self._idle.setdefault(spec.function_name, [])
                    while idle:
                        worker = idle.pop()
                        if worker.alive and worker.spec == spec:
                            return worker
                        self._all.discard(worker)
                        stale.append(worker)
                    limit = self._limits.get(spec.function_name, self.max_per_function)
                    if self._count(spec.function_name) < limit:
                        worker = Worker(spec, self.log)
                        self._all.add(worker)
                        return worker
                    self._cond.wait()
        finally:
            for worker in stale:
                worker.stop()

    def release(self, worker: Worker) -> Worker | None:
        """Give ``worker`` back: kept warm if alive, else stopped.

        A worker that died after a successful init (a timeout or a crash) is replaced at
        once by a new one for the same spec, whose init runs while no one waits; it is
        returned (None when nothing was started). A failed import is not retried until
        the next invocation, as on Lambda.
        """
        replacement = None
        with self._cond:
            keep = worker.alive and not self._closed
            if keep:
                self._idle.setdefault(worker.spec.function_name, []).append(worker)
            else:
                self._all.discard(worker)
                if not self._closed and not worker.init_failed:
                    replacement = Worker(worker.spec, self.log)
                    self._all.add(replacement)
                    self._idle.setdefault(worker.spec.function_name, []).append(replacement)
            self._cond.notify_all()
        if not keep:
            worker.stop()
        return replacement

    def idle_pids(self, function_name: str) -> list[int]:
        """Process ids of the live idle (warm or pre-started) workers of ``function_name``."""
        with self._cond:
            return [w.process.pid for w in self._idle.get(function_name, []) if w.alive]

    def pids(self) -> list[int]:
        """Process ids of all live workers (for diagnostics and tests)."""
        with self._cond:
            return [w.process.pid for w in self._all if w.alive]

    def close(self, grace: float = 5.0) -> None:
        """Stop every worker; busy ones get SIGTERM and ``grace`` seconds to be released."""
        with self._cond:
            self._closed = True
            idle = [w for ws in self._idle.values() for w in ws]
            self._idle.clear()
            for worker in idle:
                self._all.discard(worker)
            busy = list(self._all)
            self._cond.notify_all()
        for worker in idle:
            worker.close_pipes()  # all exit in parallel...
        for worker in idle:
            worker.stop()  # ...then reap them
        for worker in busy:
            if worker.alive:
                worker.process.terminate()
        deadline = time.monotonic() + grace
        with self._cond:
            while self._all and time.monotonic() < deadline:
                self._cond.wait(0.1)
            leftovers = list(self._all)
        for worker in leftovers:
            worker.process.kill()
            worker.process.wait()
