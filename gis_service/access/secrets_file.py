"""The key that signs access tokens: from ``ECOMAP_ACCESS__SECRET_KEY``, else a file made once.

The file lives outside the repository (default ``.data/access_secret_key``, git-ignored),
is created with mode 0600 and exclusively (workers starting together agree on one key),
and its content is never logged.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from gis_service.errors import EcoMapError
from gis_service.settings import AccessSettings

MIN_KEY_LENGTH = 32


class SecretKeyError(EcoMapError):
    """The signing key file is unreadable, too short or too open."""


def ensure_secret_key_file(path: Path) -> bool:
    """Create the key file (384 random bits, mode 0600) unless it exists; True when created.

    The key is written to a private temporary file first and linked into place, so a worker
    never reads a half-written key and two workers starting at once agree on one."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".access_secret_key.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temporary)


def signing_key(settings: AccessSettings) -> bytes:
    """The signing key the settings name (the environment first, then the file, created if absent)."""
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value()
        if len(key) < MIN_KEY_LENGTH:
            raise SecretKeyError(
                f"ECOMAP_ACCESS__SECRET_KEY is shorter than {MIN_KEY_LENGTH} characters: use a long random value,"
                " e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return key.encode()
    path = settings.secret_key_file
    ensure_secret_key_file(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretKeyError(
            f"the signing key file {path} is readable by others (mode {mode:o}): run `chmod 600 {path}`"
        )
    key = path.read_text().strip()
    if len(key) < MIN_KEY_LENGTH:
        raise SecretKeyError(
            f"the signing key in {path} is shorter than {MIN_KEY_LENGTH} characters: delete the file to make a new one"
        )
    return key.encode()
