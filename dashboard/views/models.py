"""Models: the registry as a sortable table, and uploads of checkpoints, ONNX models and stimulus sets.

Files go to the chunked upload route (``assets/upload.js``, never ``dcc.Upload``); the server
checks them in a limited worker process, and the table lists a new model once it is registered.
"""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dash_table, dcc, html, no_update

from dashboard import services
from dashboard.selection import REGISTRY_CHANGED
from dashboard.view_parts.upload_form import file_form, upload_message
from dashboard.widgets import dropdown

PATH = "/models"
TITLE = "Models"
SELECTION = ()  # the parts of the selection panel it reads (none: no panel)
_ID = "models"

COLUMNS = [
    {"name": "Name", "id": "name"},
    {"name": "Architecture", "id": "architecture"},
    {"name": "Source", "id": "source"},
    {"name": "Accuracy", "id": "accuracy", "type": "numeric",
     "format": dash_table.FormatTemplate.percentage(1).nully("n/a")},
    {"name": "Top-5", "id": "top5", "type": "numeric",
     "format": dash_table.FormatTemplate.percentage(1).nully("n/a")},
    {"name": "Tags", "id": "tags"},  # last and wrapped: the longest cell
]


def table_rows(models) -> list[dict]:
    """One row per model: accuracy and top-5 as fractions in [0, 1] (None: n/a), tags as k=v."""
    return [{"name": m.name, "architecture": m.architecture, "source": m.source,
             "tags": ", ".join(f"{k}={v}" for k, v in sorted(m.tags.items())),
             "accuracy": m.accuracy, "top5": m.top5} for m in models]


def _architecture_options() -> list[str]:
    from compute.sources.uploads import architecture_choices

    return architecture_choices()


def _stimulus_options() -> list[str]:
    from compute.sources.uploads import uploaded_stimulus_sets

    return ["digits", *uploaded_stimulus_sets()]


def layout(search: str | None = None, selection=None) -> html.Div:
    checkpoint = file_form(f"{_ID}-checkpoint", "Upload a checkpoint", ".safetensors,.pt,.pth", [
        dropdown(f"{_ID}-architecture", "Architecture", _architecture_options(), "cnn-w16", searchable=True),
        html.Div([html.Label("Classes", htmlFor=f"{_ID}-classes"),
                  dcc.Input(id=f"{_ID}-classes", type="number", min=2, step=1, value=10)], className="control"),
        dropdown(f"{_ID}-stimuli", "Stimulus set (accuracy, input size)", _stimulus_options(), "digits"),
    ])
    stimuli = file_form(f"{_ID}-stimuli", "Upload a stimulus set (.zip of class folders, or a .mat struct array "
                        "of images with a category field)", ".zip,.mat", [])
    activations = activations_form()
    onnx = file_form(f"{_ID}-onnx", "Upload an ONNX model", ".onnx", _onnx_controls())
    return html.Div(
        [
            html.Div([html.H2(TITLE), checkpoint, stimuli,
                      html.P(".safetensors, or a .pt/.pth state_dict; TorchScript and pickled modules "
                             "are refused.", className="hint"), activations, onnx],
                     className="panel panel-wide"),
            html.Div(
                dash_table.DataTable(id=f"{_ID}-table", columns=COLUMNS, data=table_rows(services.models(None)),
                                     sort_action="native", filter_action="native", page_size=25,
                                     style_cell={"textAlign": "left", "fontFamily": "inherit"},
                                     style_cell_conditional=[{"if": {"column_id": "tags"}, "whiteSpace": "normal",
                                                              "minWidth": "16rem"}],
                                     style_table={"overflowX": "auto"}),
                className="main",
            ),
        ],
        className="view",
    )


for _kind, _function, _states in (
    ("checkpoint", "uploadCheckpoint", [State(f"{_ID}-architecture", "value"), State(f"{_ID}-classes", "value"),
                                        State(f"{_ID}-stimuli", "value")]),
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
    Output(f"{_ID}-table", "data"),
    Output(f"{_ID}-stimuli", "options"),
    Input(f"{_ID}-checkpoint-result", "data"),
    Input(f"{_ID}-stimuli-result", "data"),
    prevent_initial_call=True,
)
def uploaded(checkpoint, stimuli):
    return (upload_message(checkpoint), upload_message(stimuli), table_rows(services.models(None)),
            _stimulus_options())


# --- precomputed activations (or brain data) as a model -----------------------------------------

def activations_form() -> html.Div:
    """Activations computed elsewhere, or brain recordings: a file of one array per layer or ROI
    over a stimulus set's images (compute.sources.activation_files says what it may hold)."""
    return file_form(f"{_ID}-activations", "Upload activations or brain data (.npz, .h5, .safetensors)",
                     ".npz,.h5,.hdf5,.safetensors", [
        dropdown(f"{_ID}-activations-set", "Stimulus set (rows: its stimuli)", _stimulus_options(), "digits"),
        html.Div([html.Label("Name", htmlFor=f"{_ID}-activations-name"),
                  dcc.Input(id=f"{_ID}-activations-name", type="text", placeholder="the file's name")],
                 className="control"),
        dcc.Checklist(id=f"{_ID}-activations-flags", className="control", value=[], options=[
            {"label": " brain data (tag kind=brain)", "value": "brain"},
            {"label": " every array has a leading repeats axis (R, N, ...)", "value": "repeated"}]),
        html.Div([html.Label("Checkpoint series and step (optional, for Training dynamics)",
                             htmlFor=f"{_ID}-activations-series"),
                  dcc.Input(id=f"{_ID}-activations-series", type="text", placeholder="series"),
                  dcc.Input(id=f"{_ID}-activations-step", type="number", min=0, step=1, placeholder="step")],
                 className="control"),
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
    def text(key: str, label: str, value: str, placeholder: str = "") -> html.Div:
        return html.Div([html.Label(label, htmlFor=f"{_ID}-onnx-{key}"),
                         dcc.Input(id=f"{_ID}-onnx-{key}", type="text", value=value, placeholder=placeholder)],
                        className="control")

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
    Output(f"{_ID}-table", "data", allow_duplicate=True),
    Input(f"{_ID}-activations-result", "data"),
    prevent_initial_call=True,
)
def activations_uploaded(result):
    return upload_message(result), table_rows(services.models(None))


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
    Output(f"{_ID}-table", "data", allow_duplicate=True),
    Input(f"{_ID}-onnx-result", "data"),
    prevent_initial_call=True,
)
def uploaded_onnx(result):
    return upload_message(result), table_rows(services.models(None))
