"""Password hashing with argon2id (argon2-cffi, RFC 9106 parameters); never logged.

Hashing costs tens of milliseconds of CPU and 64 MiB on purpose, so the async routes run
it in a thread (``asyncio.to_thread``) rather than on the event loop.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gis_service.errors import InvalidRequest

HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
MIN_PASSWORD_LENGTH = 12
_DUMMY_HASH = HASHER.hash("not a password of any account")


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt and parameters included) to store."""
    check_password_strength(password)
    return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether the password matches; an unknown account (``None``) costs the same time and fails."""
    try:
        return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a hash was made with weaker parameters than today's (re-hashed at the next sign-in)."""
    return HASHER.check_needs_rehash(stored_hash)
