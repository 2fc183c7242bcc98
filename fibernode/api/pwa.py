"""The web app manifest, built from the branding settings at request time.

A logo upload rewrites the icon settings to new hashed ``/branding/...`` URLs,
so installed apps and install prompts pick them up without a rebuild.
"""

from __future__ import annotations

import hashlib
import json

from fastapi import APIRouter, Request, Response

from fibernode.services import settings as settings_service
from fibernode.services.context import Actor

router = APIRouter(tags=["pwa"])

MANIFEST_MEDIA_TYPE = "application/manifest+json"
SHORT_NAME_MAX = 12


def short_name(name: str) -> str:
    """A home-screen label of at most 12 characters derived from the app name.

    Whole words are kept while they fit ("FiberNode Internet" -> "FiberNode");
    a first word that is itself too long is cut.

    Args:
        name: The full app name.

    Returns:
        The short name.
    """
    name = " ".join(name.split())
    if len(name) <= SHORT_NAME_MAX:
        return name
    kept = ""
    for word in name.split(" "):
        candidate = f"{kept} {word}".strip()
        if len(candidate) > SHORT_NAME_MAX:
            break
        kept = candidate
    return kept or name[:SHORT_NAME_MAX].rstrip()


def build_manifest() -> dict:
    """The manifest as a dict, from the current branding settings.

    Returns:
        The web app manifest members.
    """
    b = settings_service.get_branding(Actor.anonymous())
    return {
        "id": "/",
        "name": b.app_name,
        "short_name": short_name(b.app_name),
        "description": b.meta_description,
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "lang": "id",
        "dir": "ltr",
        "theme_color": b.theme_color,
        "background_color": b.splash_bg_color,
        "categories": ["business", "finance", "utilities"],
        "icons": [
            {"src": b.icon_192_url, "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": b.icon_512_url, "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": b.icon_maskable_url, "sizes": "512x512", "type": "image/png",
             "purpose": "maskable"},
        ],
    }


@router.get("/manifest.webmanifest", include_in_schema=False)
def manifest(request: Request) -> Response:
    """The web app manifest (revalidated on every use: no-cache with an ETag)."""
    body = json.dumps(build_manifest(), ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=MANIFEST_MEDIA_TYPE, headers=headers)
