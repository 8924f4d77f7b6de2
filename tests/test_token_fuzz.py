"""A malformed token is 401 INVALID_TOKEN whatever its shape, never a 500: classes and properties.

Hypothesis throws arbitrary bytes at each of a token's three parts, arbitrary JSON at its header
and claims (signed with the issuer's real key, so PyJWT's own checks run on it too), through the
Flask test client and over real gunicorn.
"""

from __future__ import annotations

import base64
import http.client
import json
import sys
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from issuer import INVALID, READ, WRITE, Issuer, bearer, issuer_and_app, issuer_and_gunicorn
from jwt.algorithms import RSAAlgorithm
from lambda_events import CONTEXT, rest_event

from userservice.auth.tokenparts import LATEST, MAX_DEPTH
from userservice.lambda_adapter import handle

MALFORMED = "The token is malformed."
# Enough examples to find the shapes that used to be 500s in well under a minute.
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
CLAIMS = ("exp", "nbf", "iat", "iss", "aud", "sub", "scope", "scp", "client_id", "azp")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Flask]]:
    """One issuer and one secured app holding one user."""
    with issuer_and_app(tmp_path_factory.mktemp("fuzz")) as both:
        yield both


def b64(data: bytes | str) -> str:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(issuer: Issuer, header: bytes | str, claims: bytes | str) -> str:
    """Sign the two parts as given (any bytes) with the issuer's RSA key, RS256."""
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), issuer.keys["rsa-1"])
    return f"{signing_input}.{b64(signature)}"


def with_claims(issuer: Issuer, claims_text: str) -> str:
    """A token with a real header and signature around claims written as raw JSON text."""
    return signed(issuer, '{"alg":"RS256","typ":"JWT","kid":"rsa-1"}', claims_text)


def claims_json(issuer: Issuer, **raw: str) -> str:
    """Valid claims as JSON text, with some claims replaced by raw JSON text."""
    fields = {name: json.dumps(value) for name, value in issuer.claims().items()}
    fields.update(raw)
    return "{" + ",".join(f"{json.dumps(name)}:{text}" for name, text in fields.items()) + "}"


def answer(app: Flask, token: str, method: str = "GET") -> Any:
    return app.test_client().open("/api/v1/users/1", method=method, headers=bearer(token))


def assert_invalid(response: Any, detail: str | None = None) -> None:
    """The answer is 401 INVALID_TOKEN in problem details with the invalid_token challenge."""
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"] == INVALID
    problem = response.get_json()
    assert problem["code"] == "INVALID_TOKEN"
    if detail is not None:
        assert problem["detail"] == detail


# The classes, each tried across its range.


def nested(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "1" + closer * depth


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100, 899, 900])
def test_json_nested_past_the_bound_is_malformed_in_header_and_claims(
    shared, opener, depth, access_log
):
    issuer, app = shared
    deep = nested(depth, opener)
    for token in (
        f"{b64(deep)}.e30.AA",
        signed(issuer, '{"alg":"RS256","kid":"rsa-1","x":' + deep + "}", "{}"),
        with_claims(issuer, claims_json(issuer, x=deep)),
    ):
        assert_invalid(answer(app, token), MALFORMED)
    assert [r.status for r in access_log] == [401] * 3


def test_json_nested_to_the_bound_is_read(shared):
    issuer, app = shared
    response = answer(app, with_claims(issuer, claims_json(issuer, x=nested(MAX_DEPTH - 1, "["))))
    assert response.status_code == 200


NOT_TIMES = [
    '"9999999999"',  # a string of digits
    '"\u0661\u0662\u0663"',  # Arabic-Indic digits
    '"' + "9" * 401 + '"',
    "true",
    "false",
    "null",
    "[1]",
    '{"t": 1}',
    str(10**400),
    str(2**63),
    "1e400",  # a float that overflows to infinity
    "-1",
    str(LATEST + 1),
]


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", NOT_TIMES)
def test_a_time_claim_that_is_not_a_number_in_range_is_invalid(shared, claim, value):
    issuer, app = shared
    token = with_claims(issuer, claims_json(issuer, **{claim: value}))
    response = answer(app, token)
    assert_invalid(response)
    assert response.get_json()["detail"] in (
        MALFORMED,
        f"The token's {claim} is not a time in seconds.",
    )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1" * 40])
def test_a_number_json_does_not_have_or_too_long_is_malformed(shared, literal):
    issuer, app = shared
    assert_invalid(answer(app, with_claims(issuer, claims_json(issuer, x=literal))), MALFORMED)


def test_times_as_floats_or_ints_in_range_are_read(shared):
    issuer, app = shared
    times = {"iat": "1500000000.5", "nbf": "0", "exp": str(LATEST)}
    assert answer(app, with_claims(issuer, claims_json(issuer, **times))).status_code == 200


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("scope", f'["{READ}", "{WRITE}"]'),
        ("scope", f'{{"{READ}": true}}'),
        ("scope", "1"),
        ("scope", "null"),
        ("scp", f'[["{READ}"]]'),
        ("scp", f'["{READ}", 1]'),
        ("scp", "true"),
        ("sub", "42"),
        ("client_id", '["c"]'),
        ("iss", '["x"]'),
        ("aud", '[["userservice"]]'),
    ],
)
def test_a_claim_of_the_wrong_type_is_invalid(shared, claim, value):
    issuer, app = shared
    response = answer(app, with_claims(issuer, claims_json(issuer, **{claim: value})))
    assert_invalid(response)
    assert response.get_json()["detail"].startswith(f"The token's {claim} is not a ")


def test_a_repeated_key_is_malformed(shared):
    issuer, app = shared
    token = with_claims(issuer, claims_json(issuer)[:-1] + ',"exp":99999999999}')
    assert_invalid(answer(app, token), MALFORMED)


