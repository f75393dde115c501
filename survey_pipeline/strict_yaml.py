"""One YAML loader for the spec and params.yaml: safe, a repeated key and an ambiguous number are errors.

PyYAML keeps the last of two equal keys in a mapping without a word, so a second
`tol:` in params.yaml or a second `label:` in the spec would silently replace the
first. PyYAML also follows YAML 1.1, where `010` is octal 8, `1:40` is base-60 100,
`0x64` is hex and `_` is ignored: a `max_iter: 010` or a spec code `010:` would be
read as another number. `load_strict` refuses such a document, naming the key's
path and line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(
    r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


class StrictYamlError(ValueError):
    """A document PyYAML would read without a word but not as written; `path` is the dotted key path,
    `line` 1-based, `problem` the problem without the key (for errors that name the key themselves)."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(f"key '{path}' (line {line}): {problem}")


class DuplicateKeyError(StrictYamlError):
    """A mapping holds the same key twice."""

    def __init__(self, path: str, line: int) -> None:
        super().__init__(path, line, f"duplicate key (line {line}); the second value would silently replace the first")


class AmbiguousNumberError(StrictYamlError):
    """A number YAML 1.1 reads as another number than the decimal digits a reader sees."""

    def __init__(self, path: str, line: int, text: str, value: Any) -> None:
        super().__init__(
            path,
            line,
            f"the number {text!r} would be read as {value} (YAML 1.1 reads a leading 0 as "
            "octal, 0x as hex, ':' as base 60 and ignores '_'); write it in plain decimal digits",
        )


class StrictLoader(yaml.SafeLoader):
    """A `yaml.SafeLoader` that rejects duplicate mapping keys (with merge keys flattened first) and
    numbers not written in plain decimal digits."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_unique_keys(node, (), set())
        return super().construct_document(node)

    def _check_unique_keys(self, node: yaml.Node, path: tuple[str, ...], seen_nodes: set[int]) -> None:
        if id(node) in seen_nodes:  # an alias to a node already checked
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            self._check_plain_number(node, path)
        elif isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            keys: set[Any] = set()
            for key_node, value_node in node.value:
                key = (
                    self.construct_object(key_node, deep=True)
                    if isinstance(key_node, yaml.ScalarNode)
                    else key_node.value
                )
                name = str(key)
                try:
                    repeated = key in keys
                    keys.add(key)
                except TypeError:  # an unhashable key: PyYAML reports it when it constructs the mapping
                    repeated = False
                if repeated:
                    raise DuplicateKeyError(".".join((*path, name)), key_node.start_mark.line + 1)
                if isinstance(key_node, yaml.ScalarNode):
                    self._check_plain_number(key_node, (*path, key_node.value))
                self._check_unique_keys(value_node, (*path, name), seen_nodes)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_unique_keys(item, (*path, str(index)), seen_nodes)

    def _check_plain_number(self, node: yaml.ScalarNode, path: tuple[str, ...]) -> None:
        plain = {_INT_TAG: _PLAIN_INT, _FLOAT_TAG: _PLAIN_FLOAT}.get(node.tag)
        if plain is not None and not plain.fullmatch(node.value):
            raise AmbiguousNumberError(
                ".".join(path), node.start_mark.line + 1, node.value, self.construct_object(node)
            )


def load_strict(text: str) -> Any:
    """Parse one YAML document; raises `StrictYamlError` (`DuplicateKeyError`, `AmbiguousNumberError`)
    or `yaml.YAMLError`."""
    return yaml.load(text, Loader=StrictLoader)
