"""The classic RSA data in headless Chromium, as a new user would bring them: Kriegeskorte et al.
(2008)'s 92 images uploaded as a .mat on the Models page, its human-IT RDMs (4 subjects x 2
sessions) and model RDMs uploaded as references, then two random-init torchvision networks and
the monkey-IT RDM ranked against human IT with the noise ceiling, every number as compute gives it."""
import hashlib

import numpy as np
import pytest
import scipy.stats

import compute
from compute.sources import references as R
from compute.sources.activations import extract
from compute.sources.layers import list_layers
from compute.sources.models import load_model, register_model
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import MODELS_GRID, choose, confirm_until, running_app, wait_for_figures
from tests.browser.test_reference_view import BARS
from tests.unit.test_matlab_rdms import DATA, needs_data

pytestmark = needs_data
NETWORKS = {"resnet18-random": "resnet18", "squeezenet1_0-random": "squeezenet1_0"}
BAR_LABELS = """id => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
  return !!el && !!el._fullLayout && Array.from(el._fullLayout.yaxis.categoryarray || []); }"""


def _upload(page, form, path, expect):
    """Upload ``path`` through the form and wait for its answer, which says ``expect``."""
    page.set_input_files(f"#{form}-file input[type=file]", str(path))
    page.click(f"#{form}-send")
    return page.wait_for_selector(f"#{form}-message .status-done:has-text('{expect}')", timeout=240_000).inner_text()


def _penultimate_rdm(name, stimuli):
    model = load_model(name)
    layer = next(i.name for i in list_layers(model) if i.penultimate)
    return compute.rdm(extract(model, stimuli.images, [layer])[layer], method="euclidean", condensed=True)


def test_rank_networks_and_monkey_it_against_human_it(zoo_dir, tmp_path, page, monkeypatch):
    supplement = DATA / "Kriegeskorte_Neuron2008_supplementalData.mat"
    stimulus_set = "upload:" + hashlib.sha256(supplement.read_bytes()).hexdigest()
    with running_app(zoo_dir, tmp_path) as app:
        page.goto(app.url + "/models")
        page.wait_for_selector(MODELS_GRID, timeout=120_000)
        _upload(page, "models-stimuli", supplement, "Stimulus set ready: 92 images in 6 classes")

        monkeypatch.setenv("REPSCOPE_CACHE_DIR", str(tmp_path / "cache"))  # the app's registry and uploads
        stimuli = get_stimulus_set(stimulus_set)
        for name, architecture in NETWORKS.items():  # random init: nothing downloaded
            register_model(name, architecture, seed=0, stimulus_set=stimulus_set)

        page.goto(app.url + f"/reference?set={stimulus_set}&models={','.join(NETWORKS)}")
        page.wait_for_selector("#reference-upload-file input[type=file]", timeout=120_000)
        message = _upload(page, "reference-upload", DATA / "92_brainRDMs.mat", "92_brainRDMs (4 subject(s) over 92")
        assert message.endswith("hIT | BE, hIT | KO, hIT | SN, hIT | TI")
        message = _upload(page, "reference-upload", DATA / "92_modelRDMs.mat", "92_modelRDMs (8 subject(s)")
        assert "animacy, FaceBodyManmadeNatobj, monkeyIT" in message
        choose(page, "reference-ref-choice", "92_brainRDMs")  # the new upload was chosen: back to human IT
        choose(page, "reference-cand-choice", "92_modelRDMs · monkeyIT")
        # the chosen candidate joins the bars (after Compute, where the view asks for it)
        confirm_until(page, "reference", f"label => ({BAR_LABELS})('reference-bars').includes(label)",
                      "92_modelRDMs · monkeyIT", timeout=300_000)
        wait_for_figures(page, "reference", ("bars", "pairs"), timeout=300_000)  # the bootstrap drawn too
        assert page.query_selector("#reference-progress .status-failed") is None
        drawn = page.evaluate(BARS, "reference-bars")
        page.goto("about:blank")  # no poll left running when the app stops

    brain = R.read_reference(DATA / "92_brainRDMs.mat", ".mat", 92)
    models, names = R.read_named_reference(DATA / "92_modelRDMs.mat", ".mat", 92)
    expected = {f"{name} · penultimate": _penultimate_rdm(name, stimuli) for name in NETWORKS}
    expected["92_modelRDMs · monkeyIT"] = models[names.index("monkeyIT")]
    bars = {label: (x, trace["name"]) for trace in drawn["bars"] for label, x in zip(trace["y"], trace["x"])}
    assert set(bars) == set(expected)
    for label, rdm in expected.items():
        mean = np.mean([scipy.stats.spearmanr(rdm, subject)[0] for subject in brain])
        assert bars[label][0] == pytest.approx(mean, abs=1e-4), label
    assert bars["92_modelRDMs · monkeyIT"][1] == "reference RDM"
    assert drawn["order"][0] == "92_modelRDMs · monkeyIT"  # monkey IT beats the random-init networks
    lower, upper = compute.noise_ceiling(brain, "spearman")
    np.testing.assert_allclose(drawn["bands"], [[lower, upper]], atol=1e-9)
