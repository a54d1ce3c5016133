"""Kernel sets: one per engine-profile name, and TensorRT-LLM 1.0's tables read from aiconfigurator 0.4.0's
per-release layout (a hand-built folder here, so the reading is checked value by value)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow (the 'test' extra)")

from infersim.errors import InfersimError  # noqa: E402
from infersim.hardware.choices import ENGINE_KERNELS  # noqa: E402

GEMM_HEAD = "framework,version,device,op_name,kernel_source,gemm_dtype,m,n,k,latency\n"
NCCL_HEAD = "framework,version,device,op_name,kernel_source,nccl_dtype,num_gpus,message_size,latency\n"


def _legacy_tree(root):
    """systems/ in aiconfigurator 0.4.0's layout: two TensorRT-LLM versions of the 1.0 release and one
    of another release, two NCCL versions (the system YAML names 2.26.2), and a GB200 folder under the
    old name ``gb200_sxm``."""
    data = root / "data"
    for version, ms in (("1.0.0rc3", 0.5), ("1.0.0rc2", 0.9), ("1.3.0", 0.1), ("0.20.0", 0.7)):
        d = data / "h200_sxm" / "trtllm" / version
        d.mkdir(parents=True)
        (d / "gemm_perf.txt").write_text(
            GEMM_HEAD + f"TRTLLM,{version},NVIDIA H200,gemm,torch_flow,fp8,128,4096,8192,{ms}\n"
            f"TRTLLM,{version},NVIDIA H200,gemm,torch_flow,fp8,256,4096,8192,{2 * ms}\n"
            f"TRTLLM,{version},NVIDIA H200,gemm,torch_flow,fp8,256,4096,8192,{4 * ms}\n"
            f"TRTLLM,{version},NVIDIA H200,gemm,torch_flow,fp8,256,4096,8192,{3 * ms}\n")
    for version, ms in (("2.26.2", 0.02), ("2.23", 0.9)):
        d = data / "h200_sxm" / "nccl" / version
        d.mkdir(parents=True)
        (d / "nccl_perf.txt").write_text(
            NCCL_HEAD + f"TRTLLM,{version},NVIDIA H200,all_gather,NCCL,half,8,1024,{ms}\n"
            f"TRTLLM,{version},NVIDIA H200,all_gather,NCCL,half,8,0,{ms}\n"
            f"TRTLLM,{version},NVIDIA H200,all_reduce,NCCL,half,8,1024,{ms}\n")
    (root / "h200_sxm.yaml").write_text("misc:\n  nccl_version: '2.26.2'\n")
    d = data / "gb200_sxm" / "trtllm" / "1.0.0rc6"
    d.mkdir(parents=True)
    (d / "gemm_perf.txt").write_text(GEMM_HEAD + "TRTLLM,1.0.0rc6,NVIDIA GB200,gemm,torch_flow,fp8,64,64,64,0.25\n")
    return root


@pytest.fixture
def legacy(tmp_path, monkeypatch):
    from infersim.fidelity import kernel_sets

    root = _legacy_tree(tmp_path / "systems")
    monkeypatch.setattr(kernel_sets, "legacy_systems_dir", lambda kset: root)
    return root


def test_one_kernel_set_per_engine_profile_name():
    from infersim.fidelity.kernel_sets import KERNEL_SETS

    assert tuple(KERNEL_SETS) == ENGINE_KERNELS
    assert KERNEL_SETS["trtllm-1.0"].data_version == "0.4.0"


def test_the_release_newest_version_is_read_with_its_nccl_tables(legacy):
    from infersim.fidelity.kernel_sets import kernel_set_devices, load_kernel_set

    assert kernel_set_devices("trtllm-1.0") == ["gb200", "h200"]
    t = load_kernel_set("trtllm-1.0", ["h200"], ["gemm", "allgather"]).to_pydict()
    assert t["op"] == ["gemm", "gemm", "allgather"]
    # 1.0.0rc3 (newest of release 1.0; 1.3.0 and 0.20.0 are other releases), ms -> s, the three repeats
    # of m = 256 collapsed to their median (2, 4, 3 x 0.5 ms -> 1.5 ms)
    assert t["m"][:2] == [128, 256] and t["n"][:2] == [4096, 4096] and t["k"][:2] == [8192, 8192]
    assert np.allclose(t["latency_s"], [0.5e-3, 1.5e-3, 0.02e-3])
    assert t["framework"] == ["trtllm", "trtllm", "nccl"]
    assert t["source"][0] == "aiconfigurator-0.4.0/systems/data/h200_sxm/trtllm/1.0.0rc3/gemm_perf.txt"
    # NCCL 2.26.2 (the system YAML's), half = 2 bytes per element, the zero-size row dropped
    assert t["source"][2].endswith("h200_sxm/nccl/2.26.2/nccl_perf.txt")
    assert (t["num_devices"][2], t["message_bytes"][2], t["dtype"][2]) == (8, 2048, "fp16")


def test_all_reduce_falls_back_to_nccl_and_old_system_names_map(legacy):
    from infersim.fidelity.kernel_sets import load_kernel_set

    ar = load_kernel_set("trtllm-1.0", "h200", "allreduce").to_pydict()
    assert ar["framework"] == ["nccl"] and ar["message_bytes"] == [2048]
    gb = load_kernel_set("trtllm-1.0", ["gb200"]).to_pydict()
    assert gb["device"] == ["gb200"] and gb["latency_s"] == [0.25e-3]


def test_an_unknown_device_or_op_is_a_clear_error(legacy):
    from infersim.fidelity.kernel_sets import load_kernel_set

    with pytest.raises(InfersimError, match="unknown device 'b200'"):
        load_kernel_set("trtllm-1.0", ["b200"])
    with pytest.raises(InfersimError, match="unknown op 'gemmm'"):
        load_kernel_set("trtllm-1.0", ["h200"], ["gemmm"])
    with pytest.raises(InfersimError, match="unknown kernel set 'trtllm-0.9'"):
        load_kernel_set("trtllm-0.9")


@pytest.mark.parametrize("installed", [None, "0.12.0"])
def test_a_missing_or_other_data_version_names_the_install(monkeypatch, installed):
    from infersim.fidelity import kernel_sets

    monkeypatch.setattr(kernel_sets.KernelSet, "installed_version", lambda self: installed)
    with pytest.raises(InfersimError) as info:
        kernel_sets.load_kernel_set("trtllm-1.0", ["h200"])
    msg = str(info.value)
    assert "\n" not in msg and msg.endswith("install it with: pip install --no-deps aiconfigurator==0.4.0")
    assert ("is not installed" if installed is None else "aiconfigurator 0.12.0 is installed") in msg
