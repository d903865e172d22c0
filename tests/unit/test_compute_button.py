"""The Compute button starts the work of the view state the controls show, never an older one:
a press on the button of a state the user has just left (the new state's record still on its
way from the server) does nothing, so it cannot bring the old state back over the new one."""
from dash import no_update

from dashboard import compute_panel


def _plan_never_called(*args):
    raise AssertionError("a stale press planned work")


def test_a_press_for_a_state_the_controls_left_does_nothing():
    job = {"values": ["human IT", ["resnet18"]], "selection": {}, "confirm": "about 2 min"}
    stale = compute_panel.press_compute(_plan_never_called, 1, job, shown=("human IT", ["resnet18", "monkey IT"]))
    assert stale == (no_update, no_update)
    # Values the controls do not start work with (a zoom: the record's later values) are not compared.
    zoomed = {**job, "values": [*job["values"], {"x": [0, 10]}]}
    shown = ("human IT", ["resnet18"])
    assert compute_panel.press_compute(lambda *a: (_ for _ in ()).throw(ValueError("planned")), 1, zoomed, shown)[0] \
        == {"error": "planned"}
    for crafted in ({**job, "values": "human IT"}, {**job, "values": None}):  # a client's record: no values list
        assert compute_panel.press_compute(_plan_never_called, 1, crafted, shown) == (no_update, no_update)


def test_every_views_compute_button_reads_the_controls_it_starts_work_for(cache_dir, zoo_dir):
    from dashboard.app import _DECLARED  # the callbacks every view declared, as each app gets them

    callbacks = [{**cb, "outputs": {o.split("@")[0] for o in key.strip(".").split("...") if o}}
                 for key, cb in _DECLARED[0].items()]
    for prefix in compute_panel._PLANS:
        submits = [cb for cb in callbacks if f"{prefix}-job.data" in cb["outputs"]
                   and not any(i["id"] == f"{prefix}-compute" for i in cb["inputs"])
                   and any(i["id"].endswith("-choice") for i in cb["inputs"])]
        presses = [cb for cb in callbacks if any(i["id"] == f"{prefix}-compute" for i in cb["inputs"])]
        assert len(submits) == 1 and len(presses) == 1, prefix
        controls = {(i["id"], i["property"]) for i in submits[0]["inputs"]}
        assert controls <= {(s["id"], s["property"]) for s in presses[0]["state"]}, prefix
