"""Authentication endpoints (``/api/auth/*``): tokens, own profile, two-step login.

Login, refresh and logout follow :mod:`fibernode.services.api_tokens` (15-minute
access JWT, rotating 7-day refresh token with reuse detection). The same lockout,
audit and two-step rules as the web login apply, because both go through
``auth.authenticate``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from fibernode.api.deps import client_of, request_actor, single_change
from fibernode.models import UserRole
from fibernode.services import api_tokens, auth, two_factor, users
from fibernode.services.context import Actor, require_user

router = APIRouter(prefix="/api/auth", tags=["auth"])


def user_actor(actor: Annotated[Actor, Depends(request_actor)]) -> Actor:
    """The logged-in caller (401 otherwise)."""
    require_user(actor)
    return actor


ActorDep = Annotated[Actor, Depends(user_actor)]


def anonymous_actor(request: Request) -> Actor:
    """The caller as an anonymous actor with its address (login and refresh)."""
    ip, ua = client_of(request)
    return Actor.anonymous(ip, ua)


AnonDep = Annotated[Actor, Depends(anonymous_actor)]


class LoginIn(BaseModel):
    """Username and password, plus the code for accounts with two-step login."""

    username: str = Field(max_length=200)
    password: str = Field(max_length=500)
    otp: str | None = Field(default=None, max_length=20,
                            description="Kode authenticator 6 digit atau kode pemulihan")
    device_token: str | None = Field(
        default=None, max_length=300,
        description="Token perangkat dari login sebelumnya (atau header X-Device-Token): "
                    "perangkat ini tetap bisa login saat username dikunci")


class RefreshIn(BaseModel):
    """A refresh token from login or the previous refresh."""

    refresh_token: str = Field(max_length=200)


class LogoutIn(BaseModel):
    """Optionally the refresh token to end (default: the access token's login)."""

    refresh_token: str | None = Field(default=None, max_length=200)


class TokenOut(BaseModel):
    """A new token pair. The refresh token is shown once; store it safely."""

    model_config = ConfigDict(from_attributes=True)

    access_token: str
    refresh_token: str
    token_type: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    user_id: uuid.UUID
    role: str
    device_token: str | None = Field(
        default=None, description="Login saja: token perangkat untuk login berikutnya; "
                                  "simpan dan kirim kembali (menggantikan yang lama)")


class ProfileOut(BaseModel):
    """The caller's own account."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    name: str
    role: UserRole
    phone: str
    business_name: str
    bank_name: str
    bank_account: str
    bank_holder: str


class ProfileIn(BaseModel):
    """Own profile changes; a password change needs all three password fields."""

    name: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=30)
    bank_name: str | None = Field(default=None, max_length=100)
    bank_account: str | None = Field(default=None, max_length=50)
    bank_holder: str | None = Field(default=None, max_length=255)
    current_password: str | None = Field(default=None, max_length=500)
    new_password: str | None = Field(default=None, max_length=500)
    confirm_password: str | None = Field(default=None, max_length=500)


class RevokedOut(BaseModel):
    """How many tokens or sessions a call ended."""

    revoked: int


class TwoFactorStatusOut(BaseModel):
    """Two-step login state of the caller's account."""

    model_config = ConfigDict(from_attributes=True)

    enabled: bool
    pending: bool
    recovery_codes_left: int


class EnrolmentOut(BaseModel):
    """Secret, otpauth URI and QR code to add the account to an authenticator."""

    model_config = ConfigDict(from_attributes=True)

    secret: str
    uri: str
    qr_svg_data_uri: str


class CodeIn(BaseModel):
    """A 6-digit authenticator code (or, where accepted, a recovery code)."""

    code: str = Field(max_length=20)


class DisableIn(BaseModel):
    """Password and a code, to turn two-step login off."""

    password: str = Field(max_length=500)
    code: str = Field(default="", max_length=20)


class RecoveryCodesOut(BaseModel):
    """New one-time recovery codes, shown once."""

    recovery_codes: list[str]


@router.post("/login", response_model=TokenOut)
def login(body: LoginIn, actor: AnonDep,
          x_device_token: Annotated[str | None, Header(max_length=300)] = None) -> TokenOut:
    """Log in; 401 ``TwoFactorRequired`` asks for ``otp``, 429 after repeated failures.

    Send the ``device_token`` of the previous login (body or ``X-Device-Token``) to
    keep logging in while the username is locked for unknown devices; the response
    carries the next one.
    """
    return TokenOut.model_validate(api_tokens.login(
        actor, body.username, body.password, otp=body.otp,
        device_token=body.device_token or x_device_token))


@router.post("/refresh", response_model=TokenOut)
def refresh(body: RefreshIn, actor: AnonDep) -> TokenOut:
    """Rotate the refresh token; a reused one ends its whole login (401)."""
    return TokenOut.model_validate(api_tokens.refresh(actor, body.refresh_token))


@router.post("/logout", response_model=RevokedOut)
def logout(actor: ActorDep, body: LogoutIn | None = None) -> RevokedOut:
    """End this login (its refresh token family)."""
    return RevokedOut(revoked=api_tokens.logout(actor, body.refresh_token if body else None))


@router.get("/me", response_model=ProfileOut)
def me(actor: ActorDep) -> ProfileOut:
    """The caller's own profile."""
    return ProfileOut.model_validate(users.get_profile(actor))


@router.patch("/me", response_model=ProfileOut)
def update_me(body: ProfileIn, actor: ActorDep) -> ProfileOut:
    """Change own name, phone and bank details, or the password (one per request).

    A password change ends every web session and API login of the account,
    this one included: log in again with the new password.
    """
    fields = body.model_dump(exclude_unset=True)
    profile_keys = {"name", "phone", "bank_name", "bank_account", "bank_holder"}
    single_change(fields, {"profil": profile_keys,
                           "password": {"current_password", "new_password",
                                        "confirm_password"}})
    current = users.get_profile(actor)
    if profile_keys & fields.keys():
        merged = {k: getattr(current, k) for k in profile_keys}
        merged.update({k: v for k, v in fields.items() if k in profile_keys})
        current = users.update_profile(actor, name=merged["name"] or "",
                                       phone=merged["phone"], bank_name=merged["bank_name"],
                                       bank_account=merged["bank_account"],
                                       bank_holder=merged["bank_holder"])
    if {"current_password", "new_password", "confirm_password"} & fields.keys():
        auth.change_password(actor, body.current_password or "", body.new_password or "",
                             body.confirm_password or "")
    return ProfileOut.model_validate(current)


@router.get("/2fa", response_model=TwoFactorStatusOut, tags=["2fa"])
def two_factor_status(actor: ActorDep) -> TwoFactorStatusOut:
    """Two-step login state (superadmin accounts)."""
    return TwoFactorStatusOut.model_validate(two_factor.status(actor))


@router.post("/2fa/enroll", response_model=EnrolmentOut, tags=["2fa"])
def two_factor_enroll(actor: ActorDep) -> EnrolmentOut:
    """Start adding an authenticator app; confirm with a first code."""
    return EnrolmentOut.model_validate(two_factor.begin_enrolment(actor))


@router.post("/2fa/confirm", response_model=RecoveryCodesOut, tags=["2fa"])
def two_factor_confirm(body: CodeIn, actor: ActorDep) -> RecoveryCodesOut:
    """Turn two-step login on; returns the recovery codes once."""
    return RecoveryCodesOut(recovery_codes=two_factor.confirm_enrolment(actor, body.code))


@router.post("/2fa/recovery-codes", response_model=RecoveryCodesOut, tags=["2fa"])
def two_factor_new_codes(body: CodeIn, actor: ActorDep) -> RecoveryCodesOut:
    """Replace the recovery codes (needs a current code)."""
    return RecoveryCodesOut(recovery_codes=two_factor.regenerate_recovery_codes(actor,
                                                                                body.code))


@router.post("/2fa/disable", response_model=TwoFactorStatusOut, tags=["2fa"])
def two_factor_disable(body: DisableIn, actor: ActorDep) -> TwoFactorStatusOut:
    """Turn two-step login off (password and a code)."""
    two_factor.disable(actor, body.password, body.code)
    return TwoFactorStatusOut.model_validate(two_factor.status(actor))
