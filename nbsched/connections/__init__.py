"""Outgoing connections a service reaches by name: ``self.out.plain_http``, ``self.email.smtp``, ``self.kvdb``.

One module per concept: ``definitions`` (validating and listing what the runner stores),
``secrets`` (``env:VAR`` values, finding and masking secrets), ``rest``, ``smtp`` (with
``SMTPMessage``) and ``kvdb`` (the live connections a worker uses; ``prefixed`` puts the kvdb's key
prefix before every key), ``registry`` (a worker's connections by name) and ``checks`` (testing a
connection). Below, the names other parts use.
"""

from .checks import check
from .definitions import definition, public_record
from .registry import Connections
from .secrets import mask, masked_url, secrets_of
from .smtp import SMTPFailed, SMTPMessage, addresses

__all__ = [
    "Connections",
    "SMTPFailed",
    "SMTPMessage",
    "addresses",
    "check",
    "definition",
    "mask",
    "masked_url",
    "public_record",
    "secrets_of",
]
