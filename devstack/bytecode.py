"""Compile a ``sam build`` output to bytecode, as it ships.

Lambda mounts the function code (``/var/task``) and its layers (``/opt``) read-only, so
Python cannot write ``__pycache__`` there: whatever bytecode the package does not carry is
compiled again on every cold start — for the layer that is pydantic, Powertools and our
domain package. ``sam build`` (the ``python_pip`` workflow unpacks wheels itself) ships
no ``.pyc``, so ``make build``, ``make build-aws`` and the local stack's build run this
afterwards (issue 11, cold start).

The ``.pyc`` files are ``checked-hash`` (PEP 552): each holds a hash of its source and is
used only while the source still matches, whatever the file times a zip or a copy gives
(Lambda's unpacked files, ``sam build --cached``), so a stale one is never run.

Run by ``python -m devstack.ship [BUILD_DIR]`` with the other build step.
"""

from __future__ import annotations

import compileall
import py_compile
from pathlib import Path


def compile_build(build_dir: Path) -> None:
    """Write a checked-hash ``.pyc`` beside every ``.py`` under ``build_dir``, with the
    running interpreter (the runtime's Python, 3.13, in the project's virtualenv).

    Raises:
        FileNotFoundError: ``build_dir`` does not exist.
        RuntimeError: a module did not compile (a syntax error ships nowhere).
    """
    if not build_dir.is_dir():
        raise FileNotFoundError(f"no build output at {build_dir}: run sam build first")
    ok = compileall.compile_dir(build_dir, quiet=1, workers=0,
                                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    if not ok:
        raise RuntimeError(f"some modules under {build_dir} did not compile")
