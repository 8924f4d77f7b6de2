"""Write userservice/textclasses.py from the Unicode database: `python scripts/unicode_classes.py`.

The spec's name pattern names, as character classes, what userservice/text.py decides by
category; computing them takes a second, so they are written once per Unicode version
(tests/test_text.py fails when Python's database and the file differ).
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from userservice import text  # noqa: E402

TARGET = ROOT / "userservice" / "textclasses.py"


def ranges(belongs: Callable[[str], bool]) -> str:
    r"""Return Python source for the code points of the BMP that belong, as a class's body.

    ECMA-262 patterns without the `u` flag (the spec's) have no escape for a character beyond
    the BMP, and the tools that read the spec refuse one written out: the classes cover the
    BMP, and text.py alone decides for the other planes.
    """
    found: list[tuple[int, int]] = []
    for code in range(0x10000):
        if belongs(chr(code)):
            if found and found[-1][1] == code - 1:
                found[-1] = (found[-1][0], code)
            else:
                found.append((code, code))
    return f'r"{_join(found, "u", 4)}"'


def _join(found: list[tuple[int, int]], kind: str, digits: int) -> str:
    def one(code: int) -> str:
        return f"\\{kind}{code:0{digits}x}"

    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in found)


def _out(char: str) -> bool:
    # Lone surrogates are left out: not every validator compiles a pattern that holds them.
    category = unicodedata.category(char)
    return category != "Cs" and text.name_problem("A" + char) is not None


def _invisible(char: str) -> bool:
    return not _out(char) and unicodedata.category(char) != "Cs" and not text.shown(char)


def source() -> str:
    """Return the module's text."""
    return (
        '"""Character classes of the name rules (text.py), for the spec\'s pattern.\n\n'
        "Written by scripts/unicode_classes.py from Unicode "
        f"{unicodedata.unidata_version}; do not edit.\n"
        '"""\n\n'
        "# ruff: noqa: E501  (one class per line)\n\n"
        f'UNIDATA_VERSION = "{unicodedata.unidata_version}"\n'
        "# What no name may hold: unassigned, private use, tags, separators, controls, bidi.\n"
        f"REFUSED = {ranges(_out)}\n"
        "# What a name may hold but does not show by itself: spaces, format characters, marks.\n"
        f"INVISIBLE = {ranges(_invisible)}\n"
    )


if __name__ == "__main__":
    TARGET.write_text(source(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
