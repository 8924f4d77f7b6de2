"""One definition of "the same email": a catalogue of spellings, by key and through the API."""

# ruff: noqa: RUF001, RUF003  (look-alike letters are what this catalogue is about)

from __future__ import annotations

import pytest
from conftest import fresh_database, use_hybrid_table

from userservice.emails import UnusableDomain, email_key

USERS = "/api/v1/users"
# Two spellings of one address each: scripts, compatibility forms, case folding, and domains
# in Unicode, ASCII (A-label) and full-width forms.
SAME = [
    ("οδος@example.gr", "ΟΔΟΣ@example.gr"),  # final sigma
    ("straße@example.de", "STRASSE@example.de"),
    ("ﬁle@example.com", "FILE@example.com"),  # ligature
    ("ａｄａ@example.com", "ada@example.com"),  # full-width
    ("ＬＩＮ@example.com", "lin@example.com"),
    ("x@bücher.de", "x@xn--bcher-kva.de"),
    ("y@BÜCHER.DE", "y@bücher.de"),
    ("z@XN--BCHER-KVA.DE", "z@bücher.de"),
    ("ada@ｅｘａｍｐｌｅ.org", "ada@example.org"),
    ("bob@EXAMPLE.COM", "bob@example.com"),
    ("Ada.Lovelace@example.com", "ada.lovelace@example.com"),
    ("иван@example.ru", "ИВАН@example.ru"),
    ("ёлка@example.ru", "ЁЛКА@example.ru"),
    ("άννα@example.gr", "ΆΝΝΑ@example.gr"),
    ("µ@example.com", "μ@example.com"),  # micro sign, Greek mu
    ("Å@example.com", "å@example.com"),  # angstrom sign
    ("K@example.com", "k@example.com"),  # kelvin sign
    ("ⅻ@example.com", "xii@example.com"),  # roman numeral
    ("a²@example.com", "a2@example.com"),
    ("１２３@example.com", "123@example.com"),
    ("𝐚𝐝𝐚@example.net", "ada@example.net"),  # mathematical bold
    ("한@example.kr", "\u1112\u1161\u11ab@example.kr"),  # syllable, conjoining jamo
    ("ｶ@example.jp", "カ@example.jp"),  # half-width katakana
    ("ｶﾞ@example.jp", "ガ@example.jp"),
    ("GROẞ@example.de", "gross@example.de"),  # capital sharp s
    ("ſtraſſe@example.at", "strasse@example.at"),  # long s
    ("ﬀ@example.com", "ff@example.com"),
    ("ﬆ@example.com", "st@example.com"),
    ("Ǆemal@example.com", "džemal@example.com"),
    ("ǅemal@example.ba", "DŽEMAL@example.ba"),  # title case
    ("ĳs@example.nl", "IJS@example.nl"),
    ("ﬓ@example.am", "մն@example.am"),  # Armenian ligature
    ("և@example.am", "ԵՒ@example.am"),
    ("ԱՐԱ@example.am", "արա@example.am"),
    ("Ꭰ@example.com", "ꭰ@example.com"),  # Cherokee folds to upper case
    ("ᲐᲑᲒ@example.ge", "აბგ@example.ge"),  # Georgian Mtavruli
    ("𐐀@example.com", "𐐨@example.com"),  # Deseret, outside the BMP
    ("Ⰰ@example.com", "ⰰ@example.com"),  # Glagolitic
    ("Ⲁ@example.com", "ⲁ@example.com"),  # Coptic
    ("𞤀@example.com", "𞤢@example.com"),  # Adlam
    ("x@MÜNCHEN.de", "x@xn--mnchen-3ya.de"),
    ("x@ΠΑΡΆΔΕΙΓΜΑ.gr", "x@παράδειγμα.gr"),
    # A quoted local part that needs no quotes is the unquoted one (RFC 5321, section 4.1.2).
    ('"ada"@quoted.example.com', "ada@quoted.example.com"),
    ('"Ada.Lovelace"@quoted.example.org', "ada.lovelace@quoted.example.org"),
    ('"a\\da"@quoted.example.net', "ADA@quoted.example.net"),
    ('"o\'brien"@quoted.example.ie', "o'brien@quoted.example.ie"),
    ('"a\\ b"@quoted.example.fr', '"A\\ B"@quoted.example.fr'),
]
# Two addresses each, by decision: Unicode's default (locale-free) case folding keeps the
# dotless ı apart from i, and IDNA 2008 keeps ß and ς in a domain (DNS knows them apart).
DIFFERENT = [
    ("ıvan@example.com", "ivan@example.com"),
    ("ıvan@example.com", "Ivan@example.com"),
    ("x@straße.de", "x@strasse.de"),
    ("x@ς.gr", "x@σ.gr"),
    ("x@ıvan.com", "x@ivan.com"),
    ("a.da@example.com", "ada@example.com"),
    # Quotes that are needed keep the address apart from the one without the quoted space.
    ('"a\\ b"@example.com', "ab@example.com"),
    ('"a.b"@example.com', '"a..b"@example.com'),
]


