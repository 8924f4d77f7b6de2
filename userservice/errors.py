"""The exceptions the API reports: each carries its status, code and public detail.

problems.py renders them (and every other error) as RFC 9457 problem details.
"""

from __future__ import annotations

# The protection space named in WWW-Authenticate (RFC 6750).
REALM = "userservice"


def bearer_challenge(**params: str) -> dict[str, str]:
    """Return the WWW-Authenticate header of a refused call: the realm, then params in order."""
    extra = "".join(f', {name}="{value}"' for name, value in params.items())
    return {"WWW-Authenticate": f'Bearer realm="{REALM}"{extra}'}


class ServiceError(Exception):
    """An error the API reports, carrying its status, code and public detail."""

    status = 500
    code = "INTERNAL_ERROR"
    # What clients see when the exception brings no detail of its own.
    public_detail = "An unexpected error occurred; quote the request_id."
    # A private detail (a host, a pool) is logged, never shown.
    detail_is_private = False
    # Seconds after which a retry may succeed (Retry-After), for errors that pass.
    retry_after: int | None = None

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def shown_detail(self) -> str:
        """Return the detail a client may see."""
        if self.detail_is_private or not self.detail:
            return self.public_detail
        return self.detail

    def headers(self) -> dict[str, str]:
        """Return the headers this error adds to its response: Retry-After when it passes."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class UserNotFound(ServiceError):
    """No user has that id."""

    status, code, public_detail = 404, "USER_NOT_FOUND", "No user has this id."


class EmailTaken(ServiceError):
    """Another user already holds that address, in any spelling."""

    status, code, public_detail = 409, "EMAIL_TAKEN", "Another user already has this email."


class PreconditionFailed(ServiceError):
    """The user's ETag does not match the request's If-Match."""

    status, code = 412, "PRECONDITION_FAILED"
    public_detail = "The user has changed since that ETag."


class WriteConflict(ServiceError):
    """Another request changed the user between this request's read and its write."""

    status, code = 503, "WRITE_CONFLICT"
    public_detail = "Another request changed this user at the same moment; nothing was written."
    # The race is over by then.
    retry_after = 1


class IdempotencyKeyMalformed(ServiceError):
    """The Idempotency-Key header is not a string of 1-255 visible ASCII characters."""

    status, code = 400, "IDEMPOTENCY_KEY_MALFORMED"
    public_detail = 'Send Idempotency-Key as 1-255 visible ASCII characters, e.g. "8e03978e".'


class IdempotencyKeyRepeated(ServiceError):
    """The request carries more than one Idempotency-Key (two headers, or a list in one)."""

    status, code = 400, "IDEMPOTENCY_KEY_REPEATED"
    public_detail = "Send one Idempotency-Key; this request carries more than one."


class IdempotencyKeyReused(ServiceError):
    """The Idempotency-Key was first sent with another request body."""

    status, code = 422, "IDEMPOTENCY_KEY_REUSED"
    public_detail = "This Idempotency-Key was used with another request body; use a new key."


class IdempotencyKeyInFlight(ServiceError):
    """The first request with this Idempotency-Key is still being processed."""

    status, code = 409, "IDEMPOTENCY_KEY_IN_FLIGHT"
    public_detail = "A request with this Idempotency-Key is still in progress; retry."
    retry_after = 1  # a live first attempt answers within seconds


class DatabaseUnavailable(ServiceError):
    """The database could not be reached in time; raised with DB_RETRY_AFTER as retry_after."""

    status, code = 503, "DATABASE_UNAVAILABLE"
    public_detail = "The database is unavailable; retry."
    detail_is_private = True


class DatabaseBusy(DatabaseUnavailable):
    """The database turned the statement away for contention or time; the session is sound."""

    code = "DATABASE_BUSY"
    public_detail = "The database is busy; retry."


class MalformedJson(ServiceError):
    """The request body is not valid JSON."""

    status, code, public_detail = 400, "MALFORMED_JSON", "The request body is not valid JSON."


class UnsupportedMediaType(ServiceError):
    """The request body is not JSON."""

    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    public_detail = "Send the body as application/json."


class MissingHost(ServiceError):
    """An HTTP/1.1 request came without a Host header."""

    status, code = 400, "HOST_REQUIRED"
    public_detail = "An HTTP/1.1 request must carry a Host header."


class MalformedBody(ServiceError):
    """The request body's framing is broken (a bad chunk size, a missing CRLF, a bad trailer)."""

    status, code = 400, "MALFORMED_BODY"
    public_detail = "The request body's chunked framing is malformed."


class IncompleteBody(ServiceError):
    """The body ended before its Content-Length: the client closed or half-closed mid-body."""

    status, code = 400, "INCOMPLETE_BODY"
    public_detail = "The request body ended before its Content-Length."


class BodyTimeout(ServiceError):
    """The client stopped sending its body for longer than READ_TIMEOUT."""

    status, code = 408, "REQUEST_TIMEOUT"
    public_detail = "The request body did not arrive in time."


class Unauthenticated(ServiceError):
    """The request carries no bearer token (RFC 6750)."""

    status, code = 401, "UNAUTHENTICATED"
    public_detail = "Send a token as Authorization: Bearer <token>."

    def headers(self) -> dict[str, str]:
        """Name the scheme the client must use."""
        return bearer_challenge()


# Far above any issuer's real tokens, far below what would cost to parse (auth/verifier.py
# refuses a longer one, and the door one too long for the header block, worker.py).
MAX_TOKEN_LENGTH = 8192


class InvalidToken(ServiceError):
    """The bearer token is malformed, forged, expired or not meant for this service."""

    status, code, public_detail = 401, "INVALID_TOKEN", "The token is not valid."

    def headers(self) -> dict[str, str]:
        """Say the token itself was refused."""
        return bearer_challenge(error="invalid_token")


class InsufficientScope(ServiceError):
    """The token is valid but does not grant the scope the call needs."""

    status, code, public_detail = 403, "INSUFFICIENT_SCOPE", "The token lacks the scope needed."

    def __init__(self, scope: str) -> None:
        super().__init__(f"The token lacks the {scope} scope.")
        self.scope = scope

    def headers(self) -> dict[str, str]:
        """Name the scope the call needs."""
        return bearer_challenge(error="insufficient_scope", scope=self.scope)


class AuthUnavailable(ServiceError):
    """No cached key fits the token and the issuer's key set cannot be fetched (retry_after)."""

    status, code = 503, "AUTH_UNAVAILABLE"
    public_detail = "The token cannot be checked now: the issuer's keys are unreachable; retry."
    detail_is_private = True
