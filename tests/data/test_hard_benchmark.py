"""The hard benchmark's generator: images without labels beside the labelled splits."""
import hashlib
from pathlib import Path


def _digests(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def test_unlabelled_images_come_beside_the_same_labelled_splits(tmp_path):
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.hard_benchmark import write_benchmark_dataset
    from stages.common.data.unlabelled_images import read_unlabelled

    counts = {"train": 30, "val": 2, "test": 2}
    written = write_benchmark_dataset(tmp_path / "pool", counts, seed=3, unlabelled=5)
    assert written == {**counts, "unlabelled": 5}
    write_benchmark_dataset(tmp_path / "plain", counts, seed=3)
    write_benchmark_dataset(tmp_path / "again", counts, seed=3, unlabelled=5)
    pool, plain = _digests(tmp_path / "pool"), _digests(tmp_path / "plain")
    # the labelled splits are those written without the pool, byte for byte; the same seed
    # gives the same files
    assert {name: digest for name, digest in pool.items() if name in plain} == plain
    assert pool == _digests(tmp_path / "again")
    names = (tmp_path / "pool" / "unlabelled.txt").read_text().split()
    assert names == [f"unlabelled_{i:04d}.jpg" for i in range(5)]  # names only, no labels
    assert "unlabelled.txt" not in plain
    labelled = validate_dataset(tmp_path / "pool", max_pixels=10**7)
    images = read_unlabelled(tmp_path / "pool", labelled, 10**7)
    assert [r.name for r in images.splits["unlabelled"]] == names and not images.defects
