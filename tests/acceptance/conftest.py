"""What the upload acceptance tests share: a real app process with its own cache and upload folder."""
import pytest

from tests.browser.support import AppServer


@pytest.fixture(scope="module")
def upload_server(zoo_dir, tmp_path_factory):
    """The app on a private cache and ``REPSCOPE_UPLOAD_DIR`` (``app.directory`` holds both)."""
    directory = tmp_path_factory.mktemp("app")
    app = AppServer(directory / "cache", zoo_dir, directory, env={"REPSCOPE_UPLOAD_DIR": str(directory / "uploads")})
    app.start()
    app.directory = directory
    yield app
    app.stop()
