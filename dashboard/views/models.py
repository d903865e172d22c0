"""Models: the registry as a grid (``view_parts/model_table.py``), and uploads of checkpoints, ONNX
models, activations and stimulus sets.

Files go to the chunked upload route (``assets/upload.js``, never ``dcc.Upload``); the server
checks them in a limited worker process, and the grid lists a new model once it is registered,
with links that open it in the model MDS and the layer grid (as does a row selected in the grid).
Uploaded and registered models can be renamed or deleted (the zoo's cannot): the client names a
model of the registry, never a file.
"""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import dash
import dash_mantine_components as dmc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from dashboard import services, url_codec
from dashboard.selection import REGISTRY_CHANGED, Selection
from dashboard.view_parts.model_table import is_editable, model_grid, table_rows
from dashboard.view_parts.upload_form import file_form, form_section, upload_message
from dashboard.widgets import button, dropdown, notice, page_frame

PATH = "/models"
TITLE = "Models"
SELECTION = ()  # the parts of the selection panel it reads (none: no panel)
_ID = "models"

def _architecture_options() -> list[str]:
    from compute.sources.uploads import architecture_choices

    return architecture_choices()


def _stimulus_options() -> list[str]:
    from compute.sources.uploads import uploaded_stimulus_sets

    return ["digits", *uploaded_stimulus_sets()]


# Where a new model opens (page path, the URL key that picks it there): the model MDS highlights
# it, the layer grid shows it as model A.
OPEN_IN = (("model MDS", "/", "find"), ("layer grid", "/layers", "a"))
MAX_KEYS_SHOWN = 400  # of an architecture's expected keys (a ViT has ~200, a ResNet-152 ~930)


def open_links(name: str, selection: dict | None = None) -> list:
    """Links that open the model ``name`` in the views of :data:`OPEN_IN`, in the panel's
    ``selection`` (the model added to it when it names models)."""
    chosen = Selection.from_url_params(selection)
    if chosen.names and name not in chosen.names:
        chosen = replace(chosen, names=(*chosen.names, name))
    return [html.Span([" ", dcc.Link(f"open in {words}", className=f"open-link open-{key}",
                                     href=dash.get_relative_path(path) + url_codec.join(chosen.search(),
                                                                                        "?" + urlencode({key: name})))])
            for words, path, key in OPEN_IN]


def links_in(selection: dict | None):
    """``open_links`` in the panel's ``selection``, as :func:`upload_message` takes them."""
    return lambda name: open_links(name, selection)


def editable(models) -> list[str]:
    """Names of the models a user may rename or delete: every one but the zoo's."""
    return [m.name for m in models if is_editable(m)]


def expected_keys(architecture, num_classes, stimulus_set) -> html.Div:
    """The state_dict keys and shapes a checkpoint of ``architecture`` (an upload's choice) for
    ``num_classes`` and the images of the registry's ``stimulus_set`` must have, or why not."""
    from compute.sources.stimulus_names import UnknownStimulusSet
    from compute.sources.uploads import UploadError, expected_state

    if isinstance(num_classes, float) and num_classes.is_integer():
        num_classes = int(num_classes)
    try:
        rows = expected_state(str(architecture or ""), num_classes,
                              tuple(services.stimuli(str(stimulus_set or "")).images.shape[1:]))
    except (UploadError, ValueError, UnknownStimulusSet) as error:
        return notice(f"Refused: {error}")
    shown = "\n".join(f"{key}  {tuple(shape)}" for key, shape in rows[:MAX_KEYS_SHOWN])
    more = f"\n… and {len(rows) - MAX_KEYS_SHOWN} more" if len(rows) > MAX_KEYS_SHOWN else ""
    return html.Div([html.P(f"{architecture}: {len(rows)} tensors a checkpoint must hold (key, shape)",
                            className="hint"), dmc.Code(shown + more, block=True, mah=320)])


def text_input(component_id: str, label: str, **kwargs) -> dmc.TextInput:
    """A labelled text box (Mantine's TextInput: the id on the <input>, the label's ``for``)."""
    return dmc.TextInput(id=component_id, label=label, size="xs", className="control", **kwargs)


def number_input(component_id: str, label: str | None = None, **kwargs) -> dmc.NumberInput:
    """A labelled box of whole numbers (Mantine's NumberInput, no decimals)."""
    return dmc.NumberInput(id=component_id, label=label, size="xs", allowDecimal=False, className="control",
                           **kwargs)


