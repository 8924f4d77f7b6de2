"""Compact JSON text: through orjson, in a tenth of the standard encoder's time, where it can.

The text is what `json.JSONEncoder(default=str, separators=(",", ":"))` means, though orjson
spells some of it differently (UTF-8 where the standard encoder escapes it, `1e-7` for
`1e-07`). What orjson would write otherwise goes to `default` (str): datetimes, dates,
dataclasses; keys that are not strings are written as the standard encoder writes them. What
orjson cannot write at all (an integer past 64 bits, a lone surrogate, nesting past 254
levels) is written by the standard encoder (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json

import orjson

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
# One encoder for every call: json.dumps(default=...) would build a new one per call.
_standard = json.JSONEncoder(default=str, separators=(",", ":")).encode


def dumps(value: object) -> str:
    """Return `value` as compact JSON text."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return _standard(value)
