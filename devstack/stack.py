"""The whole local stack: ``sam build``, DynamoDB Local, tables, SQS, KMS, Secrets Manager
and S3 (one moto server), workers, the template's event sources and the API.

    with LocalStack(StackConfig(port=0, ddb_port=None)) as stack:
        requests.get(stack.base_url + "/v1/contacts",
                     headers={"Authorization": f"Bearer {stack.api_key}"})

Webhooks flow as on AWS: DynamoDB Local streams -> ``EmitWebhooksFunction`` -> SQS
(moto server, in this process) -> ``DeliverWebhooksFunction`` -> signed POSTs, with
``AllowLoopbackWebhooks=true`` (http://127.0.0.1 receivers) and short retry delays. The
same moto server holds the template's KMS keys and secrets (:mod:`devstack.keys`); the
cursor key ring is rotated once at start by ``RotateCursorKeyFunction``, as on deploy.
Its S3 holds the template's buckets (:mod:`devstack.buckets`; path-style URLs, so presigned
URLs work from this machine), whose notifications reach their functions as asynchronous
invocations (:class:`devstack.event_sources.S3EventPoller`).

Everything it starts is stopped by :meth:`LocalStack.stop` (also on errors during
:meth:`LocalStack.start`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from werkzeug.serving import make_server

from devstack.api import ApiServer, load_stacks
from devstack.aws import local_client
from devstack.buckets import create_buckets, s3_environment
from devstack.dynamodb_local import REPO_ROOT, DynamoDBLocal
from devstack.event_sources import (
    EventSourceRunner,
    FunctionError,
    Mapping,
    Poller,
    S3EventPoller,
    SqsPoller,
    StreamPoller,
    function_concurrency,
    mappings,
)
from devstack.keys import (
    create_keys,
    create_secrets,
    endpoint_environment,
    key_materials,
    rotate_secret,
    rotation_schedules,
    secret_values,
)
from devstack.lambda_runtime import DEFAULT_RUNTIME_DIR, ensure_lambda_runtime
from devstack.queues import create_queues
from devstack.runner import FAKE_AWS, LambdaFunctionError, ProcessLambdaRunner
from devstack.ship import ship_build
from devstack.tables import create_tables


def host_architecture() -> str:
    """Lambda architecture matching this machine (``arm64`` or ``x86_64``).

    Native wheels (pydantic-core) are built for it, so they load in the workers.
    """
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x86_64"


BUILD_PARAMETERS = {"Architecture": host_architecture()}
API_KEYS_ENV = "API_KEYS_TABLE"
# Idle pause of each event source poller (AWS polls a stream about 4 times a second; 0.5 s
# keeps an idle stack's CPU low while a change still reaches a receiver in about a second).
POLL_INTERVAL_S = 0.5
# Local deliveries retry after seconds, not minutes (6 attempts over about a minute).
DEFAULT_WEBHOOK_RETRY_DELAYS = "2,4,8,16,32"


def parse_retry_delays(value: str) -> str:
    """``value`` normalised ("2, 4,8" -> "2,4,8"); ValueError unless it is a comma-separated
    list of whole seconds (0..43200, SQS's visibility limit) that the template's
    ``WebhookRetryDelays`` parameter takes (its ``AllowedPattern``: 1 to 9 of them)."""
    from devstack.tables import load_template

    try:
        delays = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        delays = []
    normalised = ",".join(str(d) for d in delays)
    parameter = load_template(REPO_ROOT / "template.yaml")["Parameters"]["WebhookRetryDelays"]
    if any(not 0 <= d <= 43200 for d in delays) or \
            not re.fullmatch(parameter["AllowedPattern"], normalised):
        raise ValueError(f"expected 1 to 9 delays in seconds like 2,4,8,16,32, got {value!r}")
    return normalised


@dataclass
class StackConfig:
    """Options of the local stack.

    ``port=0`` / ``ddb_port=None`` / ``sqs_port=None`` pick free ports; ``persist`` is a
    DynamoDB Local data directory (``None``: in memory); ``build=False`` reuses
    ``.aws-sam/build``; ``webhook_retry_delays`` is the ``WebhookRetryDelays`` parameter;
    ``max_concurrency`` is the warm workers per function (concurrent invocations beyond it
    wait), except that a function fed by event sources gets as many as they run at once
    when that is more (:func:`worker_limits`: e.g. an SQS mapping's pollers).
    """

    host: str = "127.0.0.1"
    port: int = 3000
    ddb_port: int | None = 8000
    sqs_port: int | None = None
    webhook_retry_delays: str = DEFAULT_WEBHOOK_RETRY_DELAYS
    persist: str | None = None
    build: bool = True
    org_id: str = "org_dev"
    repo_root: Path = REPO_ROOT
    runtime_dir: Path = DEFAULT_RUNTIME_DIR
    max_concurrency: int = 4
    extra_parameters: dict[str, str] = field(default_factory=dict)

    @property
    def template(self) -> Path:
        """The source template (tables are created from it)."""
        return self.repo_root / "template.yaml"

    @property
    def build_dir(self) -> Path:
        """``sam build`` output directory."""
        return self.repo_root / ".aws-sam" / "build"


def worker_limits(found: list[Mapping], max_concurrency: int) -> dict[str, int]:
    """``{function logical id: warm workers}`` for the functions of the event sources in
    ``found`` (template.yaml's, see :func:`devstack.event_sources.mappings`) that need more
    than ``max_concurrency``: the invocations their event sources start with
    (:func:`devstack.event_sources.function_concurrency`; an SQS mapping runs
    ``ScalingConfig.MaximumConcurrency`` pollers, else 5), as Lambda scales a function out
    for its pollers. Each poller then has a worker: a delivery that hangs (to a webhook
    endpoint that never answers) holds up only its own poller while the others go on
    delivering (SPEC: "A dead endpoint never delays other endpoints or other events");
    when every poller hangs, the mapping scales out and the stack gives the function one
    more worker per added poller (:meth:`LocalStack._one_more_worker`)."""
    return {function_id: n for function_id, n in function_concurrency(found).items()
            if n > max_concurrency}


def sam_build(repo_root: Path = REPO_ROOT, parameters: dict[str, str] | None = None) -> None:
    """Run ``sam build --cached --parameter-overrides Architecture=<host>`` in ``repo_root``,
    then finish its output as it ships (:mod:`devstack.ship`: botocore's data trimmed to
    the services we call, bytecode compiled).

    Raises ``subprocess.CalledProcessError`` when the build fails.
    """
    sam = shutil.which("sam") or str(Path(sys.executable).with_name("sam"))
    overrides = [f"{k}={v}" for k, v in (parameters or BUILD_PARAMETERS).items()]
    with build_lock(repo_root):
        subprocess.run(
            [sam, "build", "--cached", "--parameter-overrides", *overrides],
            cwd=repo_root,
            check=True,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
        ship_build(repo_root / ".aws-sam" / "build")


@contextmanager
def build_lock(repo_root: Path = REPO_ROOT) -> Iterator[None]:
    """Hold ``.aws-sam/build.lock`` (an exclusive ``flock``): one ``sam build`` of the
    checkout at a time, and no copy of its output while one runs (two stacks, or a stack
    and ``make test``, started together would otherwise build into one directory at once).
    """
    lock_path = repo_root / ".aws-sam" / "build.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_is_fresh(repo_root: Path = REPO_ROOT) -> bool:
    """True when ``.aws-sam/build/template.yaml`` is newer than every source it comes from.

    Sources: ``template.yaml`` and every file under ``functions/`` and ``layers/``
    (``__pycache__`` ignored). Lets tests skip ``sam build`` when nothing changed.
    """
    built = repo_root / ".aws-sam" / "build" / "template.yaml"
    if not built.is_file():
        return False
    sources = [repo_root / "template.yaml"]
    for top in ("functions", "layers"):
        sources += [p for p in (repo_root / top).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts]
    newest = max((p.stat().st_mtime for p in sources if p.exists()), default=0.0)
    return built.stat().st_mtime >= newest


def mint_key(
    org_id: str, dynamodb_endpoint: str, table: str, name: str = "dev", repo_root: Path = REPO_ROOT
) -> str:
    """Mint an API key for ``org_id`` in ``table`` at ``dynamodb_endpoint``; return it.

    Runs ``python -m devstack.api_keys`` in a child process, so the domain package's
    cached boto3 client never points at another endpoint. Raises
    ``subprocess.CalledProcessError`` on failure.
    """
    env = {
        **os.environ,
        API_KEYS_ENV: table,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_ACCESS_KEY_ID": FAKE_AWS["key"],
        "AWS_SECRET_ACCESS_KEY": FAKE_AWS["secret"],
        "AWS_REGION": FAKE_AWS["region"],
        "AWS_DEFAULT_REGION": FAKE_AWS["region"],
    }
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    devstack_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [devstack_parent, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "devstack.api_keys", "--org", org_id, "--name", name],
        cwd=repo_root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


class _QuietMotoRequestHandler(MotoRequestHandler):
    """moto's request handler without werkzeug's access log (pollers call SQS non-stop)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class SqsServer(ThreadedMotoServer):
    """moto's server (SQS, KMS, Secrets Manager, S3), threaded in this process on
    ``ip_address:port`` (0: free port).

    Unlike the base class, :meth:`start` binds in the calling thread, so a taken port
    raises ``OSError`` (instead of waiting forever); requests are not logged, and
    :meth:`stop` closes the socket.
    """

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)

    def start(self) -> None:
        """Bind, then serve in a daemon thread; raises ``OSError`` if the port is taken."""
        try:
            listener = socket.create_server((self._ip_address, self._port))
        except OSError as exc:
            raise OSError(exc.errno, f"SQS (moto) cannot listen on {self._ip_address}:"
                                     f"{self._port}: {exc.strerror}") from exc
        with listener:  # werkzeug serves a duplicate of this socket
            self._server = make_server(
                self._ip_address, self._port, DomainDispatcherApplication(create_backend_app),
                threaded=True, request_handler=_QuietMotoRequestHandler, fd=listener.fileno())
        self._thread = threading.Thread(target=self._server.serve_forever, name="devstack-sqs",
                                        daemon=True)
        self._thread.start()
        self._server_ready_event.set()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        server = self._server
        if server is None:
            return
        super().stop()
        server.server_close()
        self._server = None


class StackStopping(RuntimeError):
    """Raised to event source pollers that try to invoke while the stack stops."""


class LocalStack:
    """Start/stop the local stack described by a :class:`StackConfig`.

    After :meth:`start`: :attr:`base_url`, :attr:`api_key` (for ``config.org_id``),
    :attr:`dynamodb_endpoint`, :attr:`sqs_endpoint` (also KMS, Secrets Manager and S3),
    :attr:`tables` (``{logical_id: name}``), :attr:`queues` (``{logical_id: url}``),
    :attr:`keys` (``{logical_id: KMS key id}``), :attr:`secrets` (``{logical_id: ARN}``),
    :attr:`buckets` (``{logical_id: bucket name}``), :attr:`mappings` (the template's
    event source mappings and S3 notifications, polled in background threads) and
    :attr:`runner` are set.
    """

    def __init__(self, config: StackConfig | None = None, log: TextIO | None = None) -> None:
        self.config = config or StackConfig()
        self.log = log or sys.stderr
        self.ddb: DynamoDBLocal | None = None
        self.sqs: SqsServer | None = None
        self.runner: ProcessLambdaRunner | None = None
        self.event_sources: EventSourceRunner | None = None
        self.server: ApiServer | None = None
        self.tables: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self.buckets: dict[str, str] = {}
        self.mappings: list[Mapping] = []
        self.api_key = ""
        self._stopping = threading.Event()
        self._sqs_client: Any = None
        self.served: Path | None = None  # the copy of the build this stack serves
        self._snapshot_root: Path | None = None

    @property
    def parameters(self) -> dict[str, str]:
        """Template parameter overrides used locally: Architecture,
        AllowLoopbackWebhooks=true, WebhookRetryDelays, then ``extra_parameters``."""
        return {**BUILD_PARAMETERS, "AllowLoopbackWebhooks": "true",
                "WebhookRetryDelays": self.config.webhook_retry_delays,
                **self.config.extra_parameters}

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the API."""
        assert self.server is not None, "stack not started"
        return self.server.base_url

    @property
    def dynamodb_endpoint(self) -> str:
        """DynamoDB Local endpoint URL."""
        assert self.ddb is not None, "stack not started"
        return self.ddb.endpoint_url

    @property
    def sqs_endpoint(self) -> str:
        """SQS (moto) endpoint URL (also KMS, Secrets Manager and S3)."""
        assert self.sqs is not None, "stack not started"
        return self.sqs.endpoint_url

    def start(self) -> Self:
        """Build (optional), start DynamoDB Local and moto, create tables, queues, keys,
        secrets and buckets, mint the dev key, start the event sources, serve.

        Raises on any failure after stopping whatever was already started.
        """
        cfg = self.config
        self._stopping.clear()
        try:
            if cfg.build:
                sam_build(cfg.repo_root)
            if not (cfg.build_dir / "template.yaml").is_file():
                raise FileNotFoundError(f"{cfg.build_dir / 'template.yaml'} missing: run "
                                        "`sam build` or drop --no-build")
            self.served = self._snapshot(cfg.build_dir)
            built = self.served / "template.yaml"
            runtime_dir = ensure_lambda_runtime(cfg.runtime_dir)
            self.ddb = DynamoDBLocal(cfg.ddb_port, cfg.persist).start()
            self.tables = create_tables(cfg.template, self.ddb.endpoint_url, self.parameters)
            self.sqs = SqsServer("127.0.0.1", cfg.sqs_port or 0)  # internal: loopback only
            self.sqs.start()
            self.queues = create_queues(cfg.template, self.sqs.endpoint_url)
            kept = self._kept_keys()
            self.keys = create_keys(cfg.template, self.sqs.endpoint_url, kept.get("keys"))
            self.secrets = create_secrets(cfg.template, self.sqs.endpoint_url,
                                          kept.get("secrets"))
            self.buckets = create_buckets(cfg.template, self.sqs.endpoint_url)
            self._sqs_client = local_client("sqs", self.sqs.endpoint_url)
            stacks = load_stacks(built, self.parameters)
            self.mappings = mappings(cfg.template)
            self.runner = ProcessLambdaRunner(
                SamFunctionProvider(stacks),
                runtime_dir,
                extra_env={"AWS_ENDPOINT_URL_DYNAMODB": self.ddb.endpoint_url,
                           "AWS_ENDPOINT_URL_SQS": self.sqs.endpoint_url,
                           **endpoint_environment(self.sqs.endpoint_url),
                           **s3_environment(self.sqs.endpoint_url)},
                max_concurrency=cfg.max_concurrency,
                log_stream=self.log,
                cwd=str(self.served),
                queue_urls={**self.queues, **self.keys, **self.secrets, **self.buckets},
                function_concurrency=worker_limits(self.mappings, cfg.max_concurrency),
            )
            for secret, (function_id, at_once) in rotation_schedules(cfg.template).items():
                if at_once and secret in self.secrets:  # as CloudFormation does on deploy
                    rotate_secret(self.secrets[secret], function_id, self.invoke_function)
            self._keep_keys()
            self.server = ApiServer(
                stacks, self.runner, cfg.host, cfg.port, cwd=self.served, stderr=self.log
            )
            self.api_key = self.mint_key(cfg.org_id)
            self.event_sources = EventSourceRunner(
                [self._poller(m) for m in self.mappings], interval=POLL_INTERVAL_S,
                grow=self._one_more_worker).start()
            self.server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _snapshot(self, build_dir: Path) -> Path:
        """A private copy of ``build_dir`` that this stack serves until it stops, so a
        later ``sam build`` (``make test``, another stack) never changes the code under it.
        Copied under :func:`build_lock`; ~40 MB, well under a second."""
        self._snapshot_root = Path(tempfile.mkdtemp(prefix="contacts-devstack-"))
        with build_lock(self.config.repo_root):
            return Path(shutil.copytree(build_dir, self._snapshot_root / "build",
                                        symlinks=True))

    def _poller(self, mapping: Mapping) -> Poller:
        """The local poller of one template event source (mapping or S3 notification)."""
        if mapping.kind == "DynamoDB":
            return StreamPoller(mapping, self.dynamodb_endpoint, self.invoke, self.send_failure)
        if mapping.kind == "S3":
            if mapping.source not in self.buckets:
                raise LookupError(f"{mapping.function_id}: no bucket {mapping.source} in the "
                                  "template")
            return S3EventPoller(mapping, self.buckets[mapping.source], self.sqs_endpoint,
                                 self.invoke, log=self._log_line)
        if mapping.source not in self.queues:
            raise LookupError(f"{mapping.function_id}: no queue {mapping.source} in the template")
        # Its pollers run concurrently, each with a worker of its own (worker_limits).
        return SqsPoller(mapping, self.queues[mapping.source], self.sqs_endpoint, self.invoke)

    def _one_more_worker(self, function_id: str) -> None:
        """Let ``function_id`` run one more invocation at once (its event source scaled
        out, see :class:`devstack.event_sources.EventSourceRunner`)."""
        assert self.runner is not None, "stack not started"
        pool = self.runner.pool
        pool.set_limit(function_id, pool.limit(function_id) + 1)

    def _log_line(self, line: str) -> None:
        print(line, file=self.log, flush=True)

    def invoke_function(self, function_id: str, event: dict[str, Any]) -> Any:
        """Run ``function_id`` with ``event`` in its worker (e.g. a rotation step).

        Raises :class:`devstack.runner.LambdaFunctionError` when the function fails.
        """
        assert self.runner is not None, "stack not started"
        return self.runner.invoke_event(function_id, event)

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        """Run ``function_id`` with ``event`` in its worker (for the event source mappings).

        Raises :class:`devstack.event_sources.FunctionError` when the function fails and
        :class:`StackStopping` once :meth:`stop` has begun.
        """
        runner = self.runner
        if runner is None or self._stopping.is_set():
            raise StackStopping("the local stack is stopping")
        try:
            return runner.invoke_event(function_id, event)
        except LambdaFunctionError as err:
            if self._stopping.is_set():  # a worker killed by stop(), not a function error
                raise StackStopping("the local stack is stopping") from err
            raise FunctionError(str(err)) from err

    def send_failure(self, queue_id: str, record: dict[str, Any]) -> None:
        """Send ``record`` as JSON to the queue ``queue_id`` (on-failure destination)."""
        url = self.queues[queue_id]
        body = json.dumps(record)
        extra: dict[str, str] = {}
        if url.endswith(".fifo"):
            extra = {"MessageGroupId": "on-failure",
                     "MessageDeduplicationId": hashlib.sha256(body.encode()).hexdigest()}
        self._sqs_client.send_message(QueueUrl=url, MessageBody=body, **extra)
        print(f"devstack: event source batch sent to {queue_id}: "
              f"{record.get('requestContext', {}).get('condition')}", file=self.log, flush=True)

    def api_keys_table(self) -> str:
        """Local name of the table the functions know as ``API_KEYS_TABLE``."""
        assert self.runner is not None, "stack not started"
        for function in self.runner.provider.get_all():
            variables = (function.environment or {}).get("Variables") or {}
            if isinstance(variables.get(API_KEYS_ENV), str):
                return str(variables[API_KEYS_ENV])
        raise LookupError(f"no function has {API_KEYS_ENV} in its environment")

    @property
    def _keys_file(self) -> Path | None:
        """Where a ``--persist`` stack keeps its KMS keys and secrets, beside the tables
        (moto, which serves them, keeps nothing across restarts)."""
        persist = self.config.persist
        return Path(persist) / "devstack-keys.json" if persist else None

    def _kept_keys(self) -> dict[str, Any]:
        """What :meth:`_keep_keys` saved last run: ``{"keys": …, "secrets": …}`` or ``{}``."""
        path = self._keys_file
        return json.loads(path.read_text()) if path and path.is_file() else {}

    def _keep_keys(self) -> None:
        """Save the keys' material and the secrets' values for the next ``--persist`` run,
        so the webhook secrets and cursors the tables hold keep working after a restart."""
        path = self._keys_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "keys": key_materials(self.keys),
            "secrets": secret_values(self.secrets, self.sqs_endpoint)}))
        path.chmod(0o600)

    def mint_key(self, org_id: str, name: str = "dev") -> str:
        """Mint and return a new API key for ``org_id`` in the stack's ApiKeys table."""
        return mint_key(org_id, self.dynamodb_endpoint, self.api_keys_table(), name,
                        self.config.repo_root)

    def ready_info(self) -> dict[str, Any]:
        """What ``--ready-file`` contains."""
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "dynamodb_endpoint": self.dynamodb_endpoint,
            "sqs_endpoint": self.sqs_endpoint,
            "queues": dict(self.queues),
            "org_id": self.config.org_id,
            "keys": dict(self.keys),
            "secrets": dict(self.secrets),
            "buckets": dict(self.buckets),
        }

    def function_environments(self) -> dict[str, dict[str, str]]:
        """``{function logical id: its template environment}`` (parameters resolved; queue,
        key, secret and bucket references still logical ids)."""
        assert self.runner is not None, "stack not started"
        return {function.name: {k: str(v) for k, v in
                                ((function.environment or {}).get("Variables") or {}).items()}
                for function in self.runner.provider.get_all()}

    def state_info(self) -> dict[str, Any]:
        """What ``.dev/stack.json`` holds (see :mod:`devstack.state`): :meth:`ready_info`
        plus the table names, the ``API_KEYS_TABLE`` name, the template parameters the
        functions run with and the build directory."""
        return {
            **self.ready_info(),
            "tables": dict(self.tables),
            "api_keys_table": self.api_keys_table(),
            "parameters": dict(self.parameters),
            "build_dir": str(self.served or self.config.build_dir),
        }

    def stop(self) -> None:
        """Stop the event source pollers, the API server, every worker, SQS and the JVM
        (idempotent, never raises).

        Pollers are told to stop first and invocations are refused from then on; their
        threads are joined once the workers are closed, so an invocation in flight (e.g. a
        delivery to a hanging receiver) cannot hold the shutdown up.
        """
        self._stopping.set()
        server, sources, runner = self.server, self.event_sources, self.runner
        sqs, ddb = self.sqs, self.ddb
        self.server = self.event_sources = self.runner = self.sqs = self.ddb = None
        steps = (sources and sources.request_stop, server and server.stop,
                 runner and runner.close, sources and sources.stop, sqs and sqs.stop,
                 ddb and ddb.stop)
        for step in steps:
            if step:
                try:
                    step()
                except Exception as exc:  # keep stopping the rest
                    print(f"devstack: error while stopping: {exc!r}", file=self.log)
        snapshot, self._snapshot_root, self.served = self._snapshot_root, None, None
        if snapshot:
            shutil.rmtree(snapshot, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
