"""NIK encryption at rest: AES-256-GCM with a random nonce per value.

Stored form: ``"v1:" + urlsafe_b64(nonce || ciphertext_with_tag)``. The version
prefix lets a later key rotation or algorithm change read old values.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fibernode.config import ConfigError, get_settings

VERSION = "v1"
NONCE_BYTES = 12  # 96-bit nonce, the size GCM is designed for
# Binds ciphertexts to their purpose so one cannot be replayed as another field.
_AAD = b"fibernode:customers.nik"


class DecryptionError(ValueError):
    """A stored value cannot be decrypted: tampered, truncated or another key."""

    def __init__(self, message: str = "Data NIK rusak atau tidak dapat dibuka dengan kunci "
                                      "enkripsi saat ini."):
        super().__init__(message)
        self.message = message


def _key() -> bytes:
    raw = get_settings().encryption_key
    try:
        key = bytes.fromhex(raw)
    except ValueError as exc:
        raise ConfigError("ENCRYPTION_KEY harus 64 karakter hex (32 byte).") from exc
    if len(key) != 32:
        raise ConfigError("ENCRYPTION_KEY harus 64 karakter hex (32 byte).")
    return key


def encrypt_nik(plain: str) -> str:
    """Encrypt a NIK for storage.

    Args:
        plain: The NIK digits.

    Returns:
        The versioned, URL-safe base64 ciphertext (different on every call).
    """
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_key()).encrypt(nonce, plain.encode("utf-8"), _AAD)
    return f"{VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt_nik(stored: str) -> str:
    """Decrypt a value written by :func:`encrypt_nik`.

    Raises:
        DecryptionError: the value is malformed, was altered, or uses another key.
    """
    version, sep, body = (stored or "").partition(":")
    if not sep or version != VERSION:
        raise DecryptionError("Format data NIK tidak dikenali.")
    try:
        blob = base64.urlsafe_b64decode(body.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise DecryptionError() from exc
    if len(blob) <= NONCE_BYTES + 16:
        raise DecryptionError()
    try:
        plain = AESGCM(_key()).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _AAD)
    except InvalidTag as exc:
        raise DecryptionError() from exc
    return plain.decode("utf-8")


def encrypt_secret(plain: str, purpose: str) -> str:
    """Encrypt another secret (e.g. a WhatsApp Cloud API token) like a NIK.

    Args:
        plain: The secret.
        purpose: What the value is (``"wa_sessions.cloud_token"``); bound into the
            ciphertext so a value cannot be replayed as another field.

    Returns:
        The versioned, URL-safe base64 ciphertext.
    """
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_key()).encrypt(nonce, plain.encode("utf-8"), _aad(purpose))
    return f"{VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt_secret(stored: str, purpose: str) -> str:
    """Decrypt a value written by :func:`encrypt_secret` for the same ``purpose``.

    Raises:
        DecryptionError: the value is malformed, was altered, or uses another key.
    """
    message = "Data rahasia tersimpan rusak atau tidak dapat dibuka dengan kunci saat ini."
    version, sep, body = (stored or "").partition(":")
    if not sep or version != VERSION:
        raise DecryptionError(message)
    try:
        blob = base64.urlsafe_b64decode(body.encode("ascii"))
        plain = AESGCM(_key()).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(purpose))
    except (binascii.Error, ValueError, UnicodeEncodeError, InvalidTag) as exc:
        raise DecryptionError(message) from exc
    return plain.decode("utf-8")


def _aad(purpose: str) -> bytes:
    return f"fibernode:{purpose}".encode()


def mask_nik(plain: str | None) -> str:
    """Hide the middle of a NIK: ``3201234567890001`` → ``3201********0001``."""
    if not plain:
        return ""
    if len(plain) <= 8:
        return "*" * len(plain)
    return plain[:4] + "*" * (len(plain) - 8) + plain[-4:]


def masked_stored_nik(stored: str | None) -> str | None:
    """The masked NIK of a stored ciphertext, for receipts (``None`` if absent or unreadable)."""
    if not stored:
        return None
    try:
        return mask_nik(decrypt_nik(stored)) or None
    except DecryptionError:
        return None
