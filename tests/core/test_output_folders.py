"""Folders a stage replaces: somebody else's folder is never emptied, a failure leaves the
previous content, and the new content appears whole."""
import subprocess
import sys
from pathlib import Path

import pytest

from stages.common.core import output_folders
from stages.common.core.errors import UserError
from stages.common.core.output_folders import MARKER, check_replaceable, replaced_folder

REPO = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _write(folder: Path, files: dict) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)


@pytest.fixture(params=["exchange", "two renames"])
def swap(request, monkeypatch):
    """Both ways of swapping in: renameat2's exchange, and the two-rename fallback."""
    if request.param == "two renames":
        monkeypatch.setattr(output_folders, "_exchange", lambda first, second: False)
    return request.param


def test_new_then_replaced_whole(tmp_path, swap):
    target = tmp_path / "out"
    with replaced_folder(target) as staging:
        _write(staging, {"a.txt": "1", "b.txt": "2"})
        assert not target.exists()  # nothing appears before the block ends
    assert _tree(target) == {MARKER: (target / MARKER).read_bytes(), "a.txt": b"1", "b.txt": b"2"}
    with replaced_folder(target) as staging:
        _write(staging, {"c.txt": "3"})
        assert _tree(target)["a.txt"] == b"1"  # the previous content is intact until the swap
    assert sorted(_tree(target)) == [MARKER, "c.txt"]  # a stale file does not linger
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_foreign_folder_is_refused_and_left_untouched(tmp_path):
    target = tmp_path / "Documents"
    target.mkdir()
    _write(target, {"thesis.txt": "years of work"})
    with pytest.raises(UserError) as caught:
        with replaced_folder(target, what="a demo dataset"):
            raise AssertionError("must not get here")
    assert f"{target}: this folder is not empty and does not hold a demo dataset" in str(
        caught.value
    )
    assert _tree(target) == {"thesis.txt": b"years of work"}
    assert [p.name for p in tmp_path.iterdir()] == ["Documents"]


def test_empty_folder_is_fine_and_a_file_or_link_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with replaced_folder(tmp_path / "empty") as staging:
        _write(staging, {"x": "1"})
    assert (tmp_path / "empty" / "x").read_text() == "1"
    (tmp_path / "file").write_text("data")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_replaceable(tmp_path / "file")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UserError, match="is a symbolic link"):
        check_replaceable(tmp_path / "link")


