"""The shards the teacher trained on (an earlier run's files, from the DVC cache) and the shards
written again by the deterministic serialisation: every record parses to the same features."""
import json
import sys
from pathlib import Path

import tensorflow as tf

old_dir, new_dir = Path(sys.argv[1]), Path(sys.argv[2])


def cache_file(md5):
    return Path(".dvc/cache/files/md5") / md5[:2] / md5[2:]


old = {e["relpath"]: cache_file(e["md5"]) for e in json.loads(cache_file(sys.argv[1]).read_text())}
new = {e["relpath"]: cache_file(e["md5"]) for e in json.loads(cache_file(sys.argv[2]).read_text())}
assert sorted(old) == sorted(new), (sorted(old), sorted(new))
for name in sorted(old):
    if not name.endswith(".tfrecord"):
        assert old[name].read_bytes() == new[name].read_bytes(), name
        continue
    a = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(old[name]))]
    b = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(new[name]))]
    assert len(a) == len(b) and all(x == y for x, y in zip(a, b)), name
    print(f"{name}: {len(a)} records, the same features")
