"""Decide what text a name may hold, by the categories of the Unicode database.

A name shows: at least one of its characters is a letter, number, punctuation or symbol that
is drawn (not a Hangul filler, the Braille blank or the object replacement character); a
combining mark shows only on the character before it, so marks alone do not count. It holds
nothing that has no agreed meaning or that breaks the line it is shown on: no unassigned code
point (category Cn, which includes the 66 noncharacters), no private-use character (Co), no
tag character (U+E0000-U+E007F, invisible labels), no line or paragraph separator (Zl, Zp:
U+2028, U+2029), no control (Cc), no lone surrogate (Cs), no bidirectional formatting
character (they reorder the text around them). textclasses.py holds the same rules as the
character classes of the spec's pattern (scripts/unicode_classes.py writes it).
"""

from __future__ import annotations

import unicodedata

# What _printable in schemas.py reports, with its own message; refused here as well.
CONTROL_CATEGORIES = frozenset({"Cc", "Cs"})
REFUSED_CATEGORIES = frozenset({"Cn", "Co", "Zl", "Zp"})
TAGS = range(0xE0000, 0xE0080)
# Unicode's Bidi_Control characters.
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols by category that are drawn as nothing: Hangul fillers, the Braille
# blank, the object replacement character.
BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\ufffc")
# Categories whose characters show by themselves (marks show only on a base).
SHOWN = frozenset("LNPS")

NO_CONTROLS = "Must not contain control characters."
NO_BIDI = "Must not contain bidirectional formatting characters."
NO_UNDEFINED = (
    "Must not contain unassigned, private-use, noncharacter, tag or line or paragraph "
    "separator characters."
)
NEEDS_VISIBLE = "Must contain a visible character."


def name_problem(value: str) -> str | None:
    """Return why a name is refused, or None; linear in the name's length."""
    for char in value:
        category = unicodedata.category(char)
        if category in CONTROL_CATEGORIES:
            return NO_CONTROLS
        if category in REFUSED_CATEGORIES or ord(char) in TAGS:
            return NO_UNDEFINED
        if char in BIDI:
            return NO_BIDI
    if not any(shown(char) for char in value):
        return NEEDS_VISIBLE
    return None


def shown(char: str) -> bool:
    """Tell whether a character shows by itself (a mark shows only on the one before it)."""
    return unicodedata.category(char)[0] in SHOWN and char not in BLANK
