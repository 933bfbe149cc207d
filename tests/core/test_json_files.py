"""The JSON files stages write: their folder made, indented, a final newline, ASCII unless asked."""
import json

from stages.common.core.json_files import write_json


def test_write_json_makes_the_folder_and_writes_indented_json(tmp_path):
    path = tmp_path / "new" / "folder" / "metrics.json"
    write_json(path, {"class": "café", "f1": 0.5})
    text = path.read_text(encoding="utf-8")
    assert text == '{\n  "class": "caf\\u00e9",\n  "f1": 0.5\n}\n'
    write_json(path, {"class": "café"}, ensure_ascii=False)
    assert path.read_bytes() == '{\n  "class": "café"\n}\n'.encode("utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == {"class": "café"}
