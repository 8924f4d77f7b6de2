"""Schemathesis hooks: generate only names that the spec's pattern can describe.

The spec's name pattern is ECMA-262 without the `u` flag, as JSON Schema specifies, so it can
class characters of the Basic Multilingual Plane only: beyond it (tag characters, unassigned
planes, noncharacters such as U+1FFFF) the service refuses what no pattern can say. Those
characters are proven against the Unicode database in test_text.py instead.
"""

from __future__ import annotations

import schemathesis

LAST_BMP = 0xFFFF


@schemathesis.hook
def filter_body(context, body) -> bool:
    """Leave out bodies whose name holds a character beyond the Basic Multilingual Plane."""
    name = body.get("name") if isinstance(body, dict) else None
    return not (isinstance(name, str) and any(ord(c) > LAST_BMP for c in name))
