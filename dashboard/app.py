"""The Dash application: page frame, navigation between views, and the health route."""
from __future__ import annotations

import secrets

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html
from dash import _callback as dash_declarations
from flask import jsonify, request

from dashboard import selection as selection_panel
from dashboard import url_codec
from dashboard.request_checks import check_requests
from dashboard.security import TRUSTED, guard, require_secret_key
from dashboard.uploads import register_uploads
from dashboard.widgets import notice
from dashboard.views import (confusion, curves, input_rdm, jobs, layer_grid, measures, model_space, models,
                             reference, shared_space, training)

VIEWS = [model_space, input_rdm, layer_grid, confusion, curves, reference, training, shared_space, models, jobs,
         measures]


# Dash hands what ``dash.callback`` and ``clientside_callback`` declared (every view's callbacks)
# to the first app it sets up, and forgets it: a second app made in the same process (tests make
# several) would answer none of the views' callbacks. Keep the declarations as the views made them
# and give each app its own.
_DECLARED = (dict(dash_declarations.GLOBAL_CALLBACK_MAP), list(dash_declarations.GLOBAL_CALLBACK_LIST),
             list(dash_declarations.GLOBAL_INLINE_SCRIPTS))


def _declare_view_callbacks() -> None:
    callback_map, callback_list, inline_scripts = _DECLARED
    dash_declarations.GLOBAL_CALLBACK_MAP.update(callback_map)
    dash_declarations.GLOBAL_CALLBACK_LIST[:] = callback_list
    dash_declarations.GLOBAL_INLINE_SCRIPTS[:] = inline_scripts


def _frame() -> dmc.MantineProvider:
    """Mantine's provider around an app shell: the header with the navigation, then the selection
    panel beside the page (above it on a narrow window)."""
    nav = [dmc.Anchor(view.TITLE, href=dash.get_relative_path(view.PATH), className="nav-link", c="gray.3",
                      underline="hover", size="sm", style={"whiteSpace": "nowrap"}) for view in VIEWS]
    return dmc.MantineProvider(dmc.AppShell(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dmc.AppShellHeader(
                dmc.Group([dmc.Title("RepScope", order=1, size="h3", c="white"),
                           html.Nav(dmc.Group(nav, gap="md", wrap="nowrap"), style={"overflowX": "auto"})],
                          h="100%", px="md", gap="xl", wrap="nowrap"),
                bg="dark.7", className="header"),
            dmc.AppShellMain(dmc.Flex(
                [selection_panel.panel(),
                 dmc.Box([html.Div(id="link-note", role="status"), html.Div(id="page")], flex=1, miw=0,
                         className="page")],
                direction={"base": "column", "sm": "row"}, align={"base": "stretch", "sm": "flex-start"},
                gap={"base": 0, "sm": "md"}, px="md", className="shell")),
        ],
        header={"height": 48}, bg="gray.0"))


def create_app() -> dash.Dash:
    """A Dash app with every view registered; ``app.server`` is the Flask WSGI app."""
    from compute.settings import get_settings

    settings = get_settings()
    prefix = settings.url_prefix
    _declare_view_callbacks()
    app = dash.Dash(
        __name__,
        title="RepScope",
        routes_pathname_prefix=prefix,
        requests_pathname_prefix=prefix,
        assets_folder=str(_assets_folder()),
        suppress_callback_exceptions=True,
    )
    app.layout = _frame
    app.server.secret_key = require_secret_key(settings) or secrets.token_hex(32)
    register_uploads(app.server, prefix)

    @app.callback(Output("page", "children"), Output("link-note", "children"), Input("url", "pathname"),
                  Input("selection", "data"), State("url", "search"))
    def render_page(pathname, selection, search):
        """The view at ``pathname``, drawn again whenever the selection in the left panel changes
        (if it reads the selection), and the note on what its link asked for that the page ignored
        (kept while the selection changes: the view rewrites the link without it)."""
        view = view_at(pathname)
        if view is None:
            return (html.Div([html.H2("Page not found"),
                              dcc.Link("Back to the start", href=dash.get_relative_path("/"))]), None)
        if dash.ctx.triggered_id == "selection" and not view.SELECTION:
            return dash.no_update, dash.no_update
        page, ignored = link_page(view, search, selection)
        if not ignored and dash.ctx.triggered_id == "selection":
            return page, dash.no_update
        return page, link_note(ignored)

    @app.callback(*selection_panel.visibility_outputs(), Input("url", "pathname"))
    def show_selection(pathname):
        """The selection panel with the parts the page's view reads (none: no panel)."""
        view = view_at(pathname)
        return selection_panel.hidden_parts(view.SELECTION if view is not None else ())

    @app.server.route(f"{prefix}health")
    def health():
        """Public when auth is on, so it names the backend and its trouble only to a trusted client."""
        from dashboard import services

        trusted = request.environ.get(TRUSTED, False)
        try:
            backend = services.backend().name
        except RuntimeError as error:
            return jsonify(status="error", **({"message": str(error)} if trusted else {})), 503
        return jsonify(status="ok", **({"backend": backend} if trusted else {}))

    # Dash sets itself up on a worker's first request, and a second thread arriving meanwhile
    # sees it "done" and is refused the JS bundles (500, blank page) under gunicorn's gthread
    # workers: set up now, in every process, before any request.
    with app.server.app_context():
        app._setup_server()
    check_requests(app.server, app.callback_map, f"{prefix}_dash-update-component", settings.max_request_bytes)
    guard(app.server, settings, public_paths=(f"{prefix}health",), headers=security_headers(app))
    return app


def view_at(pathname: str | None):
    """The view whose page is at ``pathname`` (under the app's prefix), or None."""
    path = "/" + (dash.strip_relative_path(pathname) or "")
    return next((view for view in VIEWS if view.PATH == path), None)


def link_page(view, search: str | None, selection: dict | None) -> tuple:
    """``view``'s page for a link's ``search`` and the panel's ``selection``, and what the link
    asked for that the page ignored, as (key, value, why): a bad value in a link falls back to
    the default, and a page that cannot be drawn says why instead of raising."""
    with url_codec.noting_ignored() as ignored:
        try:
            page = view.layout(search, selection_panel.Selection.from_url_params(selection))
        except ValueError as error:
            page = html.Div([html.H2(view.TITLE), notice(str(error), "error", "status-failed")])
    return page, [*selection_panel.ignored_in_link(search), *((k, v, "not offered here") for k, v in ignored)]


def link_note(ignored: list) -> dmc.Alert | None:
    """The visible note on a link's ignored values (None when there are none)."""
    if not ignored:
        return None
    shown = "; ".join(f"{key}={value if len(value) <= 80 else value[:77] + '...'} ({why})" for key, value, why in ignored)
    return notice(f"This link asked for what this page does not have, shown with the defaults instead: {shown}.",
                  "note", className="link-note", mt="md")


def security_headers(app: dash.Dash) -> list[tuple[str, str]]:
    """What every answer carries: no MIME sniffing, no referrer beyond this site, and a CSP that
    runs only this server's scripts and Dash's inline ones (by hash) and lets no other site frame it."""
    policy = {
        "default-src": "'self'",
        "script-src": " ".join(["'self'", *dict.fromkeys(app.csp_hashes())]),
        "style-src": "'self' 'unsafe-inline'",  # Dash and Plotly set styles inline
        "img-src": "'self' data: blob:",  # stimulus thumbnails are data: URLs
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'self'",
    }
    return [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"),
            ("Content-Security-Policy", "; ".join(f"{name} {value}" for name, value in policy.items()))]


def _assets_folder():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "assets"
