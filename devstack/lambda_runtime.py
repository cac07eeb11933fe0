"""The "Lambda runtime" directory: only what the python3.13 runtime provides (boto3).

Workers put it last on ``sys.path`` instead of the virtualenv's site-packages, so a
dependency missing from a function or its layer fails locally as it would on Lambda.

``python -m devstack.lambda_runtime [--force]`` creates it (``make`` may call this).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNTIME_DIR = REPO_ROOT / ".dev" / "lambda-runtime"
STAMP = ".devstack-runtime"


def boto3_requirement() -> str:
    """``boto3==<the version in this venv>`` (keeps local runs reproducible)."""
    try:
        return f"boto3=={importlib.metadata.version('boto3')}"
    except importlib.metadata.PackageNotFoundError:
        return "boto3"


def ensure_lambda_runtime(path: Path = DEFAULT_RUNTIME_DIR, force: bool = False) -> Path:
    """Create ``path`` with ``pip install --target`` boto3 unless it is already there.

    Returns the directory. Installs into a temporary sibling first and renames it,
    so an interrupted install never leaves a half-filled runtime. Raises
    ``subprocess.CalledProcessError`` if pip fails (e.g. no network to PyPI).
    """
    path = Path(path)
    requirement = boto3_requirement()
    stamp = path / STAMP
    if not force and stamp.is_file() and stamp.read_text().strip() == requirement:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".lambda-runtime-", dir=path.parent))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-compile", "--target", str(staging), requirement],
            check=True,
        )
        (staging / STAMP).write_text(requirement + "\n")
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python -m devstack.lambda_runtime [--path DIR] [--force]``; prints the dir."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_RUNTIME_DIR)
    parser.add_argument("--force", action="store_true", help="reinstall even if present")
    args = parser.parse_args(argv)
    print(ensure_lambda_runtime(args.path, args.force))


if __name__ == "__main__":
    main()
