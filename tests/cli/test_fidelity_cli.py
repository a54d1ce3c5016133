"""``infersim fidelity / calibrate / profile`` as a user runs them, and the profile -> calibrate ->
fidelity loop on a tiny CPU grid."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from infersim.cli.app import InfersimGroup
from infersim.cli.estimate_cmd import estimate_cmd
from infersim.cli.fidelity_cmd import calibrate_cmd, fidelity_cmd, profile_cmd
from infersim.fidelity import save_measurements
from infersim.fidelity.evaluate import package_version
from tests.fidelity.synth import TRUE_GEMM, gemm_rows, synthetic

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "fidelity" / "sample.parquet"
HAVE_THREADPOOLCTL = importlib.util.find_spec("threadpoolctl") is not None
needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None,
                                 reason="calibration needs scipy (pip install 'infersim[fidelity]')")


@click.group(cls=InfersimGroup)
def cli() -> None:
    """The commands under test (registered on the real root group in cli/main.py)."""


for command in (fidelity_cmd, calibrate_cmd, profile_cmd, estimate_cmd):
    cli.add_command(command)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def user_error(result, *phrases):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for p in phrases:
        assert p in result.output, (p, result.output)


def test_fidelity_on_a_file_json():
    res = run("fidelity", "--measurements", SAMPLE, "--device", "h100-sxm", "--no-calibrate", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    cells = {(s["device"], s["family"], s["mode"]) for s in data["scores"]}
    assert ("h100-sxm", "gemm", "analytical") in cells and ("h100-sxm", "all", "analytical") in cells
    assert not any(s["mode"] == "calibrated" for s in data["scores"])
    assert data["header"]["measurements"] == str(SAMPLE)


@needs_scipy
def test_fidelity_markdown_and_csv(tmp_path):
    csv = tmp_path / "rows.csv"
    res = run("fidelity", "--measurements", SAMPLE, "--device", "h100-sxm", "--op", "gemm", "--op", "moe",
              "--markdown", "--quiet", "--csv", csv)
    assert res.exit_code == 0, res.output
    assert "| device | family | test rows | analytical MdAPE |" in res.output
    assert "calibrated MdAPE" in res.output
    header = csv.read_text().splitlines()[0]
    for col in ("latency_s", "pred_analytical_s", "pred_calibrated_s", "split", "family"):
        assert col in header


def test_fidelity_and_calibrate_user_errors(tmp_path):
    missing = tmp_path / "m.csv"
    missing.write_text("device,op,n,k,latency_ms\nh100-sxm,gemm,4,4,0.1\n")
    user_error(run("fidelity", "--measurements", missing), str(missing), "'m'", "required column missing")
    unit = tmp_path / "u.csv"
    unit.write_text("device,op,m,n,k,latency_min\nh100-sxm,gemm,1,4,4,0.1\n")
    user_error(run("fidelity", "--measurements", unit), "latency_min", "unknown latency unit 'min'", "latency_ms")
    user_error(run("fidelity", "--measurements", SAMPLE, "--hardware", "h100-sxm"), "--hardware describes one device")
    user_error(run("fidelity", "--measurements", SAMPLE, "--device", "h100-sxm", "--hardware", "h100-sxmm"),
               "unknown hardware 'h100-sxmm'")
    user_error(run("fidelity", "--measurements", SAMPLE, "--device", "nope"), "no measured rows")
    user_error(run("calibrate", "--measurements", SAMPLE, "--hardware", "h100-sxm", "-o", tmp_path / "x.json"),
               ".yaml")
    user_error(run("calibrate", "--measurements", SAMPLE, "--hardware", "h100-sxm", "--device", "b300",
                   "-o", tmp_path / "x.yaml"), "no rows for device 'b300'")
    user_error(run("profile", "-o", tmp_path / "p.txt", "--grid", "tiny"), ".parquet or .csv")
    user_error(run("fidelity", "--measurements", SAMPLE, "--framework", "vllm"),
               "--framework picks the aiconfigurator tables of one kernel set")
    user_error(run("calibrate", "--measurements", SAMPLE, "--hardware", "h100-sxm", "-o", tmp_path / "x.yaml",
                   "--framework", "vllm"), "--framework go with --all")


@pytest.mark.skipif(package_version("aiconfigurator-core") is None,
                    reason="needs aiconfigurator-core's tables (the 'test' extra)")
def test_fidelity_on_one_engines_kernel_tables():
    """--framework vllm scores vLLM's own MoE kernels, and the second source becomes TensorRT-LLM's."""
    res = run("fidelity", "--device", "h100-sxm", "--op", "moe", "--framework", "vllm", "--no-calibrate", "--json",
              "--quiet")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["header"]["measurements"].endswith("vllm kernel tables only")
    assert data["header"]["second source"].startswith("trtllm tables (trtllm/")


@pytest.mark.skipif(package_version("aiconfigurator") != "0.4.0" or package_version("aiconfigurator-core") is None,
                    reason="needs aiconfigurator 0.4.0's tables: pip install --no-deps aiconfigurator==0.4.0")
def test_fidelity_on_one_engine_release():
    """--framework trtllm-1.0 scores TensorRT-LLM 1.0's tables (aiconfigurator 0.4.0); with --all, the
    devices that package did not measure are listed as skipped, not an error."""
    res = run("fidelity", "--all", "--op", "moe", "--framework", "trtllm-1.0", "--no-calibrate", "--json",
              "--quiet", "--second-source", "none")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["header"]["measurements"].startswith("aiconfigurator 0.4.0 ")
    assert data["header"]["measurements"].endswith("trtllm-1.0 kernel tables only")
    assert data["skipped"]["h100-pcie"] == "no trtllm-1.0 tables"
    assert {s["device"] for s in data["scores"]} == {"a100-sxm-80gb", "b200", "gb200", "h100-sxm", "h200", "l40s"}


@needs_scipy
def test_calibrate_writes_a_device_file_estimate_accepts(tmp_path):
    table, _ = synthetic(gemm_rows(), TRUE_GEMM, noise=0.02)
    data = save_measurements(table, tmp_path / "gemm.parquet")
    out = tmp_path / "h100-cal.yaml"
    res = run("calibrate", "--measurements", data, "--hardware", "h100-sxm", "-o", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "Calibrated efficiency" in res.output and out.is_file()
    text = out.read_text()
    assert "name: h100-sxm-calibrated" in text and "\n  gemm:\n" in text and "    tiles:" in text
    assert "gemm.parquet" in text
    res = run("estimate", "--hardware", out, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["hardware"] == "h100-sxm-calibrated"
    # and fidelity scores the written file on the same measurements
    res = run("fidelity", "--measurements", data, "--hardware", out, "--no-calibrate", "--json")
    scores = {s["family"]: s for s in json.loads(res.output)["scores"]}
    assert scores["gemm"]["mdape"] < 0.04


#: the tiny CPU grid measured once (infersim profile --grid tiny --repeats 7 --warmup 2 --threads 1 on the
#: 2-core development VM, 2026-12-05) and kept: the fit is tested on fixed numbers, not on the live timings
#: of whatever machine runs the tests (benchmarks/bench_cpu_loop.py measures and prints the live loop)
CPU_TINY = SAMPLE.parent / "cpu-tiny.parquet"
CPU_TINY_DEVICE = SAMPLE.parent / "cpu-tiny-device.yaml"


def test_profile_writes_measurements_and_a_device_file(tmp_path):
    """The live part: the profiler runs and writes what calibrate reads (its timings are not judged)."""
    from infersim.fidelity.measurement_files import load_measurements
    from infersim.hardware.catalog import load_hardware_file

    data = tmp_path / "local.parquet"
    threads = ["--threads", "1"] if HAVE_THREADPOOLCTL else []
    res = run("profile", "-o", data, "--grid", "tiny", "--repeats", "1", "--warmup", "0", "--quiet", *threads)
    assert res.exit_code == 0, res.output
    recorded = load_measurements(CPU_TINY)
    table = load_measurements(data)
    assert table.num_rows == recorded.num_rows and table.column_names == recorded.column_names
    latency = np.array(table.column("latency_s").to_pylist())
    assert np.isfinite(latency).all() and (latency > 0).all()
    device = load_hardware_file(tmp_path / "local-device.yaml")
    assert device.memory_bandwidth_bytes_per_s > 0


@needs_scipy
def test_calibrate_fidelity_loop_on_recorded_cpu_measurements(tmp_path):
    data, spec = CPU_TINY, CPU_TINY_DEVICE
    cal = tmp_path / "local-calibrated.yaml"
    res = run("calibrate", "--measurements", data, "--hardware", spec, "-o", cal, "--quiet")
    assert res.exit_code == 0, res.output
    res = run("fidelity", "--measurements", data, "--hardware", spec, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    pooled = {s["mode"]: s for s in report["scores"] if s["family"] == "all"}  # the validation split
    assert pooled["calibrated"]["rows"] >= 10
    # the target is 15% (met on the `small` grid, see README); a tiny grid timed on a shared
    # 2-core VM is noisier: 25.0% on this recording (analytical: 71.7%)
    assert pooled["calibrated"]["mdape"] <= 0.30, pooled
    assert pooled["calibrated"]["mdape"] < pooled["analytical"]["mdape"]
    # the calibrated file evaluates without refitting
    res = run("fidelity", "--measurements", data, "--hardware", cal, "--no-calibrate", "--json")
    assert res.exit_code == 0, res.output
