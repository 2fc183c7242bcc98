"""NIK encryption at rest."""

from __future__ import annotations

import base64

import pytest

from fibernode.config import ConfigError, reset_settings
from fibernode.services.crypto import DecryptionError, decrypt_nik, encrypt_nik, mask_nik

NIK = "3201234567890001"


def test_round_trip_and_random_nonce():
    a, b = encrypt_nik(NIK), encrypt_nik(NIK)
    assert a != b  # a fresh nonce per value
    assert a.startswith("v1:") and b.startswith("v1:")
    assert NIK not in a
    assert decrypt_nik(a) == NIK == decrypt_nik(b)
    # URL-safe base64 of a 12-byte nonce, the 16 plaintext bytes and the 16-byte tag.
    blob = base64.urlsafe_b64decode(a[3:])
    assert len(blob) == 12 + 16 + 16
    assert len(a) <= 255


def test_tampering_is_detected():
    stored = encrypt_nik(NIK)
    blob = bytearray(base64.urlsafe_b64decode(stored[3:]))
    blob[20] ^= 0x01
    tampered = "v1:" + base64.urlsafe_b64encode(bytes(blob)).decode()
    with pytest.raises(DecryptionError) as exc:
        decrypt_nik(tampered)
    assert "NIK" in exc.value.message


@pytest.mark.parametrize("bad", ["", "3201234567890001", "v2:abcd", "v1:!!!", "v1:YWJj"])
def test_malformed_values_are_rejected(bad):
    with pytest.raises(DecryptionError):
        decrypt_nik(bad)


def test_another_key_cannot_decrypt(monkeypatch):
    stored = encrypt_nik(NIK)
    monkeypatch.setenv("ENCRYPTION_KEY", "ab" * 32)
    reset_settings()
    try:
        with pytest.raises(DecryptionError):
            decrypt_nik(stored)
        assert decrypt_nik(encrypt_nik(NIK)) == NIK
    finally:
        monkeypatch.delenv("ENCRYPTION_KEY")
        reset_settings()


def test_bad_key_is_a_config_error(monkeypatch):
    monkeypatch.setenv("ENCRYPTION_KEY", "abcd")
    reset_settings()
    try:
        with pytest.raises(ConfigError):
            encrypt_nik(NIK)
    finally:
        monkeypatch.delenv("ENCRYPTION_KEY")
        reset_settings()


def test_mask():
    assert mask_nik(NIK) == "3201********0001"
    assert mask_nik(None) == ""
    assert mask_nik("") == ""
    assert mask_nik("1234") == "****"
