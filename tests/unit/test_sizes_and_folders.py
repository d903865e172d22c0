"""The one formatter of sizes in messages, and private folders whatever the umask."""
import os
import stat

import pytest

from compute.settings import format_bytes, private_dir
from compute.sources.files import exclusive_lock


@pytest.mark.parametrize("size, shown", [
    (0, "0 bytes"), (1, "1 byte"), (1000, "1000 bytes"), (1024, "1.0 KiB"), (300_000, "293 KiB"),
    (64 * 2**20, "64.0 MiB"), (512 * 2**20, "512 MiB"), (2**30, "1.0 GiB"), (7.5 * 2**30, "7.5 GiB"),
    (16 * 2**30, "16.0 GiB"), (3 * 2**40, "3.0 TiB"),
])
def test_sizes_are_shown_in_the_unit_that_fits(size, shown):
    assert format_bytes(size) == shown


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_missing_parents_are_made_private_too(tmp_path, umask_022):
    tmp_path.chmod(0o755)
    target = private_dir(tmp_path / "a" / "b" / "c")
    assert target == tmp_path / "a" / "b" / "c" and target.is_dir()
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3
    assert mode(tmp_path) == 0o755  # a folder that was there (the operator's) is left as it is


def test_an_existing_folder_of_ours_is_tightened_unless_told_not_to(tmp_path, umask_022):
    (tmp_path / "old").mkdir(mode=0o755)
    (tmp_path / "kept").mkdir(mode=0o755)
    private_dir(tmp_path / "old")
    private_dir(tmp_path / "kept", tighten=False)
    assert (mode(tmp_path / "old"), mode(tmp_path / "kept")) == (0o700, 0o755)


def test_a_lock_makes_its_folder_and_file_private(tmp_path, umask_022):
    with exclusive_lock(tmp_path / "zoo" / ".digits.lock"):
        pass
    assert mode(tmp_path / "zoo") == 0o700 and mode(tmp_path / "zoo" / ".digits.lock") == 0o600
