"""The Models page's grid: rows built from the registry, the choice a selected row makes, and the
formatters its columns name (defined in assets/grid.js, never strings AG Grid would evaluate)."""
import re
from pathlib import Path

from dash import no_update

from compute.sources.models import ModelInfo
from dashboard.view_parts.model_table import COLUMN_DEFS, table_rows


def _model(name, key, source="zoo", accuracy=None, top5=None, tags=None):
    return ModelInfo(name=name, key=key, architecture="cnn", source=source, tags=tags or {},
                     accuracy=accuracy, top5=top5, num_classes=10)


MODELS = [_model("cnn-a", "k1", accuracy=0.5, top5=0.9, tags={"width": 4, "seed": 0}),
          _model("mine", "k1", source="upload", accuracy=0.25),
          _model("acts", "k2", source="activations")]


def test_rows_hold_fractions_tags_and_aliases():
    rows = table_rows(MODELS)
    assert [r["name"] for r in rows] == ["cnn-a", "mine", "acts"]
    assert rows[0] == {"name": "cnn-a", "architecture": "cnn", "source": "zoo", "accuracy": 0.5, "top5": 0.9,
                       "aliases": "mine", "tags": "seed=0, width=4"}
    assert (rows[1]["aliases"], rows[1]["top5"]) == ("cnn-a", None)
    assert (rows[2]["aliases"], rows[2]["accuracy"]) == ("", None)
    assert table_rows([]) == []


def test_a_selected_row_chooses_an_editable_model_and_links_any(monkeypatch):
    from dashboard.views import models as view
    from dashboard.views.models import chosen_row

    monkeypatch.setattr(view.dash, "get_relative_path", lambda path: path)  # no app: the root's paths

    name, line = chosen_row([{"name": "mine", "source": "zoo"}], MODELS)  # the registry's word, not the client's
    assert name == "mine" and "cannot be" not in str(line) and "find=mine" in str(line)
    name, line = chosen_row([{"name": "cnn-a", "source": "upload"}], MODELS)
    assert name is None and "cannot be renamed or deleted" in str(line)
    assert chosen_row([], MODELS) == (no_update, "")
    assert chosen_row([{"name": "../etc"}], MODELS) == (no_update, "")  # not in the registry: nothing


def test_every_formatter_a_column_names_is_defined_in_the_assets():
    script = (Path(__file__).resolve().parents[2] / "assets" / "grid.js").read_text()
    named = {re.match(r"(\w+)\(", value["function"]).group(1)
             for column in COLUMN_DEFS for value in column.values() if isinstance(value, dict)}
    assert named == {"repscopePercent", "repscopeHundred"}
    for function in named:
        assert f"functions.{function} = function" in script
    # string formatters would be compiled by AG Grid with new Function, which the page's CSP forbids
    assert not any(isinstance(column.get("valueFormatter"), str) for column in COLUMN_DEFS)
