"""The whole local stack: ``sam build``, DynamoDB Local, tables, workers and the API.

    with LocalStack(StackConfig(port=0, ddb_port=None)) as stack:
        requests.get(stack.base_url + "/v1/contacts",
                     headers={"Authorization": f"Bearer {stack.api_key}"})

Everything it starts is stopped by :meth:`LocalStack.stop` (also on errors during
:meth:`LocalStack.start`).
"""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

from samcli.lib.providers.sam_function_provider import SamFunctionProvider

from devstack.api import ApiServer, load_stacks
from devstack.dynamodb_local import REPO_ROOT, DynamoDBLocal
from devstack.lambda_runtime import DEFAULT_RUNTIME_DIR, ensure_lambda_runtime
from devstack.runner import FAKE_AWS, ProcessLambdaRunner
from devstack.tables import create_tables


def host_architecture() -> str:
    """Lambda architecture matching this machine (``arm64`` or ``x86_64``).

    Native wheels (pydantic-core) are built for it, so they load in the workers.
    """
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x86_64"


BUILD_PARAMETERS = {"Architecture": host_architecture()}
API_KEYS_ENV = "API_KEYS_TABLE"


def random_secret(length: int = 48) -> str:
    """``length`` random letters and digits (a fresh CursorSecret per run)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class StackConfig:
    """Options of the local stack.

    ``port=0`` / ``ddb_port=None`` pick free ports; ``persist`` is a DynamoDB Local
    data directory (``None``: in memory); ``build=False`` reuses ``.aws-sam/build``.
    """

    host: str = "127.0.0.1"
    port: int = 3000
    ddb_port: int | None = 8000
    persist: str | None = None
    build: bool = True
    cursor_secret: str | None = None
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


def sam_build(repo_root: Path = REPO_ROOT, parameters: dict[str, str] | None = None) -> None:
    """Run ``sam build --cached --parameter-overrides Architecture=<host>`` in ``repo_root``.

    Raises ``subprocess.CalledProcessError`` when the build fails.
    """
    sam = shutil.which("sam") or str(Path(sys.executable).with_name("sam"))
    overrides = [f"{k}={v}" for k, v in (parameters or BUILD_PARAMETERS).items()]
    subprocess.run(
        [sam, "build", "--cached", "--parameter-overrides", *overrides],
        cwd=repo_root,
        check=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )


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


class LocalStack:
    """Start/stop the local stack described by a :class:`StackConfig`.

    After :meth:`start`: :attr:`base_url`, :attr:`api_key` (for ``config.org_id``),
    :attr:`dynamodb_endpoint`, :attr:`cursor_secret`, :attr:`tables`
    (``{logical_id: name}``) and :attr:`runner` are set.
    """

    def __init__(self, config: StackConfig | None = None, log: TextIO | None = None) -> None:
        self.config = config or StackConfig()
        self.log = log or sys.stderr
        self.cursor_secret = self.config.cursor_secret or random_secret()
        self.ddb: DynamoDBLocal | None = None
        self.runner: ProcessLambdaRunner | None = None
        self.server: ApiServer | None = None
        self.tables: dict[str, str] = {}
        self.api_key = ""

    @property
    def parameters(self) -> dict[str, str]:
        """Template parameter overrides used locally (Architecture, CursorSecret, extras)."""
        return {**BUILD_PARAMETERS, "CursorSecret": self.cursor_secret,
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

    def start(self) -> Self:
        """Build (optional), start DynamoDB Local, create tables, mint the dev key, serve.

        Raises on any failure after stopping whatever was already started.
        """
        cfg = self.config
        try:
            if cfg.build:
                sam_build(cfg.repo_root)
            built = cfg.build_dir / "template.yaml"
            if not built.is_file():
                raise FileNotFoundError(f"{built} missing: run `sam build` or drop --no-build")
            runtime_dir = ensure_lambda_runtime(cfg.runtime_dir)
            self.ddb = DynamoDBLocal(cfg.ddb_port, cfg.persist).start()
            self.tables = create_tables(cfg.template, self.ddb.endpoint_url, self.parameters)
            stacks = load_stacks(built, self.parameters)
            self.runner = ProcessLambdaRunner(
                SamFunctionProvider(stacks),
                runtime_dir,
                extra_env={"AWS_ENDPOINT_URL_DYNAMODB": self.ddb.endpoint_url},
                max_concurrency=cfg.max_concurrency,
                log_stream=self.log,
                cwd=str(cfg.build_dir),
            )
            self.server = ApiServer(
                stacks, self.runner, cfg.host, cfg.port, cwd=cfg.build_dir, stderr=self.log
            )
            self.api_key = self.mint_key(cfg.org_id)
            self.server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def api_keys_table(self) -> str:
        """Local name of the table the functions know as ``API_KEYS_TABLE``."""
        assert self.runner is not None, "stack not started"
        for function in self.runner.provider.get_all():
            variables = (function.environment or {}).get("Variables") or {}
            if isinstance(variables.get(API_KEYS_ENV), str):
                return str(variables[API_KEYS_ENV])
        raise LookupError(f"no function has {API_KEYS_ENV} in its environment")

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
            "org_id": self.config.org_id,
            "cursor_secret": self.cursor_secret,
        }

    def stop(self) -> None:
        """Stop the API server, every worker and the JVM (idempotent, never raises)."""
        server, runner, ddb = self.server, self.runner, self.ddb
        self.server = self.runner = self.ddb = None
        for step in (server and server.stop, runner and runner.close, ddb and ddb.stop):
            if step:
                try:
                    step()
                except Exception as exc:  # keep stopping the rest
                    print(f"devstack: error while stopping: {exc!r}", file=self.log)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
