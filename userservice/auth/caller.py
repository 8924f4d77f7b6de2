"""Name who a verified token speaks for; the verifier makes callers and the guard reads them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """Who a verified token speaks for: its subject, its client and the scopes it grants."""

    subject: str | None
    client: str | None
    scopes: frozenset[str]
