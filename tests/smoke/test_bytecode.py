"""The build output ships bytecode (devstack/bytecode.py; issue 11, cold start): Lambda
cannot write ``__pycache__`` to its read-only code and layer mounts, so without shipped
``.pyc`` files every cold start compiles the layer again."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.bytecode import compile_build
from devstack.stack import REPO_ROOT, build_is_fresh, sam_build

CHECKED_HASH = 0b11  # PEP 552 flags: hash-based, check the source


def _pyc_matches(source: Path) -> bool:
    """True when ``source`` has a checked-hash .pyc holding the hash of its current text."""
    pyc = Path(importlib.util.cache_from_source(str(source)))
    if not pyc.is_file():
        return False
    header = pyc.read_bytes()[:16]
    flags = int.from_bytes(header[4:8], "little")
    return (header[:4] == importlib.util.MAGIC_NUMBER and flags == CHECKED_HASH
            and header[8:16] == importlib.util.source_hash(source.read_bytes()))


def test_a_changed_source_is_run_not_its_old_bytecode(tmp_path: Path) -> None:
    # Given a compiled module
    module = tmp_path / "greeting.py"
    module.write_text("WORD = 'hello'\n")
    compile_build(tmp_path)
    assert _pyc_matches(module)
    # When its source changes after the build (same size, same second)
    module.write_text("WORD = 'howdy'\n")
    # Then Python runs the new source, even where it may not write bytecode
    out = subprocess.run([sys.executable, "-B", "-c", "import greeting; print(greeting.WORD)"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "howdy"


def test_a_module_that_does_not_compile_fails_the_build(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def oops(:\n")
    with pytest.raises(RuntimeError, match="did not compile"):
        compile_build(tmp_path)


def test_the_build_ships_bytecode_for_the_layer_and_every_function() -> None:
    # Given the build output (make test builds it first)
    if not build_is_fresh(REPO_ROOT):
        sam_build(REPO_ROOT)
    build = REPO_ROOT / ".aws-sam" / "build"
    # Then every module in it has bytecode matching its source: the layer's libraries
    # (pydantic, Powertools), our domain package, and each function's handler
    sources = [p for p in build.rglob("*.py") if "__pycache__" not in p.parts]
    assert any("pydantic" in p.parts for p in sources)
    assert (build / "GetContactFunction" / "app.py") in sources
    missing = [str(p.relative_to(build)) for p in sources if not _pyc_matches(p)]
    assert missing == [], f"{len(missing)} modules without bytecode, e.g. {missing[:5]}"
