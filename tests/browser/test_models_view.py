"""The Models view in headless Chromium: upload a checkpoint through the page, find it in the table."""
import shutil

from tests.browser.support import choose


def test_a_checkpoint_uploaded_in_the_page_appears_in_the_table(app_server, page, zoo_dir, tmp_path):
    checkpoint = tmp_path / "my-upload.safetensors"
    shutil.copy(zoo_dir / "digits" / "cnn-w16-s1-e25.safetensors", checkpoint)
    page.goto(app_server.url + "/models")
    page.wait_for_selector("#models-table td", timeout=120_000)
    page.set_input_files("#models-checkpoint-file input[type=file]", str(checkpoint))
    page.click("#models-checkpoint-send")  # architecture cnn-w16 and 10 classes are the defaults
    page.wait_for_selector("#models-checkpoint-message .status-done", timeout=240_000)
    assert "Registered model my-upload (cnn)" in page.inner_text("#models-checkpoint-message")
    assert page.get_attribute("#models-checkpoint-progress", "value") == "1"
    page.fill('#models-table th.dash-filter[data-dash-column="name"] input', "my-upload")
    page.keyboard.press("Enter")
    row = page.wait_for_selector('#models-table td[data-dash-column="name"]:has-text("my-upload")', timeout=30_000)
    assert row.inner_text().strip() == "my-upload"
    assert page.locator("#models-table td[data-dash-column='source']").first.inner_text().strip() == "upload"
    # The selection panel lists it without a reload, and counts it.
    page.wait_for_selector("#selection-summary:has-text('of 113 models')", timeout=30_000)
    choose(page, "selection-models", "my-upload")
    page.wait_for_selector("#selection-summary:has-text('1 of 113 models')", timeout=30_000)


def test_a_bad_checkpoint_shows_the_reason_and_registers_nothing(app_server, page, zoo_dir, tmp_path):
    wrong = tmp_path / "wrong-architecture.safetensors"  # an MLP's weights offered as the default CNN
    shutil.copy(next((zoo_dir / "digits").glob("mlp-*.safetensors")), wrong)
    page.allowed_errors.append("status of 422")  # the refusal is the answer we provoke
    page.goto(app_server.url + "/models")
    page.wait_for_selector("#models-table td", timeout=120_000)
    page.set_input_files("#models-checkpoint-file input[type=file]", str(wrong))
    page.click("#models-checkpoint-send")
    alert = page.wait_for_selector("#models-checkpoint-message .alert-error", timeout=240_000)
    assert "Refused" in alert.inner_text() and "wrong-architecture" not in page.inner_text("#models-table")
