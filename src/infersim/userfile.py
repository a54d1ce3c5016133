"""One loading path for every file a user names: device YAMLs, model config.json files,
scenarios, studies, pipelines and measurement files.

Each reader here turns every way a file can be wrong into a :class:`ConfigError` naming the
file, the dotted field where there is one, and what was expected:

* the file is missing, a directory, unreadable (permissions) or larger than a size limit;
* it is not UTF-8 text (a UTF-8 byte-order mark is accepted and dropped);
* it is not valid YAML / JSON, repeats a key in one mapping (YAML and JSON would silently keep
  the last one), or nests deeper than :data:`MAX_DEPTH` levels (Python's parsers recurse and
  would end in RecursionError);
* YAML anchors expand to more than :data:`MAX_NODES` values ("billion laughs");
* a number is not finite (``.nan``, ``.inf``, ``NaN``, ``Infinity``, ``1e400`` and the same
  spellings as strings, which pydantic would turn into floats) or an integer exceeds 2**53,
  the largest a float holds exactly, which every cost formula works in.

The rules are listed with their reasons in ``docs/input-validation.md``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

#: configuration files (YAML / JSON) are small; 16 MiB is thousands of times a large one
#: and keeps a mistaken path (a log, a checkpoint) from being read into memory
MAX_CONFIG_BYTES = 16 * 2**20
#: data files (measurement tables, traces): 2 GiB
MAX_DATA_BYTES = 2 * 2**30
#: nesting levels of a YAML / JSON document; the deepest bundled file uses 5
MAX_DEPTH = 64
#: values a YAML document may expand to through anchors and aliases
MAX_NODES = 1_000_000
#: the largest integer a float64 represents exactly
MAX_INT = 2**53

_NONFINITE_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity",
                    ".nan", ".inf", "+.inf", "-.inf"}
_NUMBER = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?$")


# ------------------------------------------------------------------------------------------------
# bytes and text
def check_readable(path: str | Path, max_bytes: int = MAX_DATA_BYTES) -> Path:
    """``path`` as a Path if it is a readable regular file of at most ``max_bytes``; else ConfigError."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except PermissionError:
        raise ConfigError(path, None, "cannot read the file: permission denied") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    if path.is_dir():
        raise ConfigError(path, None, "is a directory; expected a file")
    if st.st_size > max_bytes:
        raise ConfigError(path, None, f"file is {st.st_size:,} bytes; files of this kind are limited to "
                                      f"{max_bytes:,} bytes")
    return path


def read_bytes(path: str | Path, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a user's file, with every OS-level failure as a ConfigError."""
    path = check_readable(path, max_bytes)
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError:
        raise ConfigError(path, None, "cannot read the file: permission denied") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ConfigError(path, None, f"file is larger than the limit of {max_bytes:,} bytes")
    return data


def decode_text(data: bytes, origin: object) -> str:
    """UTF-8 text of ``data`` (a leading byte-order mark dropped); ConfigError naming the bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(origin, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); "
                                        "save the file as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise ConfigError(origin, None, "contains NUL characters; expected a text file")
    return text


def read_text(path: str | Path, max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """The UTF-8 text of a user's file (size-limited, every failure a ConfigError)."""
    return decode_text(read_bytes(path, max_bytes), path)


# ------------------------------------------------------------------------------------------------
# YAML
class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, deep nesting and alias bombs."""

    def __init__(self, stream, origin: object):
        super().__init__(stream)
        self._origin = origin
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(self._origin, None, f"nested more than {MAX_DEPTH} levels deep "
                                                      f"(line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue
                if key in seen:
                    raise ConfigError(self._origin, str(key),
                                      f"key appears twice in one mapping (lines {seen[key]} and "
                                      f"{key_node.start_mark.line + 1}); keep one")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node, memo: dict[int, int]) -> int:
    """Values ``node`` stands for once every alias is expanded (memoized per node: linear time)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once; construction of such a node is rejected below
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_NODES + 1)
    return memo[key]


