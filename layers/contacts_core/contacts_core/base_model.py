"""The base class of the layer's pydantic models.

Pydantic builds a model's validator and serializer when the class is created, unless told
to wait: with ``defer_build`` it builds them the first time the model validates, dumps or
gives its JSON Schema. Importing a module of models then costs only the classes, and a
function builds just the few models its requests use, not every model of the modules it
imports (issue 11, cold start). Validation and output are the same either way.
"""

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import CoreSchema, core_schema

from contacts_core.text import NO_CONTROL_CHARACTERS_PATTERN, no_control_characters


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


class SchemaKeywords:
    """``Annotated`` marker adding JSON Schema keywords that a validator enforces but
    pydantic cannot derive from it (a URL's scheme, an email's ``format``): the document
    then says what the server refuses. Validation is unchanged."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        json_schema = handler(schema)
        json_schema.update(self.keywords)
        return json_schema


class PlainText(SchemaKeywords):
    """``Annotated`` marker of a free-text string (names, tags, attribute keys,
    descriptions): refuses control characters as sent, before trimming
    (:func:`~contacts_core.text.no_control_characters`), and says so in the JSON Schema as
    a ``pattern``, so the document and the server draw the same line. ``also``: characters
    the field refuses besides (a tag's comma, refused by its own validator), added to the
    pattern."""

    def __init__(self, also: str = "") -> None:
        super().__init__(pattern=NO_CONTROL_CHARACTERS_PATTERN.replace(
            "[^", "[^" + re.sub(r"([\\\]^-])", r"\\\1", also), 1))

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(no_control_characters,
                                                             handler(source))
