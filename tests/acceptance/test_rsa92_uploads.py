"""The classic RSA files through the chunked upload route of a real app: Kriegeskorte et al.
(2008)'s 92 images as a stimulus set, then its brain and model RDMs as references over them."""
import json

import pytest

from tests.acceptance.test_uploads import upload
from tests.browser.support import AppServer
from tests.unit.test_matlab_rdms import DATA, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def server(zoo_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("app")
    app = AppServer(directory / "cache", zoo_dir, directory, env={"REPSCOPE_UPLOAD_DIR": str(directory / "uploads")})
    app.start()
    app.directory = directory
    yield app
    app.stop()


def test_the_92_images_then_the_brain_and_model_rdms(server):
    status, images = upload(server, (DATA / "Kriegeskorte_Neuron2008_supplementalData.mat").read_bytes(),
                            "Kriegeskorte_Neuron2008_supplementalData.mat", kind="stimuli")
    assert status == 200 and images["ok"], images
    assert (images["images"], images["num_classes"]) == (92, 6)
    stimulus_set = images["stimulus_set"]
    folder = server.directory / "uploads" / "stimuli" / stimulus_set.removeprefix("upload:")
    listing = json.loads((folder / "stimuli.json").read_text())
    assert len(listing["files"]) == 92 and listing["classes"][0] == "human bodypart"

    status, brain = upload(server, (DATA / "92_brainRDMs.mat").read_bytes(), "92_brainRDMs.mat", kind="reference",
                           stimulus_set=stimulus_set)
    assert status == 200 and brain["ok"], brain
    assert (brain["name"], brain["subjects"], brain["stimuli"]) == ("92_brainRDMs", 4, 92)
    assert brain["subject_names"] == ["hIT | BE", "hIT | KO", "hIT | SN", "hIT | TI"]
    status, models = upload(server, (DATA / "92_modelRDMs.mat").read_bytes(), "92_modelRDMs.mat", kind="reference",
                            stimulus_set=stimulus_set)
    assert status == 200 and models["subjects"] == 8 and models["subject_names"][2] == "monkeyIT"
    stored = json.loads((server.directory / "uploads" / "references" / f"{brain['reference']}.json").read_text())
    assert stored["subject_names"] == brain["subject_names"] and stored["stimulus_set"] == stimulus_set

    status, answer = upload(server, (DATA / "92_brainRDMs.mat").read_bytes(), "92_brainRDMs.mat", kind="reference",
                            stimulus_set="digits")
    assert status == 422 and "RDMs(1,1,1) 'hIT | BE | Session: 1' has shape (92, 92); it is an RDM over 92 " \
                              "stimuli, not 500" in answer["error"], answer
    status, answer = upload(server, (DATA / "92_modelRDMs.mat").read_bytes(), "models.mat", kind="stimuli")
    assert status == 422 and "no struct array of images" in answer["error"] and "Models" in answer["error"], answer