@pytest.fixture
def app(module_app):
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


@pytest.fixture(params=["standard", "hybrid"])
def kind_client(request, app):
    """A client on the app with a users table of either kind."""
    if request.param == "hybrid":
        use_hybrid_table(app)
    return app.test_client()


def test_the_catalogue_holds_at_least_30_pairs():
    assert len(SAME) >= 30
    assert len({email_key(a) for a, _ in SAME}) == len(SAME)


@pytest.mark.parametrize(("first", "second"), SAME)
def test_two_spellings_of_one_address_share_a_key_and_the_key_is_its_own_key(first, second):
    assert email_key(first) == email_key(second)
    assert email_key(email_key(first)) == email_key(first)


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_addresses_kept_apart_on_purpose_have_different_keys(first, second):
    assert email_key(first) != email_key(second)


def test_the_key_folds_the_local_part_and_maps_the_domain_to_lower_case_ascii():
    assert email_key("ΟΔΟΣ.Straße@BÜCHER.DE") == "οδοσ.strasse@xn--bcher-kva.de"
    assert email_key("Ada@[IPv6:ABCD::1]") == "ada@[ipv6:abcd::1]"


@pytest.mark.parametrize("address", ["a@☃.com", "a@xn--zz.com"])
def test_a_domain_idna_refuses_has_no_key(address):
    with pytest.raises(UnusableDomain):
        email_key(address)


@pytest.mark.slow
def test_every_pair_is_one_address_on_create_update_and_filter(kind_client, make_user):
    client = kind_client
    other = make_user(client, "other@example.com", "Other")
    for first, second in SAME:
        holder = make_user(client, first)

        created = client.post(USERS, json={"email": second, "name": "Twin"})
        put = client.put(f"{USERS}/{other['id']}", json={"email": second, "name": "Other"})
        patched = client.patch(f"{USERS}/{other['id']}", json={"email": second})

        for response in (created, put, patched):
            assert (response.status_code, response.get_json()["code"]) == (409, "EMAIL_TAKEN")
        for spelling in (first, second):
            found = client.get(USERS, query_string={"email": spelling}).get_json()
            assert found == [holder], (first, second, spelling)
        assert client.delete(f"{USERS}/{holder['id']}").status_code == 204
    assert client.get(USERS).get_json() == [other]


def test_addresses_kept_apart_can_both_be_held(kind_client, make_user):
    client = kind_client
    for first, second in DIFFERENT:
        pair = [make_user(client, first), make_user(client, second)]

        for user in pair:
            assert client.get(USERS, query_string={"email": user["email"]}).get_json() == [user]
            assert client.delete(f"{USERS}/{user['id']}").status_code == 204


def test_a_bare_space_inside_quotes_is_422_and_its_escaped_form_is_one_address(client):
    refused = client.post(USERS, json={"email": '"a b"@example.com', "name": "A"})
    created = client.post(USERS, json={"email": '"a\\ b"@example.com', "name": "A"})
    taken = client.post(USERS, json={"email": '"A\\ B"@EXAMPLE.com', "name": "A"})

    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {"email": ["Not a valid email address."]}
    assert created.status_code == 201
    assert (taken.status_code, taken.get_json()["code"]) == (409, "EMAIL_TAKEN")


def test_an_address_whose_domain_has_no_key_is_422(client):
    response = client.post(USERS, json={"email": "a@☃.com", "name": "A"})

    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "email": ["The domain is not a valid internationalised domain name."]
    }


def test_filtering_by_an_address_with_no_key_finds_nobody_without_a_statement(
    client, access_log, make_user
):
    make_user(client)

    response = client.get(USERS, query_string={"email": "ada@☃.com"})

    assert (response.status_code, response.get_json()) == (200, [])
    assert access_log[-1].db_statements == 0
