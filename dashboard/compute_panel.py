"""A computed view's page and its compute panel (progress line, Compute button, share bar): the
submit-and-poll pattern every view shares. Artifacts are asked of the job backend, a
``dcc.Interval`` polls their status, and the view's figures are drawn once they are all there.
(The Jobs page, listing every job, is :mod:`dashboard.views.jobs`.)

A view calls :func:`job_components` in its layout and, once at import, :func:`register_submit`
with its control inputs and a pure ``plan`` function (which artifacts, and the URL's query string) and
:func:`register_poll` with its figure outputs and a pure ``draw`` function.
Component ids: ``<prefix>-job`` (the job record), ``<prefix>-poll`` (with the stores of
:mod:`dashboard.polling`), ``<prefix>-progress``, ``<prefix>-compute`` (the button that starts
uncached heavy work).

Work that is cached is drawn at once; uncached work starts by itself when its estimated size is
at most ``REPSCOPE_AUTO_COMPUTE_BYTES`` and its estimated time at most
``REPSCOPE_AUTO_COMPUTE_SECONDS``, and otherwise waits for the "Compute" button, shown with the
estimate.

The job record lives in the browser (a ``dcc.Store``) and comes back with every poll, Compute
click, download and zoom: anything in it may have been edited. So it holds only the view's
state, the controls' values and the selection, and every callback plans the specs again from
that state with the view's own ``plan``, which refuses values the view does not offer
(:func:`dashboard.url_codec.check`); no spec, key or parameter is ever read from the record.
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping

import dash_mantine_components as dmc
from dash import Input, Output, State, callback, dcc, html, no_update
from flask import has_request_context, request

from compute.engine import artifacts
from compute.engine.limits import LimitExceeded, missing_work
from dashboard import services, url_codec
from dashboard.polling import poll_components, register_poll_callback
from dashboard.selection import Selection
from dashboard.share import job_arrays, register_share, share_components
from dashboard.widgets import PENDING_FIGURE, describe_status, figure_slot, message_figure, page_frame, progress_area

POLL_MS = 400
PENDING_MARK = "pending|"  # how the marker of a job's "Computing…" figures starts (no drawing of its arrays)
# What a view's figures show while its work waits for the Compute button.
ASKING_FIGURE = message_figure("Not computed yet: press Compute above (its estimate beside it)")
_FINISHED = ("failed", "cancelled")
_PLANS: dict[str, Callable[..., tuple]] = {}  # prefix -> the view's plan, from register_submit
_EARLY: dict[str, tuple] = {}  # prefix -> the view's early targets, from register_poll


def _client() -> str | None:
    """Who asks, for the per-client job cap: the remote address of the current request."""
    return request.remote_addr if has_request_context() else None


def job_components(prefix: str) -> list:
    """The progress line, the share bar (copy link, download data, show code), the job record
    and the poll timer of one view."""
    return [progress_area(prefix), share_components(prefix), dcc.Store(id=f"{prefix}-job"),
            dcc.Store(id=f"{prefix}-early"), *poll_components(prefix, POLL_MS, disabled=True)]


def view_page(prefix: str, title: str, controls: list, hint: str, figures, more=(), hidden=()) -> html.Div:
    """The page every computed view shares: a panel of controls ending in a hint, then the job's
    progress and one graph per name in ``figures`` (id ``<prefix>-<name>``; those named in
    ``hidden`` not shown until a callback shows them), then ``more``. ``figures`` maps each name
    to its shape (:data:`dashboard.widgets.SHAPES`); a list of names makes them all wide."""
    shapes = figures if isinstance(figures, Mapping) else dict.fromkeys(figures, "wide")
    graphs = [figure_slot(f"{prefix}-{name}", shape, hidden=name in hidden) for name, shape in shapes.items()]
    return page_frame([html.H2(title), *controls, html.P(hint, className="hint")],
                      [*job_components(prefix), html.Div(graphs, className="figures"), *more])


def estimate(specs: Mapping[str, artifacts.Spec], targets, after=()):
    """The :class:`~compute.engine.limits.Work` the targets need beyond the cache (and beyond
    what the ``after`` targets, computed first, make)."""
    backend = services.backend()
    made = {s.key for name in after for s in specs[name].walk()}
    return missing_work([specs[name] for name in targets],
                        lambda s: s.key in made or backend.store.has(s.kind, s.key), backend.shape_of)


def start(specs: Mapping[str, artifacts.Spec], targets, auto_bytes: int | None = None,
          auto_seconds: float | None = None, early=()) -> dict:
    """Submit the ``targets`` (names in ``specs``; their inputs come with them); what the job
    record adds: nothing when submitted, ``confirm`` (the estimate) when ``auto_bytes`` is given
    and the uncached work is estimated above it or above ``auto_seconds`` (the poll then shows the
    Compute button), or ``error`` when the backend is down or a limit refuses (shown by the poll;
    never an exception). The view's ``early`` targets (e.g. point estimates before their
    intervals) start by themselves when they alone are within the limits: the record then says
    ``early`` (their names) and ``confirm`` is the estimate of the rest.
    """
    def over(work) -> bool:
        return bool(work.artifacts) and (work.bytes > auto_bytes or (auto_seconds is not None
                                                                      and work.seconds > auto_seconds))

    try:
        backend = services.backend()  # Redis down: a RuntimeError, said in the page
        if auto_bytes is not None and over(estimate(specs, targets)):
            first = [name for name in early if name in targets]
            rest = [name for name in targets if name not in first]
            if not first or not rest or over(estimate(specs, first)):
                return {"confirm": estimate(specs, targets).describe()}
            for name in first:
                backend.submit(specs[name], client=_client())
            return {"confirm": estimate(specs, rest, after=first).describe(), "early": first}
        for name in targets:
            backend.submit(specs[name], client=_client())
    except (RuntimeError, LimitExceeded) as error:  # say why, keep the page alive
        return {"error": str(error)}
    return {}


def view_state(selection_data, values) -> dict:
    """The job record's view state: the controls' ``values`` and the selection (as its URL keys)."""
    return {"values": list(values), "selection": Selection.from_url_params(selection_data).url_params()}


def _plan(plan: Callable[..., tuple], job) -> tuple:
    """``plan(selection, *values)`` for the view state in ``job``: ``(specs, targets, context,
    search)``, the selection joined to the context; ValueError for a state the view does not offer."""
    if not isinstance(job, dict) or not isinstance(job.get("values"), list):
        raise ValueError("the view's state is missing or malformed: reload the page")
    selection = Selection.from_url_params(job.get("selection"))
    try:
        inspect.signature(plan).bind(selection, *job["values"])
    except TypeError:
        raise ValueError("the view's state is malformed: reload the page") from None
    try:
        specs, targets, context, search = plan(selection, *job["values"])
    except KeyError as error:  # a name the registries do not know, e.g. a model
        raise ValueError(str(error.args[0]) if error.args else "an unknown name: reload the page") from None
    return specs, targets, {**context, "selection": selection.url_params()}, search


def planned(plan: Callable[..., tuple], job) -> tuple[dict, list, dict]:
    """The specs, targets and context of the view state a job record holds, planned here again
    (see the module's note); ValueError, with what is wrong, for a state the view does not offer."""
    return _plan(plan, job)[:3]


def confirm_area(prefix: str, what: str, lead: str = "Not computed yet") -> dmc.Group:
    """The progress line of work waiting to be asked for: its estimate and the Compute button."""
    return dmc.Group([html.Span(f"{lead}: {what}. "),
                      dmc.Button("Compute", id=f"{prefix}-compute", n_clicks=0, size="compact-sm",
                                 className="compute-button")],
                     gap="sm", className="status-confirm")


def running_area(prefix: str, status: dict) -> dmc.Group:
    """The progress line of work queued or running: its progress and the Cancel button."""
    return dmc.Group([describe_status(status),
                      dmc.Button("Cancel", id=f"{prefix}-cancel", n_clicks=0, size="compact-sm", variant="default",
                                 className="cancel-button")],
                     gap="sm", className="status-with-cancel")


def cancel_jobs(plan: Callable[..., tuple], clicks, job) -> bool:
    """What the Cancel button does: cancel the jobs of the record's view state (planned again:
    the client names no job), the next poll shows them cancelled. False when nothing was asked."""
    if not clicks or not isinstance(job, dict) or "values" not in job:
        return False
    try:
        specs, targets, _ = planned(plan, job)
    except ValueError:
        return False
    backend = services.backend()
    for name in targets:
        for spec in specs[name].walk():
            backend.cancel(spec.key)
    return True


def combined_status(statuses: list[dict]) -> dict:
    """One status for several jobs: failed/cancelled if any is, done when all are, otherwise
    running at their mean progress with the message of the first one not done."""
    for status in statuses:
        if status["state"] in _FINISHED:
            return status
    pending = [s for s in statuses if s["state"] != "done"]
    if not pending:
        return {"state": "done", "progress": 1.0, "message": "done"}
    progress = sum(float(s.get("progress") or 0.0) if s["state"] != "done" else 1.0 for s in statuses)
    return {**pending[0], "progress": progress / len(statuses)}


def poll(job: dict | None, n_figures: int, draw: Callable[[dict, dict], tuple], plan: Callable[..., tuple],
         prefix: str = "", needs=None, early=(), drawn=None) -> tuple:
    """What the poll callback returns: ``n_figures`` figures (or no_update), the progress line,
    whether to stop polling, and the marker of an early drawing. The specs are ``plan``'s for
    the record's view state; ``draw(context, arrays)`` gets the arrays of the named specs in
    ``needs`` (all by default; a view that draws from small derived arrays never reads big ones).
    A view naming ``early`` targets is drawn from their arrays alone as soon as they are done
    while the others still run (e.g. point estimates before their intervals), once: ``drawn``
    is the marker of the early drawing already on the page."""
    unchanged = (no_update,) * n_figures
    if not job:
        return (*unchanged, no_update, True, no_update)
    if "error" in job:
        return (*unchanged, describe_status({"state": "failed", "message": str(job["error"])}), True, no_update)
    try:
        specs, targets, context = planned(plan, job)
    except ValueError as error:
        return (*unchanged, describe_status({"state": "failed", "message": str(error)}), True, no_update)
    if "confirm" in job:
        early = job.get("early")  # the client's store: only names of the plan's targets are read
        first = [n for n in early if isinstance(n, str) and n in targets] if isinstance(early, list) else []
        if not first:
            return (*(ASKING_FIGURE,) * n_figures, confirm_area(prefix, str(job["confirm"])), True, None)
        # the early targets run (or ran) by themselves; the rest waits for Compute
        return _poll_early(job, first, specs, targets, context, n_figures, draw, prefix, drawn)
    backend = services.backend()
    statuses = {name: backend.spec_status(specs[name]) for name in targets}
    # No record and no artifact (evicted, or the job states were lost): ask again.
    refused = _resubmit(backend, specs, [name for name, s in statuses.items() if s["state"] == "missing"])
    if refused:
        return (*unchanged, describe_status({"state": "failed", "message": refused}), True, no_update)
    status = combined_status(list(statuses.values()))
    if status["state"] in _FINISHED:
        return (*unchanged, describe_status(status), True, no_update)
    if status["state"] != "done":
        first = [name for name in early if name in statuses]
        marker = "|".join(specs[name].key for name in first)
        if first and drawn != marker and all(statuses[name]["state"] == "done" for name in first):
            arrays = job_arrays(specs, first)
            if arrays is not None:
                return (*draw(context, arrays), running_area(prefix, status), False, marker)
        return (*_pending(specs, targets, n_figures, drawn, marker), running_area(prefix, status), False,
                _pending_marker(specs, targets, drawn, marker))
    arrays = job_arrays(specs, needs)
    if arrays is None:  # evicted between status and read
        refused = _resubmit(backend, specs, targets)
        return (*unchanged, refused or "recomputing an evicted result…", bool(refused), no_update)
    figures = draw(context, arrays)
    return (*figures, describe_status(status), True, None)


def _poll_early(job: dict, first: list, specs: dict, targets, context: dict, n_figures: int, draw, prefix: str,
                drawn) -> tuple:
    """:func:`poll` for a record whose ``first`` (early) targets started by themselves: their
    progress beside the Compute button of the rest, then their drawing (once) and the button alone."""
    unchanged = (no_update,) * n_figures
    backend = services.backend()
    statuses = {name: backend.spec_status(specs[name]) for name in first}
    refused = _resubmit(backend, specs, [name for name, s in statuses.items() if s["state"] == "missing"])
    status = combined_status(list(statuses.values()))
    if refused or status["state"] in _FINISHED:
        failed = {"state": "failed", "message": refused} if refused else status
        return (*unchanged, describe_status(failed), True, no_update)
    ask = confirm_area(prefix, str(job["confirm"]), lead="The rest of this view is not computed yet")
    marker = "|".join(specs[name].key for name in first)
    if status["state"] != "done":
        return (*_pending(specs, first, n_figures, drawn, marker), dmc.Stack([running_area(prefix, status), ask], gap=4),
                False, _pending_marker(specs, first, drawn, marker))
    arrays = job_arrays(specs, first) if drawn != marker else None
    if arrays is None:
        return (*unchanged, ask, True, no_update)
    return (*draw(context, arrays), ask, True, marker)


def _pending(specs: dict, targets, n_figures: int, drawn, early_marker: str) -> tuple:
    """The figures while a job runs: "Computing…" once, in place of what another view state drew
    (never a stale figure, nor an old message such as "no reference chosen", beside the progress
    of the new work); then, and after an early drawing, left as they are."""
    if drawn in (_pending_key(specs, targets), early_marker):
        return (no_update,) * n_figures
    return (PENDING_FIGURE,) * n_figures


def _pending_marker(specs: dict, targets, drawn, early_marker: str):
    """The early-drawing marker after :func:`_pending`: the running job's, once its "Computing…" is shown."""
    return no_update if drawn == early_marker else _pending_key(specs, targets)


def _pending_key(specs: dict, targets) -> str:
    return PENDING_MARK + "|".join(specs[name].key for name in targets)


def _resubmit(backend, specs: dict, names) -> str | None:
    """Submit the named specs again; the reason when the backend or a limit refuses."""
    try:
        for name in names:
            backend.submit(specs[name], client=_client())
    except (RuntimeError, LimitExceeded) as error:
        return str(error)
    return None


def register_poll(prefix: str, outputs: list[Output], draw: Callable[[dict, dict], tuple],
                  code: Callable[[dict], str] | None = None, needs=None, early=()) -> None:
    """The view's poll callback: on each tick, the job's progress, then its figures (drawn from
    the arrays named in ``needs``, all by default; first from the ``early`` ones alone, see
    :func:`poll`); and its share callbacks (see :mod:`dashboard.share`), with ``code(context)``
    the "Show code" snippet. The view's plan is the one :func:`register_submit` was given for
    ``prefix``."""
    register_share(prefix, code, lambda job: planned(_PLANS[prefix], job))
    _EARLY[prefix] = tuple(early)
    register_poll_callback(
        prefix,
        [*outputs, Output(f"{prefix}-progress", "children"), Output(f"{prefix}-poll", "disabled", allow_duplicate=True),
         Output(f"{prefix}-early", "data")],
        # The job record is an Input: a new job is answered at once, and Dash drops the answer still
        # in flight for the job it replaced (which would otherwise land last and stop the poll).
        [Input(f"{prefix}-job", "data"), State(f"{prefix}-early", "data")],
        lambda job, drawn: poll(job, len(outputs), draw, _PLANS[prefix], prefix, needs, early, drawn),
    )

    @callback(
        Output(f"{prefix}-poll", "disabled", allow_duplicate=True),
        Input(f"{prefix}-cancel", "n_clicks"),
        State(f"{prefix}-job", "data"),
        prevent_initial_call=True,
    )
    def _cancel(clicks, job):
        return False if cancel_jobs(_PLANS[prefix], clicks, job) else no_update


def press_compute(plan: Callable[..., tuple], clicks, job, shown=None) -> tuple:
    """What the Compute button does: submit the work of the record's view state, planned again
    (the record's estimate is only what the button showed), and poll it. ``shown`` are the
    values the view's controls show now: a click on the button of a state they no longer show
    (the new state's record still on its way) does nothing, never bringing the old state back."""
    if not clicks or not isinstance(job, dict) or "confirm" not in job:
        return no_update, no_update
    if shown is not None and (not isinstance(job.get("values"), list) or job["values"][:len(shown)] != list(shown)):
        return no_update, no_update
    try:
        specs, targets, _ = planned(plan, job)
    except ValueError as error:
        return {"error": str(error)}, False
    return {**view_state(job["selection"], job["values"]), **start(specs, targets)}, False


def submit(plan: Callable[..., tuple], selection_data: dict | None, values, early=()) -> tuple:
    """The job record and the URL query string for the controls' ``values``: ``plan(selection,
    *values)`` gives ``(specs, targets, context, search)``; the selection joins the context and
    the URL (``search`` None: the URL is not written). A ``ValueError`` from ``plan`` (say, too
    few models selected, or a value the view does not offer) becomes the record's error, shown
    in the view."""
    from compute.settings import get_settings

    record = view_state(selection_data, values)
    try:
        specs, targets, _, search = _plan(plan, record)
    except ValueError as error:
        return {"error": str(error)}, no_update
    settings = get_settings()
    record.update(start(specs, targets, auto_bytes=settings.auto_compute_bytes,
                        auto_seconds=settings.auto_compute_seconds, early=early))
    # A view's second job (``search`` None) leaves the URL to the view's first.
    selection = Selection.from_url_params(selection_data)
    return record, no_update if search is None else url_codec.join(selection.search(), search)


def register_submit(prefix: str, inputs: list[Input], plan: Callable[..., tuple], states: list[State] = (),
                    writes_url: bool = True) -> None:
    """The view's submit callback: on any control change (and when the view is drawn for a new
    selection), ``plan(selection, *values)`` returns ``(specs, targets, context, search)``; the
    values are the ``inputs``' then the ``states``' (view state that does not start work by
    itself, such as a zoom); the targets are submitted, polling starts and the URL query string
    becomes the selection's and ``search``. Several views write the URL, hence the duplicate.
    A view's second job that never writes the URL says ``writes_url=False``: its callback then
    has no output outside its own components, so it runs only while they are on the page (and
    when they are put there). Its Compute button's callback is registered here too (see
    :func:`press_compute`). ``plan`` is also what the poll, the Compute button and the share bar
    plan with."""
    _PLANS[prefix] = plan
    url = [Output("url", "search", allow_duplicate=True)] if writes_url else []

    @callback(
        Output(f"{prefix}-job", "data"),
        Output(f"{prefix}-poll", "disabled"),
        *url,
        *inputs,
        *states,
        State("selection", "data"),
        prevent_initial_call="initial_duplicate" if writes_url else False,
    )
    def _submit(*values):
        record, search = submit(plan, values[-1], values[:-1], _EARLY.get(prefix, ()))
        return (record, False, search) if writes_url else (record, False)

    @callback(
        Output(f"{prefix}-job", "data", allow_duplicate=True),
        Output(f"{prefix}-poll", "disabled", allow_duplicate=True),
        Input(f"{prefix}-compute", "n_clicks"),
        State(f"{prefix}-job", "data"),
        *[State(control.component_id, control.component_property) for control in inputs],
        prevent_initial_call=True,
    )
    def _compute(clicks, job, *shown):
        return press_compute(plan, clicks, job, shown)
