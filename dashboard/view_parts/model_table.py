"""The Models page's registry table: a Dash AG Grid (sorting, a filter under every header, a quick
search box, Name pinned left, one row selected at a time) whose rows a pure function builds.

Accuracy and top-5 are fractions in the rows and shown as percentages by ``repscopePercent`` in
``assets/grid.js`` (``dashAgGridFunctions``): dash-ag-grid reads ``{"function": ...}`` with its own
parser, never ``eval`` or ``new Function``, so the page's CSP (no ``unsafe-eval``) lets it run; the
theme is AG Grid's own (its theming API injects the CSS; nothing from a CDN).
"""
from __future__ import annotations

from collections import defaultdict

import dash_mantine_components as dmc
from dash_ag_grid import AgGrid

_PERCENT = ("accuracy", "top5")


def is_editable(model) -> bool:
    """Whether a user may rename or delete ``model`` (a ModelInfo): every one but the zoo's."""
    return model.source != "zoo"


def table_rows(models) -> list[dict]:
    """One row per model: accuracy and top-5 as fractions in [0, 1] (None: n/a), tags as k=v and
    the other names of the same weights (``aliases``)."""
    names = defaultdict(list)
    for m in models:
        names[m.key].append(m.name)
    return [{"name": m.name, "architecture": m.architecture, "source": m.source,
             "accuracy": m.accuracy, "top5": m.top5,
             "aliases": ", ".join(n for n in names[m.key] if n != m.name),
             "tags": ", ".join(f"{k}={v}" for k, v in sorted(m.tags.items()))} for m in models]


def _percent_column(field: str, header: str, counted: str) -> dict:
    return {"field": field, "headerName": header, "filter": "agNumberColumnFilter", "type": "rightAligned",
            "headerTooltip": f"{header}: the share of the images of the model's stimulus set {counted} "
                             "(n/a: no class labels or no classifier output)",
            "valueFormatter": {"function": "repscopePercent(params.value)"},
            # filters compare percentages, as shown (the rows hold fractions)
            "filterValueGetter": {"function": f"repscopeHundred(params.data.{field})"}, "width": 150}


COLUMN_DEFS = [
    {"field": "name", "headerName": "Name", "pinned": "left", "width": 200},
    {"field": "architecture", "headerName": "Architecture", "width": 170},
    {"field": "source", "headerName": "Source", "width": 120},
    _percent_column("accuracy", "Top-1 accuracy", "whose highest output is the true class"),
    _percent_column("top5", "Top-5 accuracy", "whose true class is among the 5 highest outputs"),
    {"field": "aliases", "headerName": "Also known as", "width": 170},
    {"field": "tags", "headerName": "Tags", "flex": 1, "minWidth": 260, "tooltipField": "tags"},  # long: whole on hover
]


def model_grid(grid_id: str, models) -> dmc.Box:
    """The quick search box (``<grid_id>-search``) over the grid ``grid_id`` of ``models``."""
    return dmc.Box([
        dmc.TextInput(id=f"{grid_id}-search", label="Search every column", placeholder="name, architecture, tag ...",
                      inputProps={"type": "search"}, size="xs", maw=360, className="control"),
        AgGrid(id=grid_id, columnDefs=COLUMN_DEFS, rowData=table_rows(models), getRowId="params.data.name",
               defaultColDef={"sortable": True, "filter": "agTextColumnFilter", "floatingFilter": True,
                              "resizable": True},
               dashGridOptions={"rowSelection": {"mode": "singleRow", "enableClickSelection": True},
                                "selectionColumnDef": {"pinned": "left"}, "tooltipShowDelay": 300,
                                "quickFilterText": "", "animateRows": False,
                                "pagination": True, "paginationPageSize": 25,
                                "paginationPageSizeSelector": [25, 50, 100, 200], "domLayout": "autoHeight"},
               style={"width": "100%"}),
    ])
