"""Describe and validate what the API takes and returns."""

from __future__ import annotations

import unicodedata
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from .emails import UnusableDomain, email_key

NAME_LENGTH = validate.Length(min=1, max=255)
EMAIL_LENGTH = validate.Length(max=255)
VALID_EMAIL = validate.Email()
# What _printable refuses, as the spec's ECMA-262 pattern (C0 and C1 controls). A lone
# surrogate cannot be written in a pattern every validator compiles; descriptions name it.
PRINTABLE = r"^[^\u0000-\u001f\u007f-\u009f]*$"
PRINTABLE_NOTE = "No control characters or lone surrogates."


def _printable(value: str) -> None:
    """Refuse control characters and lone surrogates, which no name or email needs."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ma.ValidationError("Must not contain control characters.")


def _email(**kwargs: Any) -> fields.Email:
    """Make an email field: a valid address of at most 255 characters."""
    metadata = {"example": "ada@example.com", "maxLength": 255, "pattern": PRINTABLE}
    return fields.Email(
        validate=[EMAIL_LENGTH, _printable, _has_key],
        metadata={**metadata, "description": f"A valid address. {PRINTABLE_NOTE}"},
        **kwargs,
    )


def _name(**kwargs: Any) -> fields.String:
    """Make a name field: 1 to 255 characters."""
    return fields.String(
        validate=[NAME_LENGTH, _printable],
        metadata={"example": "Ada Lovelace", "pattern": PRINTABLE, "description": PRINTABLE_NOTE},
        **kwargs,
    )


def _has_key(value: str) -> None:
    """Refuse a valid address that has no email key, because IDNA refuses its domain."""
    try:
        VALID_EMAIL(value)
        email_key(value)
    except ma.ValidationError:
        pass  # not an address at all: the Email field says so, once
    except UnusableDomain as exc:
        raise ma.ValidationError(str(exc)) from None


class UserInputSchema(ma.Schema):
    """A user's fields as a client sends them to create or replace the user."""

    email = _email(required=True)
    name = _name(required=True)

    class Meta:
        unknown = ma.RAISE


class UserPatchSchema(UserInputSchema):
    """The fields of a user to change; at least one."""

    email = _email()
    name = _name()

    class Meta(UserInputSchema.Meta):
        openapi: ClassVar[dict[str, Any]] = {"minProperties": 1}

    @ma.validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("Send at least one of email, name.")


class UserSchema(ma.Schema):
    """A user as the API returns it."""

    # Read-only and required: the server sets them and every response has them. Only
    # responses use this schema, so no client has to send them (OpenAPI 3.0).
    id = fields.Integer(dump_only=True, required=True, metadata={"example": 1})
    email = _email(required=True)
    name = _name(required=True)
    created_at = fields.AwareDateTime(dump_only=True, required=True, format="iso")
    updated_at = fields.AwareDateTime(dump_only=True, required=True, format="iso")


class UserListArgsSchema(ma.Schema):
    """Filters for the list of users."""

    email = fields.String(
        validate=[EMAIL_LENGTH, _printable],
        metadata={
            "description": f"Only the user with this address, in any spelling. {PRINTABLE_NOTE}",
            "pattern": PRINTABLE,
        },
    )


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    # Each problem response in the spec shows examples of its own status and codes.
    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String(required=True)
    code = fields.String(required=True)
    request_id = fields.String(required=True, allow_none=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field -> messages (422 only)."},
    )


class LiveSchema(ma.Schema):
    """The liveness answer."""

    status = fields.String(required=True, metadata={"example": "ok"})


class ReadySchema(ma.Schema):
    """The readiness answer: the database answered (the pool's figures are logged)."""

    status = fields.String(required=True, metadata={"example": "ready"})
