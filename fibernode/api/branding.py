"""Branding files (``/branding/…``) and the superadmin's settings endpoints.

``GET /branding/{filename}`` serves the logo pipeline's content-hashed files from
``uploads_dir/branding`` (see :mod:`fibernode.services.branding`): a strict name
pattern, immutable caching, ``nosniff``, and a locked-down CSP for SVG.
``GET /branding/current/{kind}`` is a stable, uncached redirect to the current
favicon / app icon, so the page's ``<link rel=icon>`` follows the setting without a
rebuild. ``/api/settings`` (read, batch update, logo upload and reset) is for the
superadmin only; everything goes through the same services as the settings page.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from fibernode.api.deps import request_actor
from fibernode.services import branding, settings
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import NotFound, ValidationFailed

router = APIRouter(tags=["settings"])

IMMUTABLE = "public, max-age=31536000, immutable"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
CURRENT = {
    "favicon": "favicon_url",
    "apple-touch-icon": "apple_touch_icon_url",
    "icon-192": "icon_192_url",
    "icon-512": "icon_512_url",
    "icon-maskable": "icon_maskable_url",
    "logo": "logo_url",
    "splash-logo": "splash_logo_url",
}


def superadmin_actor(actor: Annotated[Actor, Depends(request_actor)]) -> Actor:
    """The logged-in superadmin: 401 anonymous, 403 mitra, before any body check."""
    require_superadmin(actor)
    return actor


AdminDep = Annotated[Actor, Depends(superadmin_actor)]


class SettingsOut(BaseModel):
    """Every setting's current value (defaults for keys never stored)."""

    values: dict[str, str]
    editable: list[str] = Field(description="Keys PATCH /api/settings accepts")


class SettingsUpdateOut(BaseModel):
    """What a batch update changed, and the values afterwards."""

    changes: dict[str, dict]
    values: dict[str, str]


class LogoUploadOut(BaseModel):
    """The files an upload produced (setting key → URL) and what changed."""

    target: str
    kind: str
    width: int
    height: int
    urls: dict[str, str]
    changes: dict[str, dict]


class LogoResetIn(BaseModel):
    """Which logo goes back to the default."""

    target: Literal["logo", "splash"] = "logo"


def _editable() -> list[str]:
    return [k for k in settings.DEFAULTS if k not in settings.SYSTEM_KEYS]


@router.get("/branding/current/{kind}", include_in_schema=False)
def current_branding_file(kind: str) -> Response:
    """Redirect to the file a branding setting points at now (never cached)."""
    key = CURRENT.get(kind)
    if key is None:
        raise NotFound()
    b = settings.get_branding(Actor.anonymous())
    url = getattr(b, key)
    if not url.startswith("/") or url.startswith("//"):
        url = settings.DEFAULT_ICONS.get(key, settings.DEFAULT_LOGO)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-cache"})


@router.get("/branding/{filename}", include_in_schema=False)
def branding_file(filename: str) -> Response:
    """A file of the logo pipeline (content-hashed name, cached for a year)."""
    path = branding.branding_file(filename)
    if path is None:
        raise NotFound("File tidak ditemukan.")
    media = branding.media_type(filename)
    headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    if media == "image/svg+xml":
        headers["Content-Security-Policy"] = SVG_CSP
    return FileResponse(path, media_type=media, headers=headers)


@router.get("/api/settings", response_model=SettingsOut)
def read_settings(actor: AdminDep) -> SettingsOut:
    """All settings (superadmin only)."""
    return SettingsOut(values=settings.get_values(), editable=_editable())


@router.patch("/api/settings", response_model=SettingsUpdateOut)
def patch_settings(actor: AdminDep,
                   values: dict[str, str | bool | None]) -> SettingsUpdateOut:
    """Change several settings at once (audited); unknown or system keys give 422."""
    if not values:
        raise ValidationFailed({"values": "Tidak ada pengaturan yang dikirim."})
    changes = settings.update_settings(actor, {k: ("" if v is None else v)
                                               for k, v in values.items()})
    return SettingsUpdateOut(changes=changes, values=settings.get_values())


@router.post("/api/settings/upload-logo", response_model=LogoUploadOut)
async def upload_logo(actor: AdminDep, file: Annotated[UploadFile, File()],
                      target: Annotated[Literal["logo", "splash"], Form()] = "logo",
                      ) -> LogoUploadOut:
    """Upload the logo (header, receipts, icons) or the splash logo (multipart ``file``)."""
    # One byte past the limit, so an oversized file is refused rather than truncated.
    data = await file.read(branding.MAX_BYTES + 1)
    # Decoding and drawing take seconds: off the event loop, or every user waits.
    result = await run_in_threadpool(branding.upload_logo, actor, data, file.filename or "",
                                     target=target)
    return LogoUploadOut(target=result.target, kind=result.kind, width=result.width,
                         height=result.height, urls=result.urls, changes=result.changes)


@router.post("/api/settings/reset-logo", response_model=SettingsUpdateOut)
def reset_logo(actor: AdminDep, body: LogoResetIn) -> SettingsUpdateOut:
    """Back to the shipped logo and icons (``logo``) or splash = logo (``splash``)."""
    changes = branding.reset_logo(actor, body.target)
    return SettingsUpdateOut(changes=changes, values=settings.get_values())
