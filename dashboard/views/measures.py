"""Measures: every method the dashboard and the API compute, explained on one page.

One table, a group of rows per family (input RDMs, RDM comparisons, direct measures of two
layers, embeddings), each row read from compute's registries through
:func:`dashboard.view_parts.choices.facts`: the name the URL and the API use, its name in words,
which way is alike, its range, what leaves it unchanged, its definition and its source. Nothing
is computed here.
"""
from __future__ import annotations

import dash_mantine_components as dmc
from dash import html

from dashboard.selection import Selection
from dashboard.view_parts.choices import FAMILIES, facts

PATH = "/measures"
TITLE = "Measures"
SELECTION = ()  # the parts of the selection panel it reads (none: no panel)
_ID = "measures"

COLUMNS = (("name", "name (URL, API)"), ("title", "in words"), ("direction", "direction"), ("range", "range"),
           ("invariances", "unchanged by"), ("definition", "definition"), ("citation", "source"))


def rows() -> list[tuple[str, str, list[dict]]]:
    """(family, the family in words, the facts of each of its methods in the registry's order)."""
    return [(family, words, [facts(family, name) for name in table]) for family, (table, words) in FAMILIES.items()]


def table() -> html.Table:
    """The one table: a header row per family, then a row per method."""
    head = html.Thead(html.Tr([html.Th(words) for _, words in COLUMNS]))
    groups = [html.Tbody([html.Tr(html.Th(words, colSpan=len(COLUMNS), className="measures-family"),
                                  id=f"{_ID}-{family}"),
                          *(html.Tr([html.Td(html.Code(said[key]) if key == "name" else said[key]) for key, _ in COLUMNS],
                                    className="measures-row") for said in methods)])
              for family, words, methods in rows()]
    return html.Table([head, *groups], id=f"{_ID}-table", className="jobs-table measures-table")


def layout(search: str | None = None, selection: Selection = Selection()) -> dmc.Box:
    return dmc.Box(
        [html.H2(TITLE),
         html.P("Every measure the pages offer, with what its numbers mean. A page's dropdown shows the name in "
                "words (its definition on hover, and on the card of the ⓘ beside its label) and the chosen one's "
                "facts below it; links and the Python API use the name in the first column.", className="hint"),
         table()],
        className="main", py="md",
    )
