"""/docs (Swagger UI) and /redoc from files shipped in the package.

FastAPI's own pages load Swagger UI and ReDoc (and Google's fonts) from a
CDN: on a host without internet access they were blank. The bundles sit
in the console's static/vendor folder (see its README)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor"
SWAGGER_JS = f"{VENDOR}/swagger-ui-5.35.0-bundle.js"
SWAGGER_CSS = f"{VENDOR}/swagger-ui-5.35.0.css"
REDOC_JS = f"{VENDOR}/redoc-2.5.4.standalone.js"
FAVICON = "/static/favicon.svg"
# Nothing on these pages reaches past this server: ReDoc's bundle shows
# its maker's logo from a CDN, which this policy keeps from loading.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def install_docs(app: FastAPI) -> None:
    """Call with `FastAPI(docs_url=None, redoc_url=None)`."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=SWAGGER_JS,
            swagger_css_url=SWAGGER_CSS,
            swagger_favicon_url=FAVICON,
            swagger_ui_parameters={"persistAuthorization": True},
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=REDOC_JS,
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page
