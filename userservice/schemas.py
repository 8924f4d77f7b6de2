"""Describe and validate what the API takes and returns."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from . import text, textclasses
from .emails import UnusableDomain, email_key

NAME_LENGTH = validate.Length(min=1, max=255)
EMAIL_LENGTH = validate.Length(max=255)
# Character classes shared by the spec's ECMA-262 patterns and the checks below, so that what
# the spec declares and what the service accepts are one definition. C0 and C1 controls:
CONTROLS = r"\u0000-\u001f\u007f-\u009f"
# What _printable refuses, as a pattern. A lone surrogate cannot be written in a pattern every
# validator compiles; descriptions name it.
PRINTABLE = rf"^[^{CONTROLS}]*$"
PRINTABLE_NOTE = "No control characters or lone surrogates."
# Invisible characters, then a visible one, then anything refused (linear to match): text.py's
# rules as classes, from the Unicode database (textclasses.py).
NAME_PATTERN = (
    f"^[{textclasses.INVISIBLE}]*[^{textclasses.REFUSED}{textclasses.INVISIBLE}]"
    f"[^{textclasses.REFUSED}]*$"
)
NAME_NOTE = (
    "At least one visible character (a letter, number, punctuation or symbol; a combining mark "
    "shows only on the character before it); no control, bidirectional formatting, unassigned, "
    "private-use, noncharacter, tag, line or paragraph separator characters."
)
# A local part of 1-64 characters (RFC 5321), then a domain name with a dot whose last label
# is not all digits: no `localhost`, no `[127.0.0.1]`, no `127.0.0.10`.
_LABEL = rf"[^{CONTROLS}@\[\].]"
EMAIL_PATTERN = rf"^[^{CONTROLS}]{{1,64}}@(?:{_LABEL}+\.)+[0-9]*[^{CONTROLS}@\[\].0-9]{_LABEL}*$"
EMAIL_NOTE = (
    "An address (internationalized ones too) with a local part of at most 64 characters and "
    "a domain name with a dot: no `localhost`, no address literal. A quoted local part is the "
    'same address as its unquoted form when it needs no quotes (`"ada"@x.io` is `ada@x.io`). '
    + PRINTABLE_NOTE
)
Check = Callable[[str], Any]


def _in_order(*checks: Check) -> Check:
    """Run checks in turn and stop at the first refusal: a length check then spares the rest.

    marshmallow runs every validator of a field and collects their errors, so a 900,000
    character address would be matched by the email pattern before its length refused it.
    """

    def check(value: str) -> None:
        for one in checks:
            one(value)

    return check


# Idempotency-Key (idempotency.py checks it, the spec documents it): RFC 8941's sf-string, as
# the IETF draft defines the header, quoted with `\"` and `\\` escaped; or the bare form most
# clients send, visible ASCII with no quote, backslash or comma (a comma is where a proxy joins
# two headers into one). The key is 1-255 visible characters.
IDEMPOTENCY_KEY_PATTERN = r'"((?:[!#-\[\]-~]|\\["\\]){1,255})"|([!#-+\--\[\]-~]{1,255})'


def _printable(value: str) -> None:
    """Refuse control characters and lone surrogates, which no name or email needs."""
    for char in value:
        if unicodedata.category(char) in text.CONTROL_CATEGORIES:
            raise ma.ValidationError(text.NO_CONTROLS)


def _shows(value: str) -> None:
    """Refuse a name that shows as nothing, misplaces a mark, or holds an undefined character."""
    problem = text.name_problem(value)
    if problem is not None:
        raise ma.ValidationError(problem)


def _deliverable(value: str) -> None:
    """Refuse a local part over 64 characters, and a domain that is not a dotted name."""
    if not re.fullmatch(EMAIL_PATTERN, value):
        raise ma.ValidationError(
            "The local part must be at most 64 characters and the domain a name with a dot "
            "(no localhost, no address literal)."
        )


def _has_key(value: str) -> None:
    """Refuse a valid address that has no email key, because IDNA refuses its domain."""
    try:
        email_key(value)
    except UnusableDomain as exc:
        raise ma.ValidationError(str(exc)) from None


# Cheapest first, each check only on what passed the one before.
EMAIL_CHECKS = _in_order(EMAIL_LENGTH, _printable, validate.Email(), _deliverable, _has_key)
NAME_CHECKS = _in_order(NAME_LENGTH, _shows)


def _email(**kwargs: Any) -> fields.String:
    """Make an email field: a valid address of at most 255 characters."""
    metadata = {"example": "ada@example.com", "maxLength": 255, "pattern": EMAIL_PATTERN}
    # A String, not an Email field: Email runs its own pattern before any length check.
    return fields.String(
        validate=EMAIL_CHECKS,
        error_messages={"invalid": fields.Email.default_error_messages["invalid"]},
        # The service takes internationalized addresses (RFC 6531), so the spec says so.
        metadata={**metadata, "format": "idn-email", "description": EMAIL_NOTE},
        **kwargs,
    )


def _name(**kwargs: Any) -> fields.String:
    """Make a name field: 1 to 255 characters, at least one of them visible."""
    return fields.String(
        validate=NAME_CHECKS,
        metadata={
            "example": "Ada Lovelace",
            "maxLength": 255,
            "minLength": 1,
            "pattern": NAME_PATTERN,
            "description": f"{NAME_NOTE} {PRINTABLE_NOTE}",
        },
        **kwargs,
    )


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
        validate=_in_order(EMAIL_LENGTH, _printable),
        metadata={
            "description": f"Only the user with this address, in any spelling. {PRINTABLE_NOTE}",
            "maxLength": 255,
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