def test_an_error_midway_keeps_the_previous_content(tmp_path, swap):
    target = tmp_path / "out"
    with replaced_folder(target) as staging:
        _write(staging, {"a.txt": "old"})
    before = _tree(target)
    with pytest.raises(KeyboardInterrupt):
        with replaced_folder(target) as staging:
            _write(staging, {"a.txt": "new, half written"})
            raise KeyboardInterrupt
    assert _tree(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_kill_during_the_swap_never_loses_both_contents(tmp_path, swap, monkeypatch):
    """Killed at the moment the new folder is renamed into place: either the new content is
    complete in place, or the previous content is still whole (in place, or in the retired
    folder beside it). Deleting the previous folder and then renaming would lose both."""
    import os

    target = tmp_path / "out"
    with replaced_folder(target) as staging:
        _write(staging, {"a.txt": "old"})
    before = {name: data for name, data in _tree(target).items()}
    real_replace = os.replace

    def killed_on_the_way_in(source, destination):
        if Path(destination) == target and ".writing-" in Path(source).name:
            raise KeyboardInterrupt
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", killed_on_the_way_in)
    try:
        with replaced_folder(target) as staging:
            _write(staging, {"a.txt": "new"})
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    new_in_place = target.is_dir() and (target / "a.txt").read_text() == "new"
    kept = [folder for folder in [target, *tmp_path.glob(".out.replaced-*/content")]
            if folder.is_dir() and _tree(folder) == before]
    assert new_in_place or kept, sorted(str(p) for p in tmp_path.rglob("*"))


def test_leftovers_of_a_killed_run_are_cleaned_up(tmp_path):
    target = tmp_path / "out"
    (tmp_path / ".out.writing-abc123").mkdir()
    (tmp_path / ".out.writing-abc123" / "partial.bin").write_bytes(b"\0")
    (tmp_path / ".other.writing-abc123").mkdir()  # another folder's: not ours to clean here
    with replaced_folder(target) as staging:
        _write(staging, {"a.txt": "1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.writing-abc123", "out"]


@pytest.mark.stage_process
def test_demo_data_stage_refuses_a_users_dataset(tmp_path):
    users = tmp_path / "my_dataset"
    (users / "images").mkdir(parents=True)
    _write(users, {"train.txt": "a.jpg,cat\n"})
    result = subprocess.run([sys.executable, "-m", "stages.make_demo_data", "--params",
                             str(REPO / "params.yaml"), "--out", str(users)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{users}: this folder is not empty and does not hold a demo dataset" in result.stderr
    assert _tree(users) == {"train.txt": b"a.jpg,cat\n"}


def test_resume_state_refuses_a_folder_that_is_not_its_own(tmp_path):
    from stages.common.training.resume import ResumeState

    foreign = tmp_path / "checkpoints"
    foreign.mkdir()
    _write(foreign, {"notes.txt": "mine"})
    with pytest.raises(UserError, match="does not hold resume checkpoints"):
        ResumeState(foreign, "key")
    assert _tree(foreign) == {"notes.txt": b"mine"}
    state = ResumeState(tmp_path / "own", "key-1")
    (state.directory / "phase_done.json").write_text("{}")
    ResumeState(tmp_path / "own", "key-2")  # its own, from other params: cleared and reused
    assert _tree(tmp_path / "own") == {"fingerprint.txt": b"key-2"}


@pytest.mark.stage_process
def test_cli_refuses_an_out_dir_holding_other_files_before_any_stage(tmp_path):
    from stages.common.data.demo_data import write_demo_dataset

    write_demo_dataset(tmp_path / "data", {"train": 2, "val": 1, "test": 1}, seed=2)
    out = tmp_path / "home"
    out.mkdir()
    _write(out, {"photo.jpg": "precious"})
    result = subprocess.run([sys.executable, "-m", "tools.cli", "train", "--data_dir",
                             str(tmp_path / "data"), "--out_dir", str(out), "--work_dir",
                             str(tmp_path / "work")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{out}: this folder is not empty" in result.stderr
    assert "== [1/" not in result.stdout  # refused before the first stage
    assert _tree(out) == {"photo.jpg": b"precious"}


def test_prepare_writes_its_folder_whole(tmp_path, monkeypatch):
    """A kill after prepare's first file left labels.txt of the new run beside dataset.json of
    the old one. Now the folder is written beside and swapped in: a failure part-way leaves
    the previous files, byte for byte, and nothing else."""
    from stages.common.data import dataset as dataset_module
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.demo_data import write_demo_dataset

    write_demo_dataset(tmp_path / "demo", {"train": 24, "val": 12, "test": 12}, seed=11)
    dataset = validate_dataset(tmp_path / "demo", max_pixels=10**7)
    out = tmp_path / "prepared"
    dataset_module.write_prepared(out, dataset)
    assert sorted(p.name for p in out.iterdir()) == sorted(dataset_module.PREPARED_FILES)
    before = _tree(out)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset_module.json, "dumps", killed)  # after labels.txt is written
    with pytest.raises(KeyboardInterrupt):
        dataset_module.write_prepared(out, dataset)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "prepared"]  # no staging left
    monkeypatch.undo()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="not empty and does not hold the prepare stage's output"):
        dataset_module.write_prepared(tmp_path / "mine", dataset)


def test_each_refusal_says_what_to_do(tmp_path):
    (tmp_path / "file").write_text("data")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("1")
    for name, message in (
            ("link", "is a symbolic link; name a real folder for the report, so nothing it "
                     "points to is replaced"),
            ("file", "is a file, not a folder; name a folder for the report"),
            ("full", "this folder is not empty and does not hold the report, so it is left "
                     "untouched; name a new or empty folder, or move its files away first")):
        with pytest.raises(UserError) as caught:
            check_replaceable(tmp_path / name, what="the report")
        assert str(caught.value) == f"{tmp_path / name}: {message}"
    check_replaceable(tmp_path / "absent")
    check_replaceable(tmp_path / "full", owned=lambda folder: (folder / "x").is_file())
    with pytest.raises(UserError, match="does not hold an output of this pipeline, so"):
        check_replaceable(tmp_path / "full")


def test_an_unreadable_folder_is_named(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()

    def unreadable(folder):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output_folders, "_is_empty", unreadable)
    with pytest.raises(UserError) as caught:
        check_replaceable(tmp_path / "out")
    assert str(caught.value) == f"{tmp_path / 'out'}: cannot be read: Permission denied"


def test_the_result_has_the_usual_permissions_and_the_marker_text(tmp_path):
    import os

    previous = os.umask(0o027)
    try:
        assert output_folders._umask() == 0o027
        assert output_folders._umask() == 0o027  # asking does not change it
        with replaced_folder(tmp_path / "out") as staging:
            _write(staging, {"a.txt": "1"})
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "out" / MARKER).read_text() == (
        "This folder is written whole by a stage of the multi-label pipeline and replaced on its "
        "next run.\n")
    with replaced_folder(tmp_path / "plain", mark=False) as staging:
        _write(staging, {"a.txt": "1"})
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["a.txt"]


def test_leftovers_of_both_kinds_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".out.writing-1").mkdir()
    (tmp_path / ".out.replaced-2").mkdir()
    (tmp_path / ".out.replaced-2" / "content").mkdir()
    (tmp_path / ".out.writing-file").write_text("a file of that name is not ours")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".out.writing-link").symlink_to(tmp_path / "elsewhere")
    output_folders._remove_leftovers(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.writing-file",
                                                          ".out.writing-link", "elsewhere"]


