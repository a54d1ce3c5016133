"""The model catalog: bundled HF ``config.json`` files plus any config a user names.

Each bundled file is a copy of the published ``config.json`` with one extra top-level
key, ``_infersim`` (display name, HF repo, published parameter counts and where they
come from), which the parser ignores.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import unknown_name_error
from ..userfile import parse_json_object, read_text
from .config import ModelConfig
from .hf import parse_hf_config

_DATA = "data"
_META_KEY = "_infersim"


def _data_dir():
    return resources.files(__package__).joinpath(_DATA)


def builtin_names() -> list[str]:
    """Names of the bundled models, sorted."""
    return sorted(p.name[: -len(".json")] for p in _data_dir().iterdir() if p.name.endswith(".json"))


def parse_json_text(text: str, origin: object) -> dict[str, Any]:
    """The top-level object of a JSON document; ConfigError naming ``origin`` otherwise."""
    return parse_json_object(text, origin)


@functools.lru_cache(maxsize=None)
def _builtin_raw(name: str) -> dict[str, Any]:
    path = _data_dir().joinpath(f"{name}.json")
    return parse_json_text(path.read_text(encoding="utf-8"), f"<builtin>/{name}.json")


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> ModelConfig:
    return parse_hf_config(_builtin_raw(name), f"<builtin>/{name}.json", name)


@functools.lru_cache(maxsize=None)
def _hf_repo_index() -> dict[str, str]:
    """Lower-cased HF repo id (e.g. 'meta-llama/llama-3.1-8b') -> builtin name."""
    index = {}
    for name in builtin_names():
        repo = _builtin_raw(name).get(_META_KEY, {}).get("hf_repo")
        if repo:
            index[repo.lower()] = name
    return index


def _model_name_for_file(path: Path) -> str:
    # .../Llama-3.1-8B/config.json -> "Llama-3.1-8B"; my-model.json -> "my-model"
    if path.name == "config.json" and path.parent.name:
        return path.parent.name
    return path.stem


def load_model_file(path: str | Path) -> ModelConfig:
    """A model from a HF ``config.json`` file, or from a directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    text = read_text(path)
    return parse_hf_config(parse_json_text(text, path), path, _model_name_for_file(path))


def _looks_like_path(text: str) -> bool:
    return text.endswith(".json") or "/" in text or "\\" in text or Path(text).exists()


def get_model(name_or_path: str | Path | ModelConfig) -> ModelConfig:
    """A model by catalog name (case-insensitive), HF repo id of a bundled model, or path."""
    if isinstance(name_or_path, ModelConfig):
        return name_or_path
    if isinstance(name_or_path, Path):
        return load_model_file(name_or_path)
    text = str(name_or_path)
    key = text.lower()
    names = builtin_names()
    if key in names:
        return _load_builtin(key)
    if key in _hf_repo_index():
        return _load_builtin(_hf_repo_index()[key])
    if _looks_like_path(text):
        return load_model_file(text)
    raise unknown_name_error("model", text, names)


def model_metadata(name: str) -> dict[str, Any]:
    """The ``_infersim`` block of a bundled model (a copy); {} for a user's file."""
    key = str(name).lower()
    names = builtin_names()
    key = _hf_repo_index().get(key, key)
    if key in names:
        return copy.deepcopy(_builtin_raw(key).get(_META_KEY, {}))
    if _looks_like_path(str(name)):
        return {}
    raise unknown_name_error("model", str(name), names)


def raw_config(name: str) -> dict[str, Any]:
    """The bundled ``config.json`` of a catalog model as published (without ``_infersim``)."""
    key = str(name).lower()
    key = _hf_repo_index().get(key, key)
    if key not in builtin_names():
        raise unknown_name_error("model", str(name), builtin_names())
    return copy.deepcopy({k: v for k, v in _builtin_raw(key).items() if k != _META_KEY})
