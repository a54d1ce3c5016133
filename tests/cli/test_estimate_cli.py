"""The estimate and catalog commands, run as a user runs them (subprocess for the entry point)."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from infersim.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_bare_infersim_runs_the_default_estimate_via_the_installed_entry_point():
    out = subprocess.run([sys.executable, "-m", "infersim.cli.main"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "llama-3.1-8b on 1 x h100-sxm" in out.stdout
    for word in ("TTFT", "TPOT", "KV cache", "headroom", "Top operators", "compute", "memory"):
        assert word in out.stdout


def test_estimate_json_is_machine_readable_and_consistent():
    res = run("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "64",
              "--input", "2048", "--output", "512", "--weight-dtype", "fp8", "--kv-dtype", "fp8", "--json")
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert data["parallel"]["devices"] == 8 and data["fits"] is True
    assert data["precision"]["weight"] == "fp8"
    assert data["e2e_s"] == pytest.approx(data["prefill_s"] + 511 * data["tpot_s"])
    mem = data["memory_per_device_bytes"]
    assert mem["headroom"] == pytest.approx(mem["usable"] - mem["weights"] - mem["kv_cache"] - mem["activations"])
    # 70.55B params: linear layers in fp8 (1 byte) + embeddings in bf16, split 8 ways
    assert 8.5e9 < mem["weights"] < 9.5e9


def test_not_fitting_is_reported_with_numbers_and_exit_1():
    res = run("estimate", "--model", "llama-3.1-70b")
    assert res.exit_code == 1
    assert "Does not fit" in res.output and "GB" in res.output


@pytest.mark.parametrize("args,needle", [
    (("estimate", "--model", "llama-3.1-8"), "did you mean: llama-3.1-8b"),
    (("estimate", "--hardware", "h100"), "h100-sxm"),
    (("estimate", "--tp", "3"), "--tp 3 does not divide the 32 attention heads"),
    (("estimate", "--ep", "2", "--tp", "2"), "needs a MoE model"),
    (("estimate", "--model", "mixtral-8x7b", "--tp", "16", "--ep", "16"), "does not divide the 8 experts"),
    (("hardware", "show", "nope-chip"), "unknown hardware 'nope-chip'"),
    (("models", "show", "gpt5"), "unknown model 'gpt5'"),
])
def test_user_errors_exit_2_without_traceback(args, needle):
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 2
    assert needle in res.output
    assert "Traceback" not in res.output


def test_malformed_files_name_the_file_and_field(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2, "vocab_size": 100,
                               "num_attention_heads": 4, "intermediate_size": 64}))
    res = CliRunner().invoke(cli, ["estimate", "--model", str(cfg)])
    assert res.exit_code == 2 and str(cfg) in res.output and "hidden_size" in res.output
    chip = tmp_path / "chip.yaml"
    chip.write_text("name: chip\ndisplay_name: x\nvendor: me\ncategory: gpu\n")
    res = CliRunner().invoke(cli, ["estimate", "--hardware", str(chip)])
    assert res.exit_code == 2 and str(chip) in res.output and "compute" in res.output


def test_user_files_work_like_builtins(tmp_path):
    from importlib import resources

    src = resources.files("infersim.hardware").joinpath("data/h100-sxm.yaml").read_text()
    chip = tmp_path / "my_chip.yaml"
    chip.write_text(src.replace("name: h100-sxm", "name: my-chip").replace("bandwidth_gb_per_s: 3350",
                                                                           "bandwidth_gb_per_s: 6700"))
    cfg = tmp_path / "config.json"
    cfg.write_text(resources.files("infersim.models").joinpath("data/llama-3.1-8b.json").read_text())
    # kernels only (--runtime none): the engine's host time per step does not scale with bandwidth
    mine = json.loads(run("estimate", "--model", str(cfg), "--hardware", str(chip), "--json", "--runtime",
                          "none").output)
    base = json.loads(run("estimate", "--json", "--runtime", "none").output)
    assert mine["hardware"] == "my-chip"
    # twice the memory bandwidth: the memory-bound decode step gets faster (not quite 2x: overheads)
    assert base["tpot_s"] / 2 < mine["tpot_s"] < base["tpot_s"] * 0.65


def test_catalog_commands():
    res = run("hardware", "list")
    assert res.exit_code == 0 and "h100-sxm" in res.output and "tpu-v5e" in res.output
    res = run("hardware", "show", "h200")
    assert res.exit_code == 0 and "141" in res.output and "source" in res.output
    # the engine (release) profiles a catalog device ships are listed by name; a device with none lists none
    doc = json.loads(run("hardware", "show", "h200", "--json").output)
    shown = doc["engine_profiles"]
    assert sorted(shown) == ["sglang", "trtllm-1.0", "vllm"]
    assert shown["trtllm-1.0"].startswith("calibrated on aiconfigurator 0.4.0 TensorRT-LLM 1.0 kernels")
    # and the dtypes each one's tables did not time (SGLang: no per-tensor fp8 MoE; 1.0: float16, not bf16)
    assert doc["engine_profiles_default_dtypes"] == {"sglang": {"moe": ["fp8"]},
                                                     "trtllm-1.0": {"attention": ["bf16"], "gemm": ["bf16"],
                                                                    "moe": ["bf16"]}}
    assert "moe fp8" in run("hardware", "show", "h200").output
    mi = json.loads(run("hardware", "show", "mi300x", "--json").output)
    assert mi["engine_profiles"] == {} and mi["engine_profiles_default_dtypes"] == {}
    res = run("models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["llama-3.1-8b"]["kv_bytes_per_token_bf16"] == 131072
    assert rows["deepseek-v3"]["kv_bytes_per_token_bf16"] == (512 + 64) * 61 * 2
    res = run("models", "show", "deepseek-v3")
    assert res.exit_code == 0 and "mla" in res.output.lower()


def test_error_text_with_brackets_is_printed_verbatim():
    # rich markup must not swallow "[search]" in "pip install 'infersim[search]'"
    import click

    from infersim.cli.app import InfersimGroup
    from infersim.errors import InfersimError

    @click.group(cls=InfersimGroup)
    def group():
        pass

    @group.command()
    def boom():
        raise InfersimError("needs duckdb: pip install 'infersim[search]'")

    res = CliRunner().invoke(group, ["boom"])
    assert res.exit_code == 2
    assert "pip install 'infersim[search]'" in res.output