def layout(search: str | None = None, selection=None) -> dmc.Flex:
    checkpoint = file_form(f"{_ID}-checkpoint", "Upload a checkpoint", ".safetensors,.pt,.pth", [
        text_input(f"{_ID}-checkpoint-name", "Name", inputProps={"maxLength": 80}, placeholder="the file's name"),
        dropdown(f"{_ID}-architecture", "Architecture", _architecture_options(), "cnn-w16", searchable=True),
        number_input(f"{_ID}-classes", "Classes", min=2, value=10),
        dropdown(f"{_ID}-stimuli", "Stimulus set (accuracy, input size)", _stimulus_options(), "digits"),
        dmc.Stack([button("Show the expected keys and shapes", f"{_ID}-expected-send"),
                   html.Div(id=f"{_ID}-expected")], gap=4, className="control"),
        html.Div([html.Label("Initial weights (optional): the same network before training, its untrained twin",
                             htmlFor=f"{_ID}-checkpoint-twin-file"),
                  html.Div(id=f"{_ID}-checkpoint-twin-file", className="file-slot",
                           **{"data-accept": ".safetensors,.pt,.pth"})], className="control"),
    ])
    stimuli = file_form(f"{_ID}-stimuli", "Upload a stimulus set (.zip of class folders, or a .mat struct array "
                        "of images with a category field)", ".zip,.mat", [])
    hint = html.P(".safetensors, or a .pt/.pth state_dict; TorchScript and pickled modules are refused.",
                  className="hint")
    onnx = file_form(f"{_ID}-onnx", "Upload an ONNX model", ".onnx", _onnx_controls())
    grid = [model_grid(f"{_ID}-table", services.models(None)), dmc.Box(id=f"{_ID}-table-chosen", fz="sm", mt=4)]
    return page_frame([html.H2(TITLE), checkpoint, stimuli, hint, activations_form(), onnx, edit_form()], grid,
                      panel_width=340)


for _kind, _function, _states in (
    ("checkpoint", "uploadCheckpoint", [State(f"{_ID}-architecture", "value"), State(f"{_ID}-classes", "value"),
                                        State(f"{_ID}-stimuli", "value"), State(f"{_ID}-checkpoint-name", "value")]),
    ("stimuli", "uploadStimuli", []),
):
    clientside_callback(
        ClientsideFunction("repscope", _function),
        Output(f"{_ID}-{_kind}-result", "data"),
        Input(f"{_ID}-{_kind}-send", "n_clicks"),
        *_states,
        prevent_initial_call=True,
    )


