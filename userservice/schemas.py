"""Describe and validate what the API takes and returns."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from .emails import UnusableDomain, email_key

NAME_LENGTH = validate.Length(min=1, max=255)
EMAIL_LENGTH = validate.Length(max=255)
VALID_EMAIL = validate.Email()
# Character classes shared by the spec's ECMA-262 patterns and the checks below, so that what
# the spec declares and what the service accepts are one definition. C0 and C1 controls:
CONTROLS = r"\u0000-\u001f\u007f-\u009f"
# Unicode's Bidi_Control characters: they reorder how the text around them is displayed.
BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Spaces, format characters and blank letters (Hangul fillers, the Braille blank): a name of
# only these shows as nothing.
INVISIBLE = (
    r"\u0020\u00a0\u00ad\u034f\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    r"\u1680\u180e\u2000-\u200d\u2028\u2029\u202f\u205f-\u2064\u206a-\u206f\u2800\u3000"
    r"\u3164\ufeff\uffa0\ufff9-\ufffb"
)
# What _printable refuses, as a pattern. A lone surrogate cannot be written in a pattern every
# validator compiles; descriptions name it.
PRINTABLE = rf"^[^{CONTROLS}]*$"
PRINTABLE_NOTE = "No control characters or lone surrogates."
# Invisible characters, then a visible one, then anything but controls (linear to match).
NAME_PATTERN = rf"^[{INVISIBLE}]*[^{CONTROLS}{BIDI}{INVISIBLE}][^{CONTROLS}{BIDI}]*$"
NAME_NOTE = "At least one visible character; no control or bidirectional formatting characters."
# A local part of 1-64 characters (RFC 5321), then a domain name with a dot whose last label
# is not all digits: no `localhost`, no `[127.0.0.1]`, no `127.0.0.10`.
_LABEL = rf"[^{CONTROLS}@\[\].]"
EMAIL_PATTERN = rf"^[^{CONTROLS}]{{1,64}}@(?:{_LABEL}+\.)+[0-9]*[^{CONTROLS}@\[\].0-9]{_LABEL}*$"
EMAIL_NOTE = (
    "An address (internationalized ones too) with a local part of at most 64 characters and "
    "a domain name with a dot: no `localhost`, no address literal. " + PRINTABLE_NOTE
)
# Idempotency-Key (idempotency.py checks it, the spec documents it): RFC 8941's sf-string, as
# the IETF draft defines the header, quoted with `\"` and `\\` escaped; or the bare form most
# clients send, visible ASCII with no quote or backslash. The key is 1-255 visible characters.
IDEMPOTENCY_KEY_PATTERN = r'"((?:[!#-\[\]-~]|\\["\\]){1,255})"|([!#-\[\]-~]{1,255})'
_CONTROL = re.compile(f"[{CONTROLS}]")
_BIDI = re.compile(f"[{BIDI}]")


def _printable(value: str) -> None:
    """Refuse control characters and lone surrogates, which no name or email needs."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ma.ValidationError("Must not contain control characters.")


def _visible_name(value: str) -> None:
    """Refuse a name that shows as nothing, or that reorders the text around it."""
    if not value or re.fullmatch(NAME_PATTERN, value) or _CONTROL.search(value):
        return  # an empty name is NAME_LENGTH's to report, a control character _printable's
    if _BIDI.search(value):
        raise ma.ValidationError("Must not contain bidirectional formatting characters.")
    raise ma.ValidationError("Must contain a visible character.")


def _deliverable(value: str) -> None:
    """Refuse a local part over 64 characters, and a domain that is not a dotted name."""
    try:
        VALID_EMAIL(value)
    except ma.ValidationError:
        return  # the field's own check reports it
    if not re.fullmatch(EMAIL_PATTERN, value) and not _CONTROL.search(value):
        raise ma.ValidationError(
            "The local part must be at most 64 characters and the domain a name with a dot "
            "(no localhost, no address literal)."
        )


def _email(**kwargs: Any) -> fields.Email:
    """Make an email field: a valid address of at most 255 characters."""
    metadata = {"example": "ada@example.com", "maxLength": 255, "pattern": EMAIL_PATTERN}
    return fields.Email(
        validate=[EMAIL_LENGTH, _printable, _deliverable, _has_key],
        # The service takes internationalized addresses (RFC 6531), so the spec says so.
        metadata={**metadata, "format": "idn-email", "description": EMAIL_NOTE},
        **kwargs,
    )


def _name(**kwargs: Any) -> fields.String:
    """Make a name field: 1 to 255 characters, at least one of them visible."""
    return fields.String(
        validate=[NAME_LENGTH, _printable, _visible_name],
        metadata={
            "example": "Ada Lovelace",
            "pattern": NAME_PATTERN,
            "description": f"{NAME_NOTE} {PRINTABLE_NOTE}",
        },
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
