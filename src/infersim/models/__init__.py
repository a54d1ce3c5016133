"""Model catalog: HF config.json files parsed into frozen :class:`ModelConfig`, plus counting."""

from .catalog import builtin_names, get_model, load_model_file, model_metadata, raw_config
from .config import LayerGroup, ModelConfig
from .hf import parse_hf_config
from .params import ParamCounts, kv_cache_bytes, kv_cache_bytes_per_token, param_counts

__all__ = [
    "LayerGroup",
    "ModelConfig",
    "ParamCounts",
    "builtin_names",
    "get_model",
    "kv_cache_bytes",
    "kv_cache_bytes_per_token",
    "load_model_file",
    "model_metadata",
    "param_counts",
    "parse_hf_config",
    "raw_config",
]
