"""The base class of the layer's pydantic models.

Pydantic builds a model's validator and serializer when the class is created, unless told
to wait: with ``defer_build`` it builds them the first time the model validates, dumps or
gives its JSON Schema. Importing a module of models then costs only the classes, and a
function builds just the few models its requests use, not every model of the modules it
imports (issue 11, cold start). Validation and output are the same either way.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """``pydantic.BaseModel`` built on first use. Subclasses' ``model_config`` is merged
    with this one, so they keep ``defer_build``."""

    model_config = ConfigDict(defer_build=True)


def without_null(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a field that may be left out but not sent as ``null`` (its
    model refuses it): the JSON Schema keeps the non-null branch, without the ``null``
    default pydantic writes for "absent"."""
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    schema.pop("default", None)
    if len(branches) == 1:
        schema.update(branches[0])
