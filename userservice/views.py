"""Serve the users endpoints under /api/v1/users."""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for

from . import auth, framing, idempotency, represent, users
from .api import Blueprint, View
from .proxies import unproxied
from .schemas import UserInputSchema, UserListArgsSchema, UserPatchSchema, UserSchema

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users")


@blp.before_request
def _admit() -> None:
    """Check the call's token first, before any argument parsing or database work; then read.

    A client waiting for `100 Continue` is asked for its body only now (framing.py).
    """
    auth.authenticate()
    framing.read_now(unproxied(request))


@blp.after_request
def _settle(response: Response) -> Response:
    """Store (or release) the create's Idempotency-Key, then write the audit line of a write.

    A read has neither: only a POST claims a key, and only writes are audited.
    """
    if unproxied(request).method not in auth.WRITE_METHODS:
        return response
    return auth.audit(idempotency.finish(response))


# What a replace (PUT) or change (PATCH) of one user can answer besides 200, and its headers.
CHANGE_PROBLEMS = (400, 404, 409, 412, 413, 415, 503)
PRECONDITIONS = ("IF_MATCH", "IF_NONE_MATCH_WRITE")
REPLAYED_HEADER = {
    "description": "`true` when this is the stored answer to an earlier request with the key.",
    "schema": {"type": "string", "enum": ["true"]},
}
LOCATION_HEADER = {
    "description": "The new user's URL.",
    "required": True,
    "schema": {"type": "string", "format": "uri-reference"},
}
# What a client (or a stateful test) can do next with the user a POST created: the writes
# send its ETag back. An operationRef is a JSON pointer, here to /api/v1/users/{user_id}.
USER_OPERATION = "#/paths/~1api~1v1~1users~1%7Buser_id%7D/"
BY_ID = {"user_id": "$response.body#/id"}
IF_UNCHANGED = {**BY_ID, "header.If-Match": "$response.header.ETag"}
USER_LINKS = {
    "GetUser": {"operationRef": USER_OPERATION + "get", "parameters": BY_ID},
    "ReplaceUser": {"operationRef": USER_OPERATION + "put", "parameters": IF_UNCHANGED},
    "UpdateUser": {"operationRef": USER_OPERATION + "patch", "parameters": IF_UNCHANGED},
    "DeleteUser": {"operationRef": USER_OPERATION + "delete", "parameters": IF_UNCHANGED},
}


def _represent(user: users.User, status: int = 200, **headers: str) -> Response:
    """Answer with the user as UserSchema (each route's documented schema) dumps it, and its ETag.

    Built here (represent.py), not by flask-smorest's dump: a view that returns a Response
    is only documented by its `@blp.response`.
    """
    return represent.user_response(user, status, {"ETag": users.etag(user), **headers})


@blp.route("")
class Users(View):
    """The collection of users."""

    @blp.arguments(UserListArgsSchema, location="query")
    @blp.response(200, UserSchema(many=True))
    @blp.paginate(page_size=20, max_page_size=100)
    @blp.problems(503, operationId="listUsers")
    def get(self, args: dict[str, Any], pagination_parameters: Any) -> list[users.User]:
        """List users in id order, a page at a time, optionally by email."""
        page, total = users.list_users(
            email=args.get("email"),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return page

    @blp.arguments(UserInputSchema)
    @blp.response(
        201,
        UserSchema,
        headers={
            "ETag": "ETAG",
            "Location": LOCATION_HEADER,
            idempotency.REPLAYED: REPLAYED_HEADER,
        },
    )
    @blp.problems(
        400,
        409,
        413,
        415,
        503,
        operationId="createUser",
        parameters=["IDEMPOTENCY_KEY"],
        responses={201: {"links": USER_LINKS}},
    )
    def post(self, data: dict[str, str]) -> Any:
        """Create a user; no other user may hold the address in any spelling.

        With an Idempotency-Key, a retry gets the first answer again and creates nothing.
        """
        claim = idempotency.begin(data)
        if isinstance(claim, Response):
            return claim
        user = users.create_user(
            email=data["email"],
            name=data["name"],
            user_id=None if claim is None else claim.user_id,
            now=None if claim is None else claim.created_at,
        )
        return _represent(user, 201, Location=url_for("users.UserById", user_id=user["id"]))


@blp.route("/<id:user_id>")
class UserById(View):
    """One user."""

    @blp.response(200, UserSchema, headers={"ETag": "ETAG"})
    @blp.alt_response(304, description="Not modified (If-None-Match)", headers={"ETag": "ETAG"})
    @blp.problems(404, 503, operationId="getUser", parameters=["IF_NONE_MATCH"])
    def get(self, user_id: int) -> Any:
        """Get a user; with If-None-Match, 304 when unchanged."""
        user = users.get_user(user_id)
        # The WSGI name: request.headers raises and catches a KeyError for a header not sent.
        if_none_match = request.environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match and users.matches(if_none_match, user, weak=True):
            return Response(status=304, headers={"ETag": users.etag(user)})
        return _represent(user)

    @blp.arguments(UserInputSchema)
    @blp.response(200, UserSchema, headers={"ETag": "ETAG"})
    @blp.problems(*CHANGE_PROBLEMS, operationId="replaceUser", parameters=list(PRECONDITIONS))
    def put(self, data: dict[str, str], user_id: int) -> Response:
        """Replace a user's email and name; If-Match and If-None-Match are honoured."""
        return _represent(users.update_user(user_id, **data, **_preconditions()))

    @blp.arguments(UserPatchSchema)
    @blp.response(200, UserSchema, headers={"ETag": "ETAG"})
    @blp.problems(*CHANGE_PROBLEMS, operationId="updateUser", parameters=list(PRECONDITIONS))
    def patch(self, data: dict[str, str], user_id: int) -> Response:
        """Change some of a user's fields; If-Match and If-None-Match are honoured."""
        return _represent(users.update_user(user_id, **data, **_preconditions()))

    @blp.response(204)
    @blp.problems(404, 412, 503, operationId="deleteUser", parameters=["IF_MATCH"])
    def delete(self, user_id: int) -> None:
        """Delete a user; If-Match is honoured when sent."""
        users.delete_user(user_id, if_match=_if_match())


def _if_match() -> str | None:
    return request.headers.get("If-Match")


def _preconditions() -> dict[str, str | None]:
    return {"if_match": _if_match(), "if_none_match": request.headers.get("If-None-Match")}
