"""One YAML loader for the spec and params.yaml: safe, and a repeated key is an error.

PyYAML keeps the last of two equal keys in a mapping without a word, so a second
`tol:` in params.yaml or a second `label:` in the spec would silently replace the
first. `load_strict` refuses such a document, naming the key's path and line.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(ValueError):
    """A mapping holds the same key twice; `path` is the dotted key path, `line` 1-based."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line
        super().__init__(f"duplicate key '{path}' (line {line})")

    @property
    def problem(self) -> str:
        """The problem without the key, for errors that name the key themselves."""
        return f"duplicate key (line {self.line}); the second value would silently replace the first"


class StrictLoader(yaml.SafeLoader):
    """A `yaml.SafeLoader` that rejects duplicate mapping keys (with merge keys flattened first)."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_unique_keys(node, (), set())
        return super().construct_document(node)

    def _check_unique_keys(self, node: yaml.Node, path: tuple[str, ...], seen_nodes: set[int]) -> None:
        if id(node) in seen_nodes:  # an alias to a node already checked
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            keys: set[Any] = set()
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else key_node.value
                name = str(key)
                try:
                    repeated = key in keys
                    keys.add(key)
                except TypeError:  # an unhashable key: PyYAML reports it when it constructs the mapping
                    repeated = False
                if repeated:
                    raise DuplicateKeyError(".".join((*path, name)), key_node.start_mark.line + 1)
                self._check_unique_keys(value_node, (*path, name), seen_nodes)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_unique_keys(item, (*path, str(index)), seen_nodes)


def load_strict(text: str) -> Any:
    """Parse one YAML document; raises `DuplicateKeyError` or `yaml.YAMLError`."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
