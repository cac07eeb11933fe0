"""Routes declared in template.yaml: every ``HttpApi`` event of every function."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from devstack.tables import load_template

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"


@dataclass(frozen=True)
class Route:
    """One route: ``method`` (upper case), ``path`` (``/v1/contacts/{id}``), the function's
    logical id and its code folder."""

    method: str
    path: str
    function_id: str
    code_uri: Path

    @property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regex with one named group per ``{parameter}``."""
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")


def template_routes(template_path: Path = TEMPLATE) -> list[Route]:
    """Routes of the template, literal paths before parameterised ones (as API Gateway
    prefers ``/v1/contacts/upsert`` over ``/v1/contacts/{id}``)."""
    template = load_template(template_path)
    routes = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                routes.append(Route(event["Properties"]["Method"].upper(),
                                    event["Properties"]["Path"], logical_id,
                                    template_path.parent / props["CodeUri"]))
    return sorted(routes, key=lambda r: (r.path.count("{"), r.path, r.method))