@callback(
    Output(f"{_ID}-checkpoint-message", "children"),
    Output(f"{_ID}-stimuli-message", "children"),
    Output(f"{_ID}-table", "rowData"),
    Output(f"{_ID}-stimuli", "options"),
    Input(f"{_ID}-checkpoint-result", "data"),
    Input(f"{_ID}-stimuli-result", "data"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def uploaded(checkpoint, stimuli, selection):
    return (upload_message(checkpoint, links_in(selection)), upload_message(stimuli), table_rows(services.models(None)),
            _stimulus_options())


@callback(
    Output(f"{_ID}-expected", "children"),
    Input(f"{_ID}-expected-send", "n_clicks"),
    State(f"{_ID}-architecture", "value"),
    State(f"{_ID}-classes", "value"),
    State(f"{_ID}-stimuli", "value"),
    prevent_initial_call=True,
)
def _show_expected(_, architecture, num_classes, stimulus_set):
    return expected_keys(architecture, num_classes, stimulus_set)


# --- renaming and deleting registered models --------------------------------------------------

def edit_form() -> dmc.Stack:
    """Rename or delete an uploaded or registered model (chosen by name from the registry)."""
    return form_section("Rename or delete a model", [
        dropdown(f"{_ID}-edit-choice", "Model (uploaded or registered; the zoo's are fixed)",
                 editable(services.models(None)), None, searchable=True, clearable=True),
        text_input(f"{_ID}-edit-name", "New name", inputProps={"maxLength": 80}, placeholder="letters, digits, _ . -"),
        dmc.Group([button("Rename", f"{_ID}-rename"), button("Delete", f"{_ID}-delete")], gap="xs", grow=True),
        html.P("Renaming keeps the model's weights key, so its cached results stay; deleting removes it from "
               "the registry (its weights file too unless another name uses it) and keeps every other "
               "model's cached results.", className="hint"),
        html.Div(id=f"{_ID}-edit-message"),
    ])


def edit_model(action: str, name, new_name, selection: dict | None = None) -> dmc.Alert:
    """Rename (``action`` "rename") or delete the registered model ``name``; what happened, in words."""
    from compute.sources.models import delete_model, rename_model

    if not isinstance(name, str) or not name:
        return notice("Refused: choose a model first")
    try:
        if action == "rename":
            info = rename_model(name, new_name.strip() if isinstance(new_name, str) else new_name)
            return notice([f"Renamed {name} to {info.name}", *open_links(info.name, selection)], "done")
        delete_model(name)
    except ValueError as error:
        return notice(f"Refused: {error}")
    return notice(f"Deleted {name}; the other models' cached results are kept", "done")


@callback(
    Output(f"{_ID}-edit-message", "children"),
    Output(f"{_ID}-table", "rowData", allow_duplicate=True),
    Output(REGISTRY_CHANGED, "data", allow_duplicate=True),
    Output(f"{_ID}-edit-choice", "options", allow_duplicate=True),
    Output(f"{_ID}-edit-choice", "value", allow_duplicate=True),
    Input(f"{_ID}-rename", "n_clicks"),
    Input(f"{_ID}-delete", "n_clicks"),
    State(f"{_ID}-edit-choice", "value"),
    State(f"{_ID}-edit-name", "value"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def _edit(rename, delete, name, new_name, selection):
    """The edit's message, the table and the form's names, with the model it now names chosen (the
    new name after a rename, none after a delete): set here, in the same answer, so that no later
    answer of the table's change can clear a name chosen since."""
    import time

    if not (rename or delete):  # the page drawn (Dash calls it then, prevent_initial_call or not)
        return (no_update,) * 5
    action = "rename" if ctx.triggered_id == f"{_ID}-rename" else "delete"
    message = edit_model(action, name, new_name, selection)
    models = services.models(None)
    names = editable(models)
    renamed = new_name.strip() if action == "rename" and isinstance(new_name, str) else None
    chosen = name if name in names else (renamed if renamed in names else None)
    return message, table_rows(models), time.time(), names, chosen


@callback(
    Output(f"{_ID}-edit-choice", "options"),
    Output(f"{_ID}-edit-choice", "value"),
    Input(f"{_ID}-table", "rowData"),
    State(f"{_ID}-edit-choice", "value"),
    prevent_initial_call=True,
)
def _editable_names(_, chosen):
    """The registry's editable names whenever the table changed; the one chosen is left as it is
    unless it is gone (an answer that arrives late never undoes a newer choice)."""
    names = editable(services.models(None))
    return names, no_update if chosen in names or chosen is None else None


def chosen_row(rows, models, selection: dict | None = None) -> tuple:
    """For the grid's selected ``rows`` (the client's: only a name is read, looked up in ``models``):
    the name the rename and delete form takes (None for a zoo model; no change when none is
    selected) and the line that opens the model, or says the zoo's are fixed."""
    name = rows[0].get("name") if rows and isinstance(rows[0], dict) else None
    model = next((m for m in models if m.name == name), None)
    if model is None:
        return no_update, ""
    line = [name, ":", *open_links(name, selection)]
    if is_editable(model):
        return name, html.Div(line)
    return None, html.Div([*line, html.Span(" (the zoo's models cannot be renamed or deleted)", className="hint")])


@callback(
    Output(f"{_ID}-edit-choice", "value", allow_duplicate=True),
    Output(f"{_ID}-table-chosen", "children"),
    Input(f"{_ID}-table", "selectedRows"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def _chosen(rows, selection):
    return chosen_row(rows, services.models(None), selection)


clientside_callback(
    ClientsideFunction("repscopeGrid", "quickFilter"),
    Output(f"{_ID}-table", "dashGridOptions"),
    Input(f"{_ID}-table-search", "value"),
    State(f"{_ID}-table", "dashGridOptions"),
    prevent_initial_call=True,
)


# --- precomputed activations (or brain data) as a model -----------------------------------------

def activations_form() -> dmc.Stack:
    """Activations computed elsewhere, or brain recordings: a file of one array per layer or ROI
    over a stimulus set's images (compute.sources.activation_files says what it may hold)."""
    return file_form(f"{_ID}-activations", "Upload activations or brain data (.npz, .h5, .safetensors)",
                     ".npz,.h5,.hdf5,.safetensors", [
        dropdown(f"{_ID}-activations-set", "Stimulus set (rows: its stimuli)", _stimulus_options(), "digits"),
        text_input(f"{_ID}-activations-name", "Name", placeholder="the file's name"),
        dmc.CheckboxGroup(dmc.Stack([dmc.Checkbox(label="brain data (tag kind=brain)", value="brain", size="xs"),
                                     dmc.Checkbox(label="every array has a leading repeats axis (R, N, ...)",
                                                  value="repeated", size="xs")], gap=6),
                          id=f"{_ID}-activations-flags", value=[], className="control"),
        dmc.Group([text_input(f"{_ID}-activations-series", "Checkpoint series (optional, for Training dynamics)",
                              placeholder="series", flex=1),
                   number_input(f"{_ID}-activations-step", "Step", min=0, placeholder="step", w=80)],
                  gap="xs", align="flex-end", wrap="nowrap"),
        html.P("One array per layer, (N, ...) or (R, N, ...) for repeats; optional stimulus_ids, labels, "
               "logits. Never unpickled.", className="hint"),
    ])


clientside_callback(
    ClientsideFunction("repscope", "uploadActivations"),
    Output(f"{_ID}-activations-result", "data"),
    Input(f"{_ID}-activations-send", "n_clicks"),
    State(f"{_ID}-activations-set", "value"),
    State(f"{_ID}-activations-name", "value"),
    State(f"{_ID}-activations-flags", "value"),
    State(f"{_ID}-activations-series", "value"),
    State(f"{_ID}-activations-step", "value"),
    prevent_initial_call=True,
)


def _onnx_controls() -> list:
    """The ONNX form's stimulus set and input preprocessing; blanks take the graph's own values."""
    def text(key: str, label: str, value: str, placeholder: str = "") -> dmc.TextInput:
        return text_input(f"{_ID}-onnx-{key}", label, value=value, placeholder=placeholder)

    return [
        dropdown(f"{_ID}-onnx-stimuli", "Stimulus set (accuracy)", _stimulus_options(), "digits"),
        text("name", "Name", "", "the file's name"),
        text("size", "Input size (H,W)", "", "the graph's"),
        text("mean", "Mean per channel", "0"),
        text("std", "Std per channel", "1"),
        dropdown(f"{_ID}-onnx-channels", "Channels", [{"label": "the graph's", "value": ""}, {"label": "1 (grey)", "value": 1},
                                                           {"label": "3 (RGB)", "value": 3}], ""),
        html.P("Stimuli are pixels in [0, 1]: they are converted to the channels, resized to the size, then "
               "(x - mean) / std. Custom operators and external data are refused.", className="hint"),
    ]


clientside_callback(
    ClientsideFunction("repscope", "uploadOnnx"),
    Output(f"{_ID}-onnx-result", "data"),
    Input(f"{_ID}-onnx-send", "n_clicks"),
    *[State(f"{_ID}-onnx-{key}", "value") for key in ("stimuli", "name", "size", "mean", "std", "channels")],
    prevent_initial_call=True,
)


@callback(
    Output(f"{_ID}-activations-message", "children"),
    Output(f"{_ID}-table", "rowData", allow_duplicate=True),
    Input(f"{_ID}-activations-result", "data"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def activations_uploaded(result, selection):
    return upload_message(result, links_in(selection)), table_rows(services.models(None))


@callback(
    Output(f"{_ID}-activations-set", "options"),
    Output(f"{_ID}-onnx-stimuli", "options"),
    Input(f"{_ID}-stimuli-result", "data"),
    prevent_initial_call=True,
)
def new_stimulus_set(_):
    return _stimulus_options(), _stimulus_options()


# Every upload form of this page: a registered model or set is listed in the selection panel at once.
UPLOAD_FORMS = ("checkpoint", "stimuli", "activations", "onnx")


@callback(
    Output(REGISTRY_CHANGED, "data", allow_duplicate=True),
    *[Input(f"{_ID}-{form}-result", "data") for form in UPLOAD_FORMS],
    prevent_initial_call=True,
)
def registry_changed(*results):
    """A time stamp when an upload succeeded (the panel re-reads the registry), else nothing."""
    import time

    return time.time() if any(result and result.get("ok") for result in results) else no_update


@callback(
    Output(f"{_ID}-onnx-message", "children"),
    Output(f"{_ID}-table", "rowData", allow_duplicate=True),
    Input(f"{_ID}-onnx-result", "data"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def uploaded_onnx(result, selection):
    return upload_message(result, links_in(selection)), table_rows(services.models(None))