def test_a_lone_surrogate_or_invalid_utf8_is_malformed(shared):
    issuer, app = shared
    assert_invalid(answer(app, with_claims(issuer, claims_json(issuer, sub='"\\ud800"'))))
    assert_invalid(answer(app, signed(issuer, b'{"alg":"RS256","kid":"rsa-1"}', b"{\xff}")))


@pytest.mark.parametrize("part", ["e30=", "e3+0", "e3/0", "e3 0", "e3.0", "", "e30==", "e", "e3~0"])
def test_a_part_that_is_not_unpadded_base64url_is_malformed(shared, part):
    issuer, app = shared
    good = issuer.token().split(".")
    for index in range(3):
        token = ".".join(part if n == index else p for n, p in enumerate(good))
        response = app.test_client().get("/api/v1/users/1", headers=bearer(token))
        # A character outside RFC 6750's b64token never reaches the verifier: no token at all.
        assert response.status_code == 401, token
        assert response.get_json()["code"] in ("INVALID_TOKEN", "UNAUTHENTICATED")


# Every separator but the ASCII space joins two scopes into one that grants nothing.
SEPARATORS = [
    chr(c)
    for c in range(sys.maxunicode + 1)
    if c != 0x20 and (chr(c).isspace() or unicodedata.category(chr(c)).startswith("Z"))
]


def test_scope_is_split_on_the_ascii_space_only(shared):
    issuer, app = shared
    assert len(SEPARATORS) >= 25  # every Unicode space and line or paragraph separator
    for separator in SEPARATORS:
        for claim in ("scope", "scp"):
            token = issuer.token(**{"scope": None, claim: f"{READ}{separator}{WRITE}"})
            response = answer(app, token)
            assert response.status_code == 403, (hex(ord(separator)), claim)
            assert response.get_json()["code"] == "INSUFFICIENT_SCOPE"
    assert answer(app, issuer.token(scope=f"  {READ}  {WRITE} ")).status_code == 200
    assert answer(app, issuer.token(scope=None, scp=[READ])).status_code == 200


# Properties: arbitrary input, never a 500.


@FUZZ
@given(header=st.binary(max_size=300), claims=st.binary(max_size=300), sig=st.binary(max_size=300))
def test_arbitrary_bytes_in_any_part_are_401_invalid_token(shared, header, claims, sig):
    _, app = shared
    assert_invalid(answer(app, f"{b64(header)}.{b64(claims)}.{b64(sig)}"))


@FUZZ
@given(token=st.text(alphabet="ABCxyz019-._~+/=", min_size=1, max_size=200))
def test_arbitrary_b64token_text_is_401_invalid_token(shared, token):
    _, app = shared
    response = answer(app, token)
    assert response.status_code == 401
    assert response.get_json()["code"] in ("INVALID_TOKEN", "UNAUTHENTICATED")


@FUZZ
@given(header=JSON, claims=JSON)
def test_arbitrary_signed_json_is_401_invalid_token(shared, header, claims):
    issuer, app = shared
    assert_invalid(answer(app, signed(issuer, json.dumps(header), json.dumps(claims))))


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(CLAIMS), JSON, min_size=1))
def test_valid_claims_with_arbitrary_values_are_never_a_500(shared, changes):
    issuer, app = shared
    raw = {name: json.dumps(value) for name, value in changes.items()}
    response = answer(app, with_claims(issuer, claims_json(issuer, **raw)))
    assert response.status_code in (200, 401, 403), response.get_data(as_text=True)
    if response.status_code == 401:
        assert_invalid(response)


def test_a_deep_token_through_lambda_is_401_invalid_token(shared):
    _, app = shared
    event = rest_event(
        method="GET",
        path="/api/v1/users/1",
        headers=bearer(f"{b64('[' * 900)}.e30.AA"),
        body=None,
    )
    result = handle(app, event, CONTEXT)
    assert int(result["statusCode"]) == 401
    assert json.loads(result["body"])["code"] == "INVALID_TOKEN"


# Over real gunicorn.


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, int]]:
    """An issuer, and gunicorn serving an app that trusts it."""
    with issuer_and_gunicorn(tmp_path_factory.mktemp("fuzz-gunicorn")) as both:
        yield both


def over_http(port: int, token: str) -> tuple[int, str | None, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/v1/users/1", headers=bearer(token))
        response = conn.getresponse()
        return response.status, response.getheader("WWW-Authenticate"), json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.slow
def test_over_gunicorn_the_shapes_that_were_500s_are_401(served):
    issuer, port = served
    deep_object = '{"a":' * 900 + "1" + "}" * 900
    tokens = [
        f"{b64('[' * 900)}.e30.AA",
        f"{b64(deep_object)}.e30.AA",
        with_claims(issuer, claims_json(issuer, exp=str(10**400))),
        with_claims(issuer, claims_json(issuer, exp='"9999999999"')),
        with_claims(issuer, claims_json(issuer, nbf="1e400")),
    ]
    for token in tokens:
        status, challenge, problem = over_http(port, token)
        assert (status, challenge, problem["code"]) == (401, INVALID, "INVALID_TOKEN")


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(header=st.binary(max_size=200), claims=JSON)
def test_over_gunicorn_arbitrary_parts_are_401(served, header, claims):
    issuer, port = served
    for token in (
        f"{b64(header)}.{b64(json.dumps(claims))}.AA",
        signed(issuer, header, json.dumps(claims)),
    ):
        status, challenge, problem = over_http(port, token)
        assert (status, challenge, problem["code"]) == (401, INVALID, "INVALID_TOKEN")
