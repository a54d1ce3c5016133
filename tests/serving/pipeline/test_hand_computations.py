"""KV-transfer, all-to-all and retrieval bytes and times pinned to hand computations."""

import math
from pathlib import Path

import numpy as np
import pytest

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.estimate import step_costs
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.shape import StepShape
from infersim.perf.step_time import StepTimeModel
from infersim.serving.pipeline.afd import AFDLayout, AFDStepTimeModel, afd_memory, row_category
from infersim.serving.pipeline.deploy import min_retrieval_servers, prepare_pipeline, retrieval_groups
from infersim.serving.pipeline.simulator import simulate_pipeline

from ._util import pd_data, pipeline, spaced

LLAMA8B_KV_BYTES_PER_TOKEN = 32 * 8 * 128 * 2 * 2  # layers x kv heads x head dim x (K, V) x bf16
H100_IB_BYTES_PER_S = 50e9  # 400 Gb/s NDR, h100-sxm.yaml scale_out
H100_IB_LATENCY_S = 5e-6


def test_kv_transfer_whole_matches_hand_computation():
    prompt = 2000
    sc = pipeline(pd_data(workload=spaced(3, prompt, 10)))
    r = simulate_pipeline(sc)
    want = H100_IB_LATENCY_S + prompt * LLAMA8B_KV_BYTES_PER_TOKEN / H100_IB_BYTES_PER_S  # 5.247 ms
    assert r.transfer_s[1] == pytest.approx(np.full(3, want), rel=1e-12)
    # the decode stage receives the request exactly one transfer after its first token
    assert np.allclose(r.stage_start_s[1] + r.transfer_s[1], r.requests["first_token_s"] + want, rtol=0, atol=1e-12)


def test_kv_transfer_layerwise_hides_all_but_the_last_layer():
    prompt = 2000
    data = pd_data(workload=spaced(2, prompt, 10))
    data["graph"][1]["transfer"] = {"link": "scale_out", "layerwise": True}
    r = simulate_pipeline(pipeline(data))
    # a lone request's prefill is one step of the whole prompt: the foundation's step time
    prefill_s = StepTimeModel(get_model("llama-3.1-8b"), get_device("h100-sxm")).step_time_for([prompt], [0], [])
    wire = prompt * LLAMA8B_KV_BYTES_PER_TOKEN / H100_IB_BYTES_PER_S
    hidden = prefill_s * 31 / 32
    want = H100_IB_LATENCY_S + max(wire - hidden, wire / 32)
    assert r.transfer_s[1] == pytest.approx(np.full(2, want), rel=1e-9)


def test_kv_transfer_over_a_named_link_with_tensor_parallel_replicas():
    data = pd_data(workload=spaced(1, 1000, 4), links={"roce": {"bandwidth_gb_per_s": 25, "latency_us": 10}})
    data["engines"]["prefill"]["parallelism"] = {"tp": 2}
    data["engines"]["decode"]["parallelism"] = {"tp": 4}
    data["graph"][1]["transfer"] = {"link": "roce"}
    r = simulate_pipeline(pipeline(data))
    # two parallel links (min of 2 prefill and 4 decode devices)
    assert r.transfer_s[1][0] == pytest.approx(10e-6 + 1000 * LLAMA8B_KV_BYTES_PER_TOKEN / (2 * 25e9), rel=1e-12)


def test_afd_all_to_all_bytes_and_time():
    m = get_model("deepseek-v3")
    h100 = get_device("h100-sxm")
    prec = Precision("fp8", "bf16", "fp8")
    stm = AFDStepTimeModel(m, h100, h100, AFDLayout(8, 1, 16, 2), prec, 50e9, 5e-6)
    tokens = 96
    one_way = tokens * 8 * 7168 * 2  # tokens x top-8 x hidden x bf16 = 11,010,048 bytes
    assert one_way == 11_010_048
    assert stm.comm_time_s(tokens) == pytest.approx(2 * (5e-6 + one_way / (8 * 50e9)), rel=1e-12)
    pairwise = AFDStepTimeModel(m, h100, h100, AFDLayout(8, 1, 16, 2), prec, 50e9, 5e-6, comm="pairwise")
    # senders: 16 peers each, 1/8 of the bytes; receivers: 8 peers each, 1/16 of the bytes
    assert pairwise.comm_time_s(tokens) == pytest.approx(
        2 * max(16 * 5e-6 + one_way / (8 * 50e9), 8 * 5e-6 + one_way / (16 * 50e9)), rel=1e-12)


def _category_times(model, device, par, prec, shape):
    table, costs = step_costs(model, device, par, prec, shape)
    out = {}
    for name, t in zip(table.names, costs.total_time_s[:, 0]):
        out[row_category(name)] = out.get(row_category(name), 0.0) + float(t)
    return out


