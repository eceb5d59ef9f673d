"""The check code printed in the QR beside the serial (防伪校验码).

The QR carries the public verification URL with the serial and this code, never personal data. The code is an
HMAC of the serial under the console's key: a sheet whose QR was not printed by this platform (a forged serial
or a copied QR with the serial altered) fails the check before anything is looked up. HMAC-SHA256 from the
standard library; 10 base32 characters (50 bits) are plenty against guessing one serial's code online,
which the verification page's rate limit slows further."""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

LENGTH = 10


def code(key: bytes, serial: str) -> str:
    mac = hmac.new(key, f"mch-certificate:{serial}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:LENGTH]


def matches(key: bytes, serial: str, given: str) -> bool:
    return hmac.compare_digest(code(key, serial), given.strip().upper())


def verification_url(public_base: str, key: bytes, serial: str) -> str:
    """What the QR encodes: the public verification page with the serial and its check code filled in."""
    return f"{public_base.rstrip('/')}/verify?{urlencode({'serial': serial, 'c': code(key, serial)})}"
