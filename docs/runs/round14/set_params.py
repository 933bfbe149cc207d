"""Set params.yaml keys as `dvc exp run -S key=value` would (values read as YAML 1.2), keeping
comments: python set_params.py params.yaml key=value ..."""
import io
import sys

from ruamel.yaml import YAML

path, pairs = sys.argv[1], sys.argv[2:]
yaml = YAML()
yaml.preserve_quotes = True
with open(path) as handle:
    data = yaml.load(handle)
for pair in pairs:
    key, _, text = pair.partition("=")
    value = YAML(typ="safe").load(io.StringIO(text))
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    if parts[-1] not in node:
        sys.exit(f"unknown key {key}")
    node[parts[-1]] = value
with open(path, "w") as handle:
    yaml.dump(data, handle)
