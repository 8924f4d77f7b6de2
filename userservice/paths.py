"""Give each user one URL: ids and query integers are plain ASCII digits, nothing else."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from flask import Flask
from flask_smorest import Api
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter, ValidationError

from .users import MAX_ID

# Python's int() and werkzeug's int converter also take other scripts' digits (fullwidth,
# Arabic-Indic...), signs, underscores, spaces and leading zeros: many spellings of a number.
CANONICAL_INTEGER = re.compile(r"0|[1-9][0-9]*")
# marshmallow's own message, so that every malformed integer reads the same.
NOT_CANONICAL = "Not a valid integer."


class IdConverter(BaseConverter):
    """Match a user id: 0 to users.MAX_ID in ASCII digits, without leading zeros."""

    regex = r"0|[1-9][0-9]{0,18}"
    part_isolating = True

    def to_python(self, value: str) -> int:
        """Turn the path segment into the id; past MAX_ID the route does not match (404)."""
        number = int(value)
        if number > MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        """Spell the id as the route matches it."""
        return str(int(value))


def check_query(args: MultiDict[str, str], schema: ma.Schema) -> None:
    """Raise a ValidationError for a parameter sent twice or an integer spelled oddly."""
    errors: dict[str, list[str]] = {}
    for name, field in schema.fields.items():
        key = field.data_key or name
        values = args.getlist(key)
        if len(values) > 1 and not isinstance(field, ma.fields.List):
            errors[key] = ["Give this parameter once."]
        elif isinstance(field, ma.fields.Integer) and not all(map(_canonical, values)):
            errors[key] = [NOT_CANONICAL]
    if errors:
        raise ma.ValidationError(errors)


def _canonical(value: str) -> bool:
    return CANONICAL_INTEGER.fullmatch(value) is not None


def id_schema(converter: IdConverter) -> dict[str, Any]:
    """Describe the id path parameter in the spec."""
    return {"type": "integer", "minimum": 0, "maximum": MAX_ID}


def init_app(app: Flask, smorest: Api) -> None:
    """Register the id converter and keep empty path segments (call before the routes)."""
    app.url_map.converters["id"] = IdConverter
    smorest.register_converter(IdConverter, id_schema)
    # werkzeug would redirect /users//1 to /users/1: a second URL for the same user.
    app.url_map.merge_slashes = False
