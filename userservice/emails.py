"""Decide when two spellings are one email address: the key that uniqueness compares.

The local part is NFKC-normalised and case-folded (Unicode default case folding, locale-free:
`ß` folds to `ss`, final `ς` to `σ`, `ﬁ` to `fi`). The dotless `ı` and the dotted `İ` are
letters of their own there, so `ıvan` and `Ivan` are two addresses (only a Turkish locale
would pair them, and a key must not depend on a locale). The domain is mapped with IDNA
(UTS 46, non-transitional, as browsers and registries now do) to its ASCII form: `bücher.de`
and `xn--bcher-kva.de` are one domain, while `straße.de` and `strasse.de` are two, as DNS
knows them.
"""

# ruff: noqa: RUF002  (the docstring names look-alike letters on purpose)

from __future__ import annotations

import unicodedata

import idna

__all__ = ["UnusableDomain", "email_key"]


class UnusableDomain(ValueError):
    """The address's domain is not a name IDNA can map to ASCII."""


def email_key(address: str) -> str:
    """Return the key two spellings of one address share; raise ValueError if it has none."""
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        raise ValueError("Not an address: it needs a local part, an @ and a domain.")
    return f"{_fold(local)}@{_ascii(domain)}"


def _fold(local: str) -> str:
    # Case folding can undo NFKC (U+01F0 folds to j + U+030C), so normalise once more: the
    # key of a key is then the key itself.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", local).casefold())


def _ascii(domain: str) -> str:
    if domain.startswith("[") and domain.endswith("]"):
        return domain.lower()  # an address literal ([192.0.2.1], [IPv6:...]) names no domain
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii").lower()
    except UnicodeError:  # idna.IDNAError and its subclasses
        raise UnusableDomain("The domain is not a valid internationalised domain name.") from None
