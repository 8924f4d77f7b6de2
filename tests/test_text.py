"""The name rules, checked against every code point of the Unicode database Python ships."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

import pytest
import unicode_classes

from userservice import text, textclasses
from userservice.schemas import NAME_PATTERN, UserInputSchema

ROOT = Path(__file__).resolve().parents[1]

EVERY_CODE_POINT = [chr(c) for c in range(sys.maxunicode + 1)]


def refusal(char: str) -> str | None:
    """What the rules say of this character wherever it stands, from its category alone."""
    category = unicodedata.category(char)
    if category in ("Cc", "Cs"):
        return text.NO_CONTROLS
    if category in ("Cn", "Co", "Zl", "Zp") or 0xE0000 <= ord(char) <= 0xE007F:
        return text.NO_UNDEFINED
    if unicodedata.bidirectional(char) in ("LRE", "RLE", "LRO", "RLO", "PDF") or char in (
        "\u061c\u200e\u200f\u2066\u2067\u2068\u2069"
    ):
        return text.NO_BIDI
    return None


def test_after_a_letter_a_character_is_refused_exactly_when_its_category_says_so():
    wrong = [
        (hex(ord(c)), text.name_problem("A" + c), refusal(c))
        for c in EVERY_CODE_POINT
        if text.name_problem("A" + c) != refusal(c)
    ]
    assert wrong == []


def test_alone_a_character_is_a_name_only_if_it_is_a_drawn_letter_number_mark_or_symbol():
    wrong = []
    for char in EVERY_CODE_POINT:
        shown = unicodedata.category(char)[0] in "LNPS" and char not in text.BLANK
        expected = refusal(char) or (None if shown else text.NEEDS_VISIBLE)
        if text.name_problem(char) != expected:
            wrong.append((hex(ord(char)), text.name_problem(char), expected))
    assert wrong == []


def test_marks_alone_are_no_name_and_beside_a_visible_character_are_kept():
    marks = [c for c in EVERY_CODE_POINT if unicodedata.category(c) in ("Mn", "Mc", "Me")]
    assert len(marks) > 2000
    for mark in marks:
        assert text.name_problem(mark * 3) == text.NEEDS_VISIBLE, hex(ord(mark))
        assert text.name_problem(" " + mark + " ") == text.NEEDS_VISIBLE, hex(ord(mark))
        assert text.name_problem("A" + mark + mark) is None, hex(ord(mark))


def test_the_spec_pattern_says_what_the_rules_say_for_every_code_point_of_the_bmp():
    pattern = re.compile(NAME_PATTERN)
    wrong = []
    for char in EVERY_CODE_POINT[:0x10000]:
        if unicodedata.category(char) == "Cs":
            continue  # a lone surrogate cannot be written in every validator's pattern
        for name in (char, "A" + char, char + "A" + char):
            if bool(pattern.fullmatch(name)) != (text.name_problem(name) is None):
                wrong.append((hex(ord(char)), name.index(char)))
    assert wrong == []


def test_the_character_classes_are_those_of_this_pythons_unicode_database():
    assert unicodedata.unidata_version == textclasses.UNIDATA_VERSION
    assert (ROOT / "userservice" / "textclasses.py").read_text() == unicode_classes.source()


# The probe's cases: each character that showed as nothing, or broke a line, was accepted.
PROBE = {
    "\U000e0001": text.NO_UNDEFINED,  # a tag character
    "A\U000e0041": text.NO_UNDEFINED,
    "\ufe0f": text.NEEDS_VISIBLE,  # a variation selector
    "\U000e0100": text.NEEDS_VISIBLE,
    "\u17b4": text.NEEDS_VISIBLE,
    "\U0001bca0": text.NEEDS_VISIBLE,
    "\ufffc": text.NEEDS_VISIBLE,
    "\uffff": text.NO_UNDEFINED,  # noncharacters
    "A\ufdd0": text.NO_UNDEFINED,
    "A\U0010ffff": text.NO_UNDEFINED,
    "\u0378": text.NO_UNDEFINED,  # unassigned
    "A\ue000": text.NO_UNDEFINED,  # private use
    "Ada\u2028Lovelace": text.NO_UNDEFINED,
    "Ada\u2029": text.NO_UNDEFINED,
    "\u0301": text.NEEDS_VISIBLE,  # a combining mark with no base
    " \u0301\u0302 ": text.NEEDS_VISIBLE,
}


@pytest.mark.parametrize("name", PROBE)
def test_the_schema_refuses_the_probes_names_with_their_reason(name):
    errors = UserInputSchema().validate({"email": "ada@example.com", "name": name})
    assert errors == {"name": [PROBE[name]]}


@pytest.mark.parametrize(
    "name",
    ["Ada\u0301", "\u2764\ufe0f", "1\ufe0f\u20e3", "\U0001f44d\U0001f3fd", "क्\u200dष", "\uff21"],
)
def test_marks_on_a_base_emoji_sequences_and_joiners_are_names(name):
    assert UserInputSchema().validate({"email": "ada@example.com", "name": name}) == {}


@pytest.mark.parametrize("size", [256, 10_000, 900_000])
def test_a_field_over_its_length_is_refused_by_its_length_alone(size):
    """The length is the only error: no later check of the field ran to report another."""
    errors = UserInputSchema().validate({"email": "\x00" * size + "@x", "name": "\u0378" * size})
    assert errors == {
        "email": ["Longer than maximum length 255."],
        "name": ["Length must be between 1 and 255."],
    }
