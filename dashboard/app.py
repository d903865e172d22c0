"""The Dash application: page frame, navigation between views, and the health route."""
from __future__ import annotations

import os
import secrets

import dash
from dash import Input, Output, State, dcc, html
from flask import jsonify

from dashboard.security import require_auth
from dashboard.views import model_space

VIEWS = [model_space]


def _frame() -> html.Div:
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                [html.H1("RepScope"),
                 html.Nav([dcc.Link(view.TITLE, href=view.PATH, className="nav-link") for view in VIEWS])],
                className="header",
            ),
            html.Div(id="page"),
        ]
    )


def create_app() -> dash.Dash:
    """A Dash app with every view registered; ``app.server`` is the Flask WSGI app."""
    app = dash.Dash(
        __name__,
        title="RepScope",
        assets_folder=str(_assets_folder()),
        suppress_callback_exceptions=True,
    )
    app.layout = _frame
    app.server.secret_key = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    require_auth(app.server)

    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def render_page(pathname, search):
        for view in VIEWS:
            if pathname == view.PATH:
                return view.layout(search)
        return html.Div([html.H2("Page not found"), dcc.Link("Back to the start", href="/")])

    @app.server.route("/health")
    def health():
        from dashboard import services

        try:
            return jsonify(status="ok", backend=services.backend().name)
        except RuntimeError as error:
            return jsonify(status="error", message=str(error)), 503

    return app


def _assets_folder():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "assets"
