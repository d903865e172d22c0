"""Rename and delete on the Models page, as the page's callback requests reach the real app (its
Flask test client): crafted names are refused with a message and change nothing; only registered
models change, the zoo never; a deletion keeps every other cached file."""
import json

import pytest
from safetensors.torch import load_file

from tests.acceptance.dash_requests import callback_body, find

RENAME, DELETE = "models-rename.n_clicks", "models-delete.n_clicks"


@pytest.fixture
def client(cache_dir, zoo_dir):
    import app

    return app.server.test_client()


def edit(client, dependency, action: str, name, new_name=None) -> str:
    """Fire the rename/delete callback with the crafted ``name``; the message it answers, in words."""
    values = {RENAME: 1, DELETE: 1, "models-edit-choice.value": name, "models-edit-name.value": new_name}
    body = callback_body(dependency, values, changed=[RENAME if action == "rename" else DELETE])
    answer = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return json.dumps(answer.get_json()["response"]["models-edit-message"]["children"])


def test_crafted_renames_and_deletes_are_refused_and_registered_models_change(client, cache_dir, zoo_dir):
    from compute.sources import models as M

    zoo_file = zoo_dir / "digits" / "mlp-w4-s0-e25.safetensors"
    mine = M.register_model("mine", "mlp", weights=load_file(zoo_file), hparams=M.get_model_info("mlp-w4-s0-e25").hparams)
    (cache_dir / "artifacts").mkdir(exist_ok=True)
    (cache_dir / "artifacts" / "other.npy").write_bytes(b"cached result of another model")
    registry = (cache_dir / "models" / "registry.json").read_text()
    dependency = find(client.get("/_dash-dependencies").get_json(), inputs=[RENAME, DELETE])

    for action, name, new_name, words in (
            ("rename", "../../models/registry.json", "x", "no registered model"),
            ("rename", "mlp-w4-s0-e25", "x", "zoo model"),
            ("rename", "mine", "../escape", "1 to 80"),
            ("rename", "mine", "n" * 5000, "1 to 80"),
            ("rename", "mine", {"$": 1}, "1 to 80"),
            ("rename", "mine", "mlp-w4-s0-e1", "exists already"),
            ("rename", {"name": "mine"}, "x", "choose a model first"),
            ("delete", "mlp-w4-s0-e25", None, "cannot be deleted"),
            ("delete", str(zoo_file), None, "no registered model"),
            ("delete", ["mine"], None, "choose a model first")):
        message = edit(client, dependency, action, name, new_name)
        assert "Refused" in message and words in message, (name, new_name, message)
    assert (cache_dir / "models" / "registry.json").read_text() == registry and zoo_file.exists()

    assert "Renamed mine to mine.v2" in edit(client, dependency, "rename", "mine", " mine.v2 ")
    assert M.get_model_info("mine.v2").key == mine.key and M.load_model("mine.v2") is not None
    assert "Deleted mine.v2" in edit(client, dependency, "delete", "mine.v2")
    assert mine.key not in {m.key for m in M.list_models(None) if m.source != "zoo"}
    assert not (cache_dir / "models" / "weights" / f"{mine.key}.safetensors").exists()
    assert (cache_dir / "artifacts" / "other.npy").exists() and zoo_file.exists()
