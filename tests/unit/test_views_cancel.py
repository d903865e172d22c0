"""Every view's running jobs can be cancelled from the view: each job a page holds is a
:mod:`dashboard.compute_panel` job, whose progress line shows Cancel (id ``<prefix>-cancel``)
while it runs, and whose Cancel callback is registered. (The Jobs page cancels any job from its
table; the browser tests press Cancel on the model MDS and on the Jobs page.)"""
import json

import plotly

from dashboard import compute_panel
from dashboard.selection import Selection


def _ids(component) -> set[str]:
    """Every string id in a layout, at any depth (children or any other component property)."""
    found, stack = set(), [json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("props"), dict) and isinstance(node["props"].get("id"), str):
                found.add(node["props"]["id"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _callbacks(callback_map: dict) -> tuple[set[str], set[str]]:
    """The callbacks' inputs and outputs (their allow_duplicate marks dropped), as "id.property"."""
    inputs = {f"{i['id']}.{i['property']}" for cb in callback_map.values() for i in cb["inputs"]}
    outputs = {o.split("@")[0] for key in callback_map for o in key.strip(".").split("...") if o}
    return inputs, outputs


def test_every_views_jobs_have_cancel_and_its_callback(cache_dir, zoo_dir):
    from dashboard.app import _DECLARED, VIEWS  # the callbacks every view declared, as each app gets them
    from dashboard.views import layer_grid

    inputs, outputs = _callbacks(_DECLARED[0])
    pages = {view.__name__.rsplit(".", 1)[-1]: _ids(view.layout(None, Selection())) for view in VIEWS}
    pages["layer_grid"] |= _ids(layer_grid.multiples_section())  # put on the page once asked for
    prefixes = {name: {i.removesuffix("-job") for i in ids if i.endswith("-job")} for name, ids in pages.items()}
    with_jobs = {name for name, found in prefixes.items() if found}
    assert with_jobs >= {"model_space", "input_rdm", "layer_grid", "confusion", "curves", "reference", "training",
                         "shared_space"}
    every = set().union(*prefixes.values())
    assert every == set(compute_panel._PLANS)  # every registered job is on some page, and only those
    for name in with_jobs:
        for prefix in prefixes[name]:
            assert f"{prefix}-progress" in pages[name], (name, prefix)  # where Cancel shows while it runs
            running = _ids(compute_panel.running_area(prefix, {"state": "running", "progress": 0.5}))
            assert f"{prefix}-cancel" in running, (name, prefix)
            assert f"{prefix}-cancel.n_clicks" in inputs, (name, prefix)  # what Cancel does is registered
            assert f"{prefix}-progress.children" in outputs, (name, prefix)  # the poll shows it
    # The Jobs page: a Cancel on each cancellable row, answered by its pattern-matched callback.
    assert any("jobs-cancel" in i and i.endswith(".n_clicks") for i in inputs)
