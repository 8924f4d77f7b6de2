r"""Decide when two spellings are one email address: the key that uniqueness compares.

The local part is NFKC-normalised and case-folded (Unicode default case folding, locale-free:
`ß` folds to `ss`, final `ς` to `σ`, `ﬁ` to `fi`). The dotless `ı` and the dotted `İ` are
letters of their own there, so `ıvan` and `Ivan` are two addresses (only a Turkish locale
would pair them, and a key must not depend on a locale). The domain is mapped with IDNA
(UTS 46, non-transitional, as browsers and registries now do) to its ASCII form: `bücher.de`
and `xn--bcher-kva.de` are one domain, while `straße.de` and `strasse.de` are two, as DNS
knows them.

A quoted local part (RFC 5321's Quoted-string) whose text needs no quotes is the same mailbox
as that text unquoted: `"ada"@x.io` and `"a\da"@x.io` are `ada@x.io`. One that needs them
(`"a@b"@x.io`) keeps them, its quoted pairs written the one shortest way. (The API refuses a
bare space inside the quotes before it gets here: see docs/API.md, "The same email".)
"""

# ruff: noqa: RUF002  (the docstring names look-alike letters on purpose)

from __future__ import annotations

import re
import unicodedata

import idna

__all__ = ["UnusableDomain", "email_key"]

# RFC 5321's Dot-string, widened to UTF-8 characters by RFC 6531: what needs no quotes.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_STRING = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


class UnusableDomain(ValueError):
    """The address's domain is not a name IDNA can map to ASCII."""


def email_key(address: str) -> str:
    """Return the key two spellings of one address share; raise ValueError if it has none."""
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        raise ValueError("Not an address: it needs a local part, an @ and a domain.")
    return f"{_fold(_unquoted(local))}@{_ascii(domain)}"


def _unquoted(local: str) -> str:
    """Write a quoted local part without its quotes when its text needs none."""
    if len(local) < 2 or not (local.startswith('"') and local.endswith('"')):
        return local
    text = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    if _DOT_STRING.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
