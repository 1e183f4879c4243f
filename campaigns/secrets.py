"""Webhook signing secrets: `whsec_` + base64 of 24 random bytes (the Standard Webhooks form),
stored encrypted with Fernet under a key derived from SECRET_KEY, so a database dump alone
does not let anyone forge our webhooks."""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

PREFIX = "whsec_"
_KEY_CONTEXT = b"pulse.webhook-secret.v1:"


def _fernet() -> Fernet:
    digest = hashlib.sha256(_KEY_CONTEXT + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(stored: str) -> str | None:
    """The clear secret, or None when it was encrypted under another SECRET_KEY."""
    try:
        return _fernet().decrypt(stored.encode()).decode()
    except (InvalidToken, ValueError):
        return None
