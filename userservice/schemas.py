"""Describe and validate what the API takes and returns."""

from __future__ import annotations

import unicodedata
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

NAME_LENGTH = validate.Length(min=1, max=255)
EMAIL_LENGTH = validate.Length(max=255)


def _printable(value: str) -> None:
    """Refuse control characters and lone surrogates, which no name or email needs."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ma.ValidationError("Must not contain control characters.")


class UserSchema(ma.Schema):
    """A user as the API returns it."""

    id = fields.Integer(dump_only=True, metadata={"example": 1})
    email = fields.Email(
        required=True,
        validate=[EMAIL_LENGTH, _printable],
        metadata={"example": "ada@example.com", "maxLength": 255},
    )
    name = fields.String(
        required=True,
        validate=[NAME_LENGTH, _printable],
        metadata={"example": "Ada Lovelace"},
    )
    created_at = fields.AwareDateTime(dump_only=True, format="iso")
    updated_at = fields.AwareDateTime(dump_only=True, format="iso")

    class Meta:
        unknown = ma.RAISE


class UserPatchSchema(UserSchema):
    """The fields of a user to change; at least one."""

    email = fields.Email(validate=[EMAIL_LENGTH, _printable], metadata={"maxLength": 255})
    name = fields.String(validate=[NAME_LENGTH, _printable])

    @ma.validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("Send at least one of email, name.")


class UserListArgsSchema(ma.Schema):
    """Filters for the list of users."""

    email = fields.String(
        validate=[EMAIL_LENGTH, _printable],
        metadata={"description": "Only the user with this email (ignoring case)."},
    )


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = fields.String(metadata={"example": "about:blank"})
    title = fields.String(metadata={"example": "Not Found"})
    status = fields.Integer(metadata={"example": 404})
    detail = fields.String(metadata={"example": "No user has this id."})
    instance = fields.String(metadata={"example": "/api/v1/users/7"})
    code = fields.String(metadata={"example": "USER_NOT_FOUND"})
    request_id = fields.String(allow_none=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field -> messages (422 only)."},
    )