def test_a_leftover_that_cannot_be_removed_does_not_stop_the_run(tmp_path, monkeypatch):
    import os

    (tmp_path / ".out.writing-1").mkdir()
    (tmp_path / ".out.writing-1" / "stuck").write_text("")
    real_unlink = os.unlink

    def refusing(path, *args, **kwargs):
        if str(path).endswith("stuck"):
            raise PermissionError(1, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refusing)
    with replaced_folder(tmp_path / "out") as staging:
        _write(staging, {"a.txt": "1"})
    assert (tmp_path / "out" / "a.txt").read_text() == "1"


def test_without_renameat2_the_exchange_says_so(monkeypatch):
    import ctypes

    def no_library(*args, **kwargs):
        raise OSError("no libc here")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert output_folders._exchange(Path("a"), Path("b")) is False


def test_the_exchange_takes_paths_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    Path("a", "from_a").write_text("")
    Path("b").mkdir()
    assert output_folders._exchange(Path("a"), Path("b")) is True
    assert [p.name for p in Path("b").iterdir()] == ["from_a"]


def test_the_exchange_swaps_two_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "from_a").write_text("")
    (tmp_path / "b").mkdir()
    assert output_folders._exchange(tmp_path / "a", tmp_path / "b") is True
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["from_a"]
    assert not any((tmp_path / "a").iterdir())
    assert output_folders._exchange(tmp_path / "a", tmp_path / "absent") is False


@pytest.mark.parametrize("exchange", [True, False])
def test_swapping_in_leaves_only_the_new_content(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(output_folders, "_exchange", lambda first, second: False)
    target, staging = tmp_path / "out", tmp_path / "staging"
    for content in ("old", "new"):
        folder = target if content == "old" else staging
        folder.mkdir()
        (folder / f"{content}.txt").write_text(content)
    output_folders._swap_in(staging, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]
