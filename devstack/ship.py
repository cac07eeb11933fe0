"""Finish a ``sam build`` output as it ships to Lambda (issue 11, cold start).

``sam build`` unpacks the layer's wheels as they are; two steps make its cold starts
cheaper: keep only the AWS services the functions call in the layer's botocore
(:mod:`devstack.botocore_data`), then compile every module to bytecode
(:mod:`devstack.bytecode`). ``make build``, ``make build-aws`` and the local stack's build
run it.

    python -m devstack.ship [BUILD_DIR]      (default .aws-sam/build)
"""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.botocore_data import trim_botocore_data
from devstack.bytecode import compile_build

DEFAULT_BUILD_DIR = Path(".aws-sam") / "build"


def ship_build(build_dir: Path) -> None:
    """Trim the layer's botocore data, then compile ``build_dir`` to bytecode.

    Raises:
        FileNotFoundError: ``build_dir`` does not exist.
        RuntimeError: a module did not compile.
    """
    trim_botocore_data(build_dir)
    compile_build(build_dir)


def main(argv: list[str] | None = None) -> int:
    """Finish the build directory named by ``argv`` (or the default); exit 0."""
    args = sys.argv[1:] if argv is None else argv
    ship_build(Path(args[0]) if args else DEFAULT_BUILD_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
