"""The shared pieces every page draws with: notices are Mantine's Alerts with the classes tests and
status checks look for, and a page's frame stacks its panel above the main area on a narrow window."""
import dash_mantine_components as dmc
import pytest

from dashboard.view_parts.upload_form import upload_message
from dashboard.widgets import describe_status, notice, page_frame


def test_notices_are_alerts_with_their_kinds_classes():
    failed = describe_status({"state": "failed", "message": "out of memory"})
    assert isinstance(failed, dmc.Alert) and failed.children == "Failed: out of memory"
    assert set(failed.className.split()) == {"alert", "alert-error", "status-failed"} and failed.color == "red"
    done = upload_message({"ok": True, "stimulus_set": "s", "images": 20, "num_classes": 2})
    assert isinstance(done, dmc.Alert) and "status-done" in done.className and done.color == "green"
    with pytest.raises(KeyError):
        notice("x", "shout")


def test_a_page_frame_puts_the_panel_beside_the_main_area_or_above_it():
    frame = page_frame(["controls"], ["figures"], panel_width=300)
    panel, main = frame.children
    assert frame.direction == {"base": "column", "sm": "row"}
    assert panel.w == {"base": "100%", "sm": 300} and panel.children == ["controls"]
    assert main.children == ["figures"] and main.miw == 0
