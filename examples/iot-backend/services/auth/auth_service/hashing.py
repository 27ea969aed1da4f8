"""Password and token hashing: mosquitto's `$7$` PBKDF2-SHA512 format and SHA-256 for API tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# mosquitto_passwd's default. Device passwords are random 192-bit tokens, so a slow hash adds
# no protection against guessing; a cheap one keeps the broker's per-CONNECT cost tiny.
PBKDF2_ITERATIONS = 101


def new_device_password() -> str:
    """Return a fresh random device password (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Return the hash line mosquitto's password_file accepts: `$7$iter$salt$digest` (base64)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_verify(password: str, hashed: str) -> bool:
    """Check a password against a `$7$` hash, in constant time."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt = base64.b64decode(parts[3])
    return hmac.compare_digest(mosquitto_hash(password, salt, int(parts[2])), hashed)


def new_api_token() -> str:
    """Return a fresh operator API token."""
    return "mco_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Return the stored form of an API token (high-entropy tokens need no salt or stretching)."""
    return hashlib.sha256(token.encode()).hexdigest()
