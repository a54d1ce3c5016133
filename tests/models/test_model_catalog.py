"""The model catalog: bundled configs, lookups by name / repo / path, metadata, errors."""

from __future__ import annotations

import json

import pytest

from infersim.errors import ConfigError, InfersimError
from infersim.models import (
    ModelConfig,
    builtin_names,
    get_model,
    load_model_file,
    model_metadata,
    param_counts,
    raw_config,
)

EXPECTED = [
    "deepseek-v3", "gemma-2-9b", "gpt-oss-120b", "gpt-oss-20b",
    "llama-2-13b", "llama-2-70b", "llama-2-7b", "llama-3.1-405b", "llama-3.1-70b", "llama-3.1-8b",
    "mistral-7b", "mixtral-8x22b", "mixtral-8x7b",
    "qwen2.5-72b", "qwen2.5-7b", "qwen3-235b-a22b", "qwen3-30b-a3b",
]  # fmt: skip


def test_builtin_names():
    assert builtin_names() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_every_bundled_model_parses(name):
    m = get_model(name)
    assert isinstance(m, ModelConfig) and m.name == name
    assert m.model_type == raw_config(name)["model_type"]
    assert sum(g.count for g in m.layer_groups()) == m.num_layers
    assert param_counts(m).total > 0


@pytest.mark.parametrize("name", EXPECTED)
def test_bundled_metadata(name):
    meta = model_metadata(name)
    assert meta["display_name"] and meta["source"]
    assert "/" in meta["hf_repo"]
    assert meta["published_params_b"] > 0
    # keeps the real HF keys next to the metadata block
    raw = raw_config(name)
    assert "_infersim" not in raw and "architectures" in raw


def test_lookup_is_case_insensitive_and_cached():
    assert get_model("Llama-3.1-8B") is get_model("llama-3.1-8b")
    assert get_model(get_model("mistral-7b")) is get_model("mistral-7b")


def test_lookup_by_hf_repo_id():
    assert get_model("meta-llama/Llama-3.1-8B") is get_model("llama-3.1-8b")
    assert get_model("deepseek-ai/DeepSeek-V3").name == "deepseek-v3"
    assert model_metadata("openai/gpt-oss-20b")["display_name"] == "gpt-oss-20b"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(InfersimError) as err:
        get_model("llama-3.1-8")
    assert "unknown model 'llama-3.1-8'" in str(err.value)
    assert "llama-3.1-8b" in str(err.value).split("did you mean:")[1]
    with pytest.raises(InfersimError):
        model_metadata("mixtral-8x8b")


def test_load_from_path(tmp_path):
    data = raw_config("llama-3.1-8b")
    folder = tmp_path / "My-Llama"
    folder.mkdir()
    path = folder / "config.json"
    path.write_text(json.dumps(data))
    m = get_model(str(path))
    assert m.name == "My-Llama"
    assert param_counts(m).total == param_counts(get_model("llama-3.1-8b")).total
    assert get_model(folder) == m  # a directory holding config.json
    assert load_model_file(path) == m
    assert model_metadata(str(path)) == {}
    other = tmp_path / "tiny.json"
    other.write_text(json.dumps(data))
    assert get_model(str(other)).name == "tiny"


def test_missing_field_in_user_file_names_file_and_field(tmp_path):
    data = raw_config("llama-3.1-8b")
    del data["hidden_size"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        get_model(str(path))
    assert str(path) in str(err.value)
    assert err.value.field == "hidden_size"
    assert "field 'hidden_size'" in str(err.value)


def test_not_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ hidden_size: 4096 ")
    with pytest.raises(ConfigError) as err:
        get_model(str(path))
    assert str(path) in str(err.value) and "not valid JSON" in str(err.value)
    binary = tmp_path / "weights.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError) as err:
        get_model(str(binary))
    assert str(binary) in str(err.value) and "not UTF-8 text (byte 0xff at line 1)" in str(err.value)


def test_json_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(ConfigError) as err:
        get_model(str(path))
    assert "JSON object" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        get_model(str(tmp_path / "nope" / "config.json"))
    assert "file not found" in str(err.value)