def test_afd_step_without_micro_batching_from_an_independent_graph_costing():
    """m = 1: step = serial + 58 x (attention + comm + experts), each part costed from the graph."""
    m = get_model("deepseek-v3")
    h100 = get_device("h100-sxm")
    prec = Precision("fp8", "bf16", "fp8")
    stm = AFDStepTimeModel(m, h100, h100, AFDLayout(4, 1, 16, 1), prec, 50e9, 5e-6)
    b, ctx = 40, 3000  # 10 sequences on each of the 4 attention ranks
    attn = _category_times(m, h100, Parallelism(tp=1), prec, StepShape.uniform(m, decode_seqs=10, decode_context=ctx))
    ffn = _category_times(m, h100, Parallelism(tp=16, ep=16), prec,
                          StepShape.uniform(m, decode_seqs=b, decode_context=1))
    per_layer_attention = attn["common"] / 61 + attn["moe_side"] / 58
    serial = attn["common"] * 3 / 61 + attn["dense"] + attn["head"]
    comm = 2 * (5e-6 + b * 8 * 7168 * 2 / (4 * 50e9))
    want = serial + 58 * (per_layer_attention + comm + ffn["experts"] / 58)
    assert stm.step_time_s(0, 0, b, {None: (0.0, 0.0, 0.0, float(b * ctx))}) == pytest.approx(want, rel=1e-9)


def test_afd_memory_hand_computation():
    m = get_model("deepseek-v3")
    h100 = get_device("h100-sxm")
    mem = afd_memory(m, h100, h100, AFDLayout(8, 1, 16, 2), Precision("fp8", "bf16", "fp8"), 512, 256, 0.9)
    # routed experts: 58 MoE layers x 256/16 experts x 3 matrices x 7168 x 2048, one byte each (fp8)
    assert mem.ffn_experts == 58 * 16 * 3 * 7168 * 2048
    assert mem.ffn_usable == 0.9 * 81559 * 2**20  # the H100 SXM: 81,559 MiB as nvidia-smi reports it


def test_retrieval_batch_time_and_bytes_hand_computation():
    data = {
        "seed": 0,
        "engines": {"r": {"kind": "retrieval", "hardware": "cpu-xeon-8480", "servers": 6,
                          "scan_gb_per_s_per_core": 2.0, "overhead_ms": 1.0,
                          "database": {"vectors": 64e9, "fraction_probed": 0.001, "code_bytes": 32}}},
        "graph": [{"name": "retrieve", "kind": "retrieval", "engine": "r"}],
        "workload": spaced(3, 10, 1),
    }
    sc = pipeline(data)
    dep = prepare_pipeline(sc)
    eng = dep.engines["r"]
    assert eng.bytes_per_query == pytest.approx(64e9 * 0.001 * 32)  # 2.048 GB
    # 64e9 x 32 B = 2.048 TB of codes over 512 GB x 0.9 per socket: 5 shards, so one copy of 6 servers
    assert eng.group_servers == [6]
    assert eng.batch_time_s(4, 0) == pytest.approx(4 * 2.048e9 / (2e9 * 56 * 6) + 1e-3, rel=1e-12)
    r = simulate_pipeline(sc)
    stage = r.stage_end_s[0] - r.stage_start_s[0]
    np.testing.assert_allclose(stage, 2.048e9 / (2e9 * 56 * 6) + 1e-3, rtol=0, atol=1e-12)


def test_retrieval_sharding():
    assert retrieval_groups(7, 3) == [4, 3]
    assert retrieval_groups(9, 3) == [3, 3, 3]
    assert retrieval_groups(5, 5) == [5]
    sc = pipeline({
        "seed": 0, "engines": {"r": {"kind": "retrieval", "database": {"vectors": 64e9, "fraction_probed": 1e-3,
                                                                      "code_bytes": 32}}},
        "graph": [{"name": "retrieve", "kind": "retrieval", "engine": "r"}], "workload": spaced(1, 10, 1)})
    assert min_retrieval_servers(sc.engines["r"], get_device("cpu-xeon-8480")) == math.ceil(2.048e12 / 460.8e9)


MINILM = Path(__file__).resolve().parents[3] / "examples" / "disagg" / "models" / "all-MiniLM-L6-v2.json"


def test_encoder_batch_uses_bidirectional_attention():
    sc = pipeline({"seed": 0, "engines": {"e": {"kind": "encoder", "model": str(MINILM)}},
                   "graph": [{"name": "embed", "kind": "encoder", "engine": "e"}], "workload": spaced(1, 10, 1)})
    eng = prepare_pipeline(sc).engines["e"]
    # two queries of 32 and 64 tokens: 32^2 + 64^2 query-key pairs, all keys read
    pairs = 32.0 ** 2 + 64.0 ** 2
    assert eng.batch_time_s([32, 64]) == eng.stm.step_time_s(96, 2, 0, {None: (pairs, pairs, 96.0, 0.0)})
