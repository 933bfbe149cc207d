"""YAML files read as YAML 1.2, the version DVC writes, with the line of every key.

``dvc exp run -S qat.lr=1e-5`` stores ``lr: 1e-05``, a number in YAML 1.2 but a string for a
YAML 1.1 reader such as PyYAML. ruamel.yaml (DVC's own YAML library) reads it, so any value DVC
writes comes back as the same value. A key given twice is an error naming both lines (YAML 1.1
readers keep the last one silently); anchors, aliases and deep nesting are refused before the
file is composed.
"""
from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from stages.common.core.errors import UserError, read_utf8


def _yaml() -> YAML:
    return YAML(typ="safe", pure=True)  # YAML 1.2, plain Python values


def _key_lines(node: Node, prefix: str = "", duplicates: list | None = None) -> dict[str, int]:
    """The line (1-based) of every mapping key; a key met twice in one mapping is appended to
    ``duplicates`` as (path, first line, second line)."""
    lines: dict[str, int] = {}
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            line = key_node.start_mark.line + 1
            if path in lines and duplicates is not None:
                duplicates.append((path, lines[path], line))
            else:
                lines[path] = line
            lines.update(_key_lines(value_node, path + ".", duplicates))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_key_lines(item, f"{prefix}{index}.", duplicates))
    return lines


MAX_NESTING = 8  # params.yaml nests 3 deep; DVC writes no anchors or aliases


def _check_structure(text: str, path: Path) -> None:
    """UserError for anchors and aliases (nine lines of them can expand to billions of values)
    and for nesting deeper than MAX_NESTING, found by the scanner, which neither expands nor
    recurses, before the composer (which does both) sees the text."""
    depth = 0
    for token in _yaml().scan(text):
        kind = type(token).__name__
        if kind in ("AnchorToken", "AliasToken"):
            raise UserError(f"{path}:{token.start_mark.line + 1}: YAML anchors and aliases "
                            f"(&name, *name) are not accepted; write each value out")
        if kind in ("BlockMappingStartToken", "BlockSequenceStartToken",
                    "FlowMappingStartToken", "FlowSequenceStartToken"):
            depth += 1
            if depth > MAX_NESTING:
                raise UserError(f"{path}:{token.start_mark.line + 1}: nested more than "
                                f"{MAX_NESTING} levels deep; params.yaml has sections of "
                                "plain values")
        elif kind in ("BlockEndToken", "FlowMappingEndToken", "FlowSequenceEndToken"):
            depth -= 1


def read_yaml(path: str | Path) -> tuple[object, dict[str, int]]:
    """Parse a YAML 1.2 file; returns the data and the line of every key (UserError if the file
    is unreadable, not YAML, gives a key twice, uses anchors or aliases, or nests too deep)."""
    path = Path(path)
    text = read_utf8(path, "file not found (run from the repository root)", bom=True)
    try:
        _check_structure(text, path)
        node = _yaml().compose(text)
        duplicates: list = []
        lines = _key_lines(node, duplicates=duplicates) if node is not None else {}
        if duplicates:
            listed = "\n".join(f"  {path}:{second}: {key} is given again (first on line {first})"
                               for key, first, second in duplicates)
            raise UserError(f"{path} gives {len(duplicates)} key(s) twice; keep one of each:\n"
                            f"{listed}")
        data = _yaml().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = error.problem or error.context or str(error)
        raise UserError(f"{path}{line}: not valid YAML: {problem}") from None
    except YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {error}") from None
    return data, lines


def write_yaml(path: str | Path, data: dict) -> None:
    """Write params the way DVC does (YAML 1.2), so ``read_yaml`` gives the same values back."""
    writer = _yaml()
    writer.default_flow_style = False
    writer.sort_base_mapping_type_on_output = False
    with open(path, "w", encoding="utf-8") as handle:
        writer.dump(data, handle)
