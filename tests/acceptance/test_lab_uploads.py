"""Weights for a lab's installed architecture, uploaded through the chunked route of a real app
whose upload checker finds the lab package through its entry points."""
import pytest
import torch
from safetensors.torch import save_file

from tests.acceptance.test_uploads import refused, upload
from tests.browser.support import AppServer


@pytest.fixture(scope="module")
def server(zoo_dir, lab_models, tmp_path_factory):
    directory = tmp_path_factory.mktemp("app")
    app = AppServer(directory / "cache", zoo_dir, directory, env={"REPSCOPE_UPLOAD_DIR": str(directory / "uploads")})
    app.start()
    yield app
    app.stop()


def test_lab_weights_upload_and_register_and_wrong_ones_are_refused(server, tmp_path):
    from repscope_lab_models import lab_cnn

    torch.manual_seed(0)
    save_file(lab_cnn(num_classes=10, image_shape=(1, 8, 8)).state_dict(), str(tmp_path / "lab.safetensors"))
    status, answer = upload(server, (tmp_path / "lab.safetensors").read_bytes(), "my-lab-cnn.safetensors",
                            architecture="lab:lab_cnn", num_classes=10)
    assert status == 200 and answer["ok"], answer
    assert answer["model"] == "my-lab-cnn" and answer["architecture"] == "lab:lab_cnn"
    save_file(lab_cnn(num_classes=10, width=4).state_dict(), str(tmp_path / "narrow.safetensors"))
    refused(server, (tmp_path / "narrow.safetensors").read_bytes(), "narrow.safetensors",
            "do not fit the architecture LabCNN", "block1.0.weight", architecture="lab:lab_cnn", num_classes=10)
    refused(server, (tmp_path / "lab.safetensors").read_bytes(), "lab.safetensors",
            "no lab architecture 'lab_resnet'", architecture="lab:lab_resnet", num_classes=10)
