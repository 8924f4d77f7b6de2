"""Answer with one user as UserSchema dumps it, without marshmallow's dump per answer.

UserSchema stays the documented response schema (views.py keeps `@blp.response(...,
UserSchema)`; flask-smorest documents a schema and serializes only what a view does not
return as a Response). Its fields are read once, here, into a list of (key, converter): a
field marshmallow would dump otherwise is refused at import, not answered differently. The
JSON comes from the same `json` encoder, with the same options, that Flask's default provider
uses (or from orjson, where its bytes are that encoder's), so the bytes are those of
`app.json.response(UserSchema().dump(user))` (tests/test_represent.py compares them for many
users and for every ASCII character). Any other provider, or its indented
debug output, gets exactly that call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import Response, current_app
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields

from . import jsontext
from .proxies import unproxied
from .schemas import UserSchema

SCHEMA = UserSchema()
Converter = Callable[[Any], Any]
_ABSENT = object()


def _text(value: Any) -> str:
    """Return what marshmallow's String dumps (utils.ensure_text_type)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _converter(name: str, field: fields.Field[Any]) -> Converter:
    """Return what dumping one field does to its (non-None) value; refuse anything else."""
    if (
        field.attribute is not None
        or field.data_key is not None
        or field.dump_default is not ma.missing
    ):
        raise TypeError(f"UserSchema.{name}: represent.py writes plain keys only")
    kind = type(field)
    if kind is fields.Integer and not field.as_string:  # type: ignore[attr-defined]
        return int
    if kind is fields.String:
        return _text
    if kind is fields.AwareDateTime and field.format == "iso":  # type: ignore[attr-defined]
        return datetime.isoformat
    raise TypeError(f"UserSchema.{name}: represent.py does not know how {kind.__name__} dumps")


FIELDS: tuple[tuple[str, Converter], ...] = tuple(
    (name, _converter(name, field)) for name, field in SCHEMA.dump_fields.items()
)


def dump(user: Mapping[str, Any]) -> dict[str, Any]:
    """Return `UserSchema().dump(user)` for a user dict: its fields, converted, in order."""
    dumped: dict[str, Any] = {}
    for name, convert in FIELDS:
        value = user.get(name, _ABSENT)
        if value is not _ABSENT:  # marshmallow leaves out a key the object lacks
            dumped[name] = None if value is None else convert(value)
    return dumped


# One encoder per (ensure_ascii, sort_keys): json.dumps with options builds a new one per call.
_ENCODERS: dict[tuple[bool, bool], Callable[[Any], str]] = {}


def _encoder(provider: DefaultJSONProvider) -> Callable[[Any], str]:
    key = (bool(provider.ensure_ascii), bool(provider.sort_keys))
    encode = _ENCODERS.get(key)
    if encode is None:
        # What DefaultJSONProvider.response passes to json.dumps when compact (its `default`
        # is never called: a dumped user holds only str, int and None).
        encoder = json.JSONEncoder(ensure_ascii=key[0], sort_keys=key[1], separators=(",", ":"))
        encode = encoder.encode
        if key == (True, False):  # the app's options (create_app)
            encode = _through_orjson(encode)
        _ENCODERS[key] = encode
    return encode


def _through_orjson(standard: Callable[[Any], str]) -> Callable[[Any], str]:
    """Return an encoder that writes jsontext's text when it is the standard encoder's.

    It is for an answer written in ASCII without DEL (0x7f, which only the standard encoder
    escapes): orjson escapes every other ASCII character alike (checked for each of the 128),
    and what orjson cannot write jsontext writes with the standard encoder. A name or address
    with any other character takes the standard encoder. orjson takes a fifth of its time for
    a user.
    """

    def encode(dumped: Any) -> str:
        text = jsontext.dumps(dumped)
        if text.isascii() and "\x7f" not in text:
            return text
        return standard(dumped)

    return encode


def user_response(user: Mapping[str, Any], status: int, headers: Mapping[str, str]) -> Response:
    """Return the response flask-smorest would build for `user` under UserSchema."""
    app = unproxied(current_app)
    provider = app.json
    if type(provider) is DefaultJSONProvider and (
        provider.compact or (provider.compact is None and not app.debug)
    ):
        body = _encoder(provider)(dump(user)) + "\n"
        response = app.response_class(body, mimetype=provider.mimetype)
    else:
        response = provider.response(SCHEMA.dump(user))  # type: ignore[assignment]
    response.headers.extend(headers)
    response.status_code = status
    return response
