"""Write openapi.json from the models and template.yaml (``make openapi``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from contacts_core.openapi import build_openapi
from devstack.routes import REPO_ROOT, template_routes

OPENAPI_PATH = REPO_ROOT / "openapi.json"


def render() -> str:
    """The OpenAPI document as committed: indented JSON with a final newline."""
    routes = [(r.method, r.path, r.function_id) for r in template_routes()]
    return json.dumps(build_openapi(routes), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``openapi.json`` (or the path given as the only argument)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else OPENAPI_PATH
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
