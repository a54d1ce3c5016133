"""The one loading path for user files: each way a file can be wrong is a ConfigError naming it."""

from __future__ import annotations

import json

import pytest

from infersim.errors import ConfigError
from infersim.hardware import get_device
from infersim.hardware.catalog import _data_dir as hardware_dir
from infersim.models import get_model
from infersim.userfile import MAX_DEPTH, MAX_INT, load_yaml, parse_json, parse_yaml, read_text

DEVICE = hardware_dir().joinpath("h100-sxm.yaml").read_text(encoding="utf-8")


def err(fn, *args) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    return info.value


def test_duplicate_keys_are_refused_in_yaml_and_json():
    e = err(parse_yaml, "a: 1\nb: 2\na: 3\n", "f.yaml")
    assert e.field == "a" and "lines 1 and 3" in e.problem
    e = err(parse_json, '{"x": {"a": 1, "a": 2}}', "f.json")
    assert e.field == "a" and "twice" in e.problem
    # the same key in two different mappings is fine
    assert parse_yaml("a: {k: 1}\nb: {k: 2}\n", "f") == {"a": {"k": 1}, "b": {"k": 2}}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 10_000, 200_000])
def test_deep_nesting_is_an_error_not_a_recursion_error(depth):
    assert "nested more than" in err(parse_yaml, "[" * depth + "]" * depth, "f").problem
    assert "nested more than" in err(parse_json, "[" * depth + "]" * depth, "f").problem
    # exactly the limit parses: depth counts containers
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f") is not None


def test_brackets_inside_json_strings_do_not_count_as_nesting():
    assert parse_json('{"a": "' + "[" * 500 + '"}', "f") == {"a": "[" * 500}


@pytest.mark.parametrize("text, field", [("x: .nan", "x"), ("x: [1, -.inf]", "x.1"), ("a: {b: '1e400'}", "a.b"),
                                         ("x: 'Infinity'", "x"), ("x: 1e999", "x")])
def test_non_finite_numbers_are_refused_with_the_dotted_field(text, field):
    # 1e999 (no dot) is a string to YAML 1.1 that pydantic would read as inf
    assert err(parse_yaml, text, "f").field == field


def test_json_constants_and_overflow_are_refused():
    assert "not a JSON number" in err(parse_json, '{"a": NaN}', "f").problem
    assert "out of range" in err(parse_json, '{"a": -1e400}', "f").problem


def test_integers_beyond_two_to_the_53_are_refused():
    assert parse_yaml(f"a: {MAX_INT}", "f") == {"a": MAX_INT}
    assert "2^53" in err(parse_yaml, f"a: {MAX_INT + 1}", "f").problem


def test_alias_bombs_are_refused_in_linear_time():
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    assert "expand to more than" in err(parse_yaml, "\n".join(lines), "f").problem
    assert parse_yaml("a: &x [1, 2]\nb: *x\n", "f") == {"a": [1, 2], "b": [1, 2]}


def test_encoding_and_file_problems(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    e = err(load_yaml, p)
    assert e.path == p and "not UTF-8 text (byte 0xe9 at line 1)" in e.problem
    p.write_bytes(b"\xef\xbb\xbfa: 1\n")  # a UTF-8 byte-order mark is dropped
    assert load_yaml(p) == {"a": 1}
    assert "file not found" in err(read_text, tmp_path / "missing.yaml").problem
    assert "is a directory" in err(read_text, tmp_path).problem
    assert "limited to 4 bytes" in err(read_text, p, 4).problem
    p.write_text("a: 1\x0b\n")
    assert "control character #x000b" in err(load_yaml, p).problem


def test_every_loader_goes_through_it(tmp_path):
    device = tmp_path / "dev.yaml"
    device.write_text(DEVICE + "name: other\n")
    assert err(get_device, str(device)).field == "name"
    model = tmp_path / "config.json"
    model.write_text('{"hidden_size": 4096, "hidden_size": 4096}')
    assert err(get_model, str(model)).field == "hidden_size"
    from infersim.search.study import load_study
    from infersim.serving.scenario import load_scenario

    for loader in (load_scenario, load_study):
        f = tmp_path / "s.yaml"
        f.write_bytes(b"name: \xff\n")
        assert "not UTF-8" in err(loader, f).problem


def test_model_file_with_non_finite_json_names_the_file(tmp_path):
    data = json.loads(json.dumps({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100,
                                  "num_attention_heads": 4, "intermediate_size": 128}))
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data).replace("128", "Infinity"))
    e = err(get_model, str(path))
    assert e.path == path and "Infinity" in e.problem
