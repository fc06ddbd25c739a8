"""GET /ui: the web console, a static page and its JavaScript modules shipped inside the package.

No token is needed for the page itself (it holds no data): its login form takes the API token,
keeps it in sessionStorage and sends it as a bearer header to the JSON endpoints. Every response
carries a strict Content-Security-Policy: scripts and styles only from this origin, no inline
script, no eval, connections only to this origin, no framing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(tags=["console"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static" / "ui"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


def _asset(relative: str) -> FileResponse:
    path = (STATIC / relative).resolve()
    if STATIC not in path.parents or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise HTTPException(status_code=404, detail="no such console asset")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("/ui")
def page() -> FileResponse:
    return _asset("index.html")


@router.get("/ui/")
def page_slash() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=308)


@router.get("/ui/{asset:path}")
def asset(asset: str) -> FileResponse:
    return _asset(asset)
