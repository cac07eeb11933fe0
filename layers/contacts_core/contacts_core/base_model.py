"""The base class of the layer's pydantic models.

Pydantic builds a model's validator and serializer when the class is created, unless told
to wait: with ``defer_build`` it builds them the first time the model validates, dumps or
gives its JSON Schema. Importing a module of models then costs only the classes, and a
function builds just the few models its requests use, not every model of the modules it
imports (issue 11, cold start). Validation and output are the same either way.
"""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """``pydantic.BaseModel`` built on first use. Subclasses' ``model_config`` is merged
    with this one, so they keep ``defer_build``."""

    model_config = ConfigDict(defer_build=True)
