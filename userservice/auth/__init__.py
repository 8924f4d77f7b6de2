"""The auth layer: bearer tokens (RFC 6750) checked against an issuer's keys, or the dev key.

`init_app` builds the verifier from the settings (or warns that the service is open),
`plugins` documents the scheme in the spec, `authenticate` and `audit` guard the users
blueprint, `caller_fields` names the verified caller for logs and metrics, and
`dev_token_command` prints a development token. The verifier itself (PyJWT, cryptography)
is imported only when tokens are required.
"""

from __future__ import annotations

from .bearer import WRITE_METHODS, audit, authenticate, caller_fields
from .caller import Caller
from .setup import EXTENSION_KEY, dev_token_command, init_app
from .spec import plugins

__all__ = [
    "EXTENSION_KEY",
    "WRITE_METHODS",
    "Caller",
    "audit",
    "authenticate",
    "caller_fields",
    "dev_token_command",
    "init_app",
    "plugins",
]