def _yaml_error(origin: object, exc: yaml.YAMLError) -> ConfigError:
    if isinstance(exc, yaml.reader.ReaderError):
        return ConfigError(origin, None, f"not valid YAML: control character #x{exc.character:04x} at "
                                         f"position {exc.position} (YAML allows printable text only)")
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    return ConfigError(origin, None, f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}")


def parse_yaml(text: str, origin: object) -> Any:
    """The document in ``text``, checked by :func:`check_values`; ConfigError naming ``origin``."""
    try:
        loader = _Loader(text, origin)  # the reader rejects control characters here
    except yaml.YAMLError as exc:
        raise _yaml_error(origin, exc) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise ConfigError(origin, None, f"anchors and aliases expand to more than {MAX_NODES:,} values")
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(origin, exc) from None
    except RecursionError:  # a self-referencing alias
        raise ConfigError(origin, None, "an alias refers to the node that contains it") from None
    finally:
        loader.dispose()
    check_values(data, origin)
    return data


def load_yaml(path: str | Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """Read, decode, parse and check a user's YAML file."""
    return parse_yaml(read_text(path, max_bytes), path)


def load_yaml_mapping(path: str | Path, what: str = "mapping of fields") -> dict:
    """:func:`load_yaml` for a file whose top level must be a mapping."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, None, f"expected a {what} at the top level")
    return data


# ------------------------------------------------------------------------------------------------
# JSON
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def _json_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text (strings removed first), without recursion."""
    import numpy as np

    raw = _JSON_STRING.sub(b'""', text.encode("utf-8", "surrogatepass"))
    codes = np.frombuffer(raw, dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(codes, (ord("]"), ord("}"))).astype(np.int64))
    return int(np.cumsum(steps).max()) if steps.size else 0


def parse_json(text: str, origin: object) -> Any:
    """The document in ``text``: no duplicate keys, no non-finite numbers, bounded depth."""
    if _json_depth(text) > MAX_DEPTH:
        raise ConfigError(origin, None, f"nested more than {MAX_DEPTH} levels deep")

    def pairs(items):
        out = {}
        for key, value in items:
            if key in out:
                raise ConfigError(origin, key, "key appears twice in one object; keep one")
            out[key] = value
        return out

    def constant(name):
        raise ConfigError(origin, None, f"'{name}' is not a JSON number; give a finite number")

    def number(s):
        value = float(s)
        if not math.isfinite(value):
            raise ConfigError(origin, None, f"number {s} is out of range (not finite as a float)")
        return value

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number)
    except json.JSONDecodeError as exc:
        raise ConfigError(origin, None,
                          f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except RecursionError:
        raise ConfigError(origin, None, f"nested more than {MAX_DEPTH} levels deep") from None
    check_values(data, origin)
    return data


def parse_json_object(text: str, origin: object) -> dict[str, Any]:
    data = parse_json(text, origin)
    if not isinstance(data, dict):
        raise ConfigError(origin, None, f"expected a JSON object at the top level, got {type(data).__name__}")
    return data


def load_json_object(path: str | Path) -> dict[str, Any]:
    """Read, decode, parse and check a user's JSON file whose top level is an object."""
    return parse_json_object(read_text(path), path)


# ------------------------------------------------------------------------------------------------
# values
def _nonfinite_text(value: str) -> bool:
    s = value.strip().lower()
    if s in _NONFINITE_WORDS:
        return True
    if _NUMBER.match(s):
        try:
            return not math.isfinite(float(s.replace("_", "")))
        except ValueError:
            return False
    return False


def check_values(data: Any, origin: object) -> None:
    """Reject non-finite numbers (and strings a float field would read as one) and integers
    beyond 2**53 anywhere in ``data``, naming the dotted field. Iterative: no recursion limit."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                stack.append((v, f"{where}.{k}" if where else str(k)))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                stack.append((v, f"{where}.{i}" if where else str(i)))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ConfigError(origin, where or None, f"must be a finite number, got {value}")
        elif isinstance(value, int):
            if abs(value) > MAX_INT:
                raise ConfigError(origin, where or None,
                                  f"integer {value:.3g} is beyond 2^53 (the largest a float holds exactly)")
        elif isinstance(value, str) and _nonfinite_text(value):
            raise ConfigError(origin, where or None, f"must be a finite number, got '{value}'")
