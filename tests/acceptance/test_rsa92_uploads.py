"""The classic RSA files through the chunked upload route of a real app, where they do not fit:
Kriegeskorte et al. (2008)'s brain RDMs for another stimulus set, its model RDMs as images."""
import pytest

from tests.acceptance.test_uploads import upload
from tests.unit.test_matlab_rdms import DATA, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def server(upload_server):
    return upload_server


def test_the_classic_files_are_refused_where_they_do_not_fit(server):
    """The happy path (the 92 images, then the brain and model RDMs over them, through this same
    route) is the browser test's (tests/browser/test_rsa92.py); here, the refusals."""
    status, answer = upload(server, (DATA / "92_brainRDMs.mat").read_bytes(), "92_brainRDMs.mat", kind="reference",
                            stimulus_set="digits")
    assert status == 422 and "RDMs(1,1,1) 'hIT | BE | Session: 1' has shape (92, 92); it is an RDM over 92 " \
                              "stimuli, not 500" in answer["error"], answer
    status, answer = upload(server, (DATA / "92_modelRDMs.mat").read_bytes(), "models.mat", kind="stimuli")
    assert status == 422 and "no struct array of images" in answer["error"] and "Models" in answer["error"], answer
