"""The calibratable refinements of the efficiency model, against hand-computed values, and the
step-time fast path equal to the vectorized roofline with every refinement switched on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from infersim.errors import ConfigError
from infersim.hardware import get_device
from infersim.hardware.catalog import parse_hardware_yaml
from infersim.hardware.schema import EfficiencySpec
from infersim.models import get_model
from infersim.perf.efficiency import tile_efficiency, tiled_gemm_utilization, tiled_gemm_utilization_scalar
from infersim.perf.estimate import step_costs
from infersim.perf.operators import Collective, OpBuilder, OpKind
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.roofline import cost_ops
from infersim.perf.shape import StepShape
from infersim.perf.step_time import StepTimeModel
from tests.perf.conftest import ideal

EVERYTHING = dict(
    gemm_tiles=[(64, 64), (64, 128), (128, 128), (128, 256)], gemm_k_half=200.0, gemm_gemv_max_m=1,
    gemm_memory_max_fraction=0.6, gemm_overhead_us_by_dtype={"fp8": 10.0, "bf16": 2.0},
    grouped_gemm_max_fraction_by_dtype={"fp8": 0.4, "bf16": 0.55}, grouped_gemm_overhead_us=7.0,
    attention_max_fraction_by_dtype={"bf16": 0.5, "fp8": 0.35}, attention_half_flops=1e8,
    attention_memory_max_fraction=0.7, attention_query_bandwidth_fraction=0.2, attention_overhead_us=12.0,
    decode_attention_memory_max_fraction=0.9, decode_attention_query_bandwidth_fraction=0.05,
    decode_attention_overhead_us=7.0, kernel_overhead_us=2.5, collective_latency_us=1.0,
    collective_overhead_us=3.0, collective_bandwidth_fraction_by_kind={"all-reduce": 1.2},
    gemm_tile_intensity_half=15.0,
)


def _with(device, **fields):
    return dataclasses.replace(device, efficiency=device.efficiency.model_copy(update=fields))


def test_padded_tile_utilization_by_hand():
    # m = 100, n = 200 on 4 units with 64 x 64 tiles: 2 x 4 = 8 tiles, 2 waves, 8 x 4096 tile cells
    u = tiled_gemm_utilization(100, 200, 512, [(64, 64)], 4)
    assert u == pytest.approx(100 * 200 / (2 * 4 * 64 * 64))
    # the better of two tiles is used; the k ramp multiplies
    u2 = tiled_gemm_utilization(100, 200, 512, [(64, 64), (128, 256)], 4, k_half=128.0)
    big = 100 * 200 / (1 * 4 * 128 * 256)
    assert u2 == pytest.approx(max(u, big) * 512 / (512 + 128))
    # a matrix-vector GEMM pads nothing
    assert tiled_gemm_utilization(1, 200, 512, [(64, 64)], 4, gemv_max_m=1) == pytest.approx(1.0)
    for args in ((100, 200, 512), (1, 4096, 4096), (3000, 70, 33)):
        assert tiled_gemm_utilization_scalar(*args, [(64, 64), (128, 256)], 132, 50.0, 1) == pytest.approx(
            float(tiled_gemm_utilization(*args, [(64, 64), (128, 256)], 132, 50.0, 1)), rel=1e-12)


def test_tile_operand_reuse_by_hand():
    """A tm x tn tile reuses each operand element I = tm tn / (tm + tn) times: efficiency
    I / (I + half). m = 100, n = 200 on 4 units: the 64 x 64 tile pads to 0.61 (I = 32), the
    128 x 256 one to 0.15 (I = 85.3); with half = 32 the small tile keeps half its utilization."""
    assert tile_efficiency(64, 64, 32.0) == pytest.approx(0.5)
    assert tile_efficiency(128, 256, 0.0) == 1.0
    small, big = 100 * 200 / (2 * 4 * 64 * 64), 100 * 200 / (1 * 4 * 128 * 256)
    reuse_big = 128 * 256 / 384
    u = tiled_gemm_utilization(100, 200, 512, [(64, 64), (128, 256)], 4, intensity_half=32.0)
    assert u == pytest.approx(max(small * 0.5, big * reuse_big / (reuse_big + 32.0)))
    assert tiled_gemm_utilization_scalar(100, 200, 512, [(64, 64), (128, 256)], 4, 0.0,
                                         intensity_half=32.0) == pytest.approx(u, rel=1e-12)
    # split-K: the one big tile split 4 ways fills the 4 units (4 x 0.153), at the big tile's reuse
    split = tiled_gemm_utilization(100, 200, 512, [(64, 64), (128, 256)], 4, split_k=4, intensity_half=32.0)
    assert split == pytest.approx(4 * big * reuse_big / (reuse_big + 32.0))
    assert tiled_gemm_utilization_scalar(100, 200, 512, [(64, 64), (128, 256)], 4, 0.0, split_k=4,
                                         intensity_half=32.0) == pytest.approx(split, rel=1e-12)


def test_gemm_call_cost_per_dtype_and_grouped():
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), gemm_overhead_us_by_dtype={"fp8": 9.0}, kernel_overhead_us=2.0,
                grouped_gemm_overhead_us=5.0)
    b = OpBuilder(1)
    for name, dtype in (("g8", "fp8"), ("g16", "bf16"), ("moe.experts.gate_up", "fp8")):
        b.gemm(name, 0.0 + 1, 128, 128, weight_dtype_bytes=1, act_dtype_bytes=2, dtype=dtype)
    costs = cost_ops(b.build(), dev)
    assert costs.overhead_s[:, 0].tolist() == pytest.approx([9e-6, 2e-6, 5e-6])


def test_attention_query_term_and_decode_overrides():
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), attention_query_bandwidth_fraction=0.5,
                decode_attention_query_bandwidth_fraction=0.25, attention_overhead_us=10.0,
                decode_attention_overhead_us=4.0)
    b = OpBuilder(1)
    b.add("attention.prefill", OpKind.ATTENTION, act_bytes=3350e3, kv_bytes=3350e3)
    b.add("attention.decode", OpKind.ATTENTION, act_bytes=3350e3, kv_bytes=3350e3)
    t = cost_ops(b.build(), dev).time_s[:, 0]
    # memory: 6.7 MB at 3.35 TB/s = 2 us; query: 3.35 MB at half / a quarter of it = 2 / 4 us
    assert t.tolist() == pytest.approx([2e-6 + 2e-6 + 10e-6, 2e-6 + 4e-6 + 4e-6])


def test_collective_latency_fraction_and_call_cost():
    h100 = ideal(get_device("h100-sxm", efficiency="spec"))
    dev = _with(h100, collective_latency_us=0.5, collective_overhead_us=3.0,
                collective_bandwidth_fraction_by_kind={"all-gather": 0.5})
    b = OpBuilder(1)
    b.add("ag", OpKind.COLLECTIVE, collective=Collective.ALL_GATHER, comm_bytes=1 << 24, group_size=8)
    t = cost_ops(b.build(), dev).time_s[0, 0]
    assert t == pytest.approx(7 * 0.5e-6 + 7 / 8 * (1 << 24) / (450e9 * 0.5) + 3e-6)


def test_grouped_gemm_fraction_applies_to_moe_expert_gemms_only():
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), grouped_gemm_max_fraction_by_dtype={"bf16": 0.5})
    b = OpBuilder(1)
    b.gemm("moe.experts.down", 8192, 8192, 8192, weight_dtype_bytes=2, act_dtype_bytes=2, dtype="bf16")
    b.gemm("mlp.down", 8192, 8192, 8192, weight_dtype_bytes=2, act_dtype_bytes=2, dtype="bf16")
    t = cost_ops(b.build(), dev).compute_s[:, 0]
    assert t[0] / t[1] == pytest.approx(2.0)


def test_defaults_leave_the_plain_model_unchanged():
    # no refinement set: the legacy wave model and one launch cost (what the catalog devices use)
    h100 = get_device("h100-sxm", efficiency="spec")
    b = OpBuilder(1)
    b.gemm("g", 1000, 3000, 4096, weight_dtype_bytes=2, act_dtype_bytes=2, dtype="bf16")
    c = cost_ops(b.build(), h100)
    eff = h100.efficiency
    flops = 2 * 1000 * 3000 * 4096
    tiles = np.ceil(1000 / 128) * np.ceil(3000 / 128)
    util = tiles / (np.ceil(tiles / 132) * 132)
    e = eff.compute_max_fraction * flops / (flops + eff.compute_half_flops) * util
    assert c.compute_s[0, 0] == pytest.approx(flops / (989.4e12 * e), rel=1e-12)
    assert c.overhead_s[0, 0] == pytest.approx(eff.kernel_overhead_us * 1e-6)


@pytest.mark.parametrize("model,par,prec", [
    ("llama-3.1-8b", Parallelism(), Precision()),
    ("deepseek-v3", Parallelism(tp=8, ep=8), Precision(weight="fp8")),  # MLA GEMMs take the scalar path
    ("gemma-2-9b", Parallelism(tp=2), Precision(kv_cache="fp8")),
    ("mixtral-8x7b", Parallelism(tp=2, ep=2), Precision()),
])
def test_step_time_fast_path_equals_roofline_with_every_refinement(model, par, prec):
    d = _with(get_device("h200", efficiency="spec"), **EVERYTHING)
    m = get_model(model)
    fast = StepTimeModel(m, d, par, prec, initial_max_tokens=64)
    rng = np.random.default_rng(3)
    for _ in range(5):
        n_pre, n_dec = int(rng.integers(0, 3)), int(rng.integers(1, 30))
        chunks, pasts = rng.integers(1, 900, n_pre), rng.integers(0, 4000, n_pre)
        ctx = rng.integers(1, 9000, n_dec)
        shape = StepShape.from_requests(m, chunks=chunks, pasts=pasts, decode_contexts=ctx)
        _, costs = step_costs(m, d, par, prec, shape)
        assert fast.step_time_for(chunks, pasts, ctx) == pytest.approx(costs.step_time_s[0], rel=1e-9)


def _shipped_text(name: str) -> str:
    from pathlib import Path

    import infersim.hardware

    return (Path(infersim.hardware.__file__).parent / "data" / f"{name}.yaml").read_text()


def test_efficiency_fields_are_validated_with_file_and_field():
    eff = EfficiencySpec(**EVERYTHING)
    assert eff.compute_fraction("fp4") == eff.compute_max_fraction  # nothing for fp4/fp8/bf16 in the GEMM table
    assert EfficiencySpec(compute_max_fraction_by_dtype={"fp8": 0.6}).compute_fraction("fp4") == 0.6  # fallback
    text = get_device("h100-sxm", efficiency="spec").spec.model_dump_json()
    import json

    # the flat layout (the shipped files): the error names the flat key
    data = json.loads(json.dumps(yaml.safe_load(_shipped_text("h100-sxm"))))
    data["efficiency"]["collective_bandwidth_fraction_by_kind"] = {"broadcast": 0.5}
    with pytest.raises(ConfigError, match="my.yaml.*efficiency.collectives.collective_bandwidth_fraction_by_kind.*broadcast"):
        parse_hardware_yaml(json.dumps(data), "my.yaml")
    # the sectioned layout (what model_dump writes): the error names the section and its field
    data = json.loads(get_device("h100-sxm").spec.model_dump_json())
    data["efficiency"]["collectives"]["bandwidth_fraction_by_kind"] = {"broadcast": 0.5}
    with pytest.raises(ConfigError, match="my.yaml.*efficiency.collectives.bandwidth_fraction_by_kind.*broadcast"):
        parse_hardware_yaml(json.dumps(data), "my.yaml")
    data["efficiency"] = {"gemm_tiles": [[0, 64]], "source": "x" * 5}
    with pytest.raises(ConfigError, match="gemm_tiles"):
        parse_hardware_yaml(json.dumps(data), "my.yaml")


# ---------------------------------------------------------------- per-thread-block and per-expert terms


def _attention_row(b, name, **counts):
    b.add(name, OpKind.ATTENTION, dtype=counts.pop("dtype", "bf16"), **counts)


def test_prefill_blocks_and_softmax_by_hand():
    h100 = ideal(get_device("h100-sxm", efficiency="spec"))
    dev = _with(h100, attention_cta_us=2.0, attention_query_tile=64, attention_softmax_fraction=0.05,
                attention_max_fraction=1.0, attention_half_flops=0.0)
    b = OpBuilder(1)
    # 3 sequences of 100 queries, 8 heads: ceil(100 / 64) = 2 tiles each -> 3 * 8 * 2 = 48 blocks
    _attention_row(b, "attention.prefill", flops=1e9, act_bytes=1e3, seqs=3.0, query_tokens=300.0,
                   scores=4e7, heads=8.0, kv_heads=2.0)
    c = cost_ops(b.build(), dev)
    assert c.overhead_s[0, 0] == pytest.approx(48 / 132 * 2e-6)
    # softmax: 4e7 exponentials at 5% of the 67 TFLOP/s fp32 peak, on top of the 1 GFLOP at 989.4 TFLOP/s
    assert c.compute_s[0, 0] == pytest.approx(1e9 / 989.4e12 + 4e7 / (0.05 * 67e12))
    assert c.time_s[0, 0] == pytest.approx(c.compute_s[0, 0] + 48 / 132 * 2e-6)


def test_prefill_parallelism_ramp_by_hand():
    h100 = ideal(get_device("h100-sxm", efficiency="spec"))
    dev = _with(h100, attention_parallel_half=24.0, attention_max_fraction=1.0, attention_half_flops=0.0)
    b = OpBuilder(1)
    # one sequence of 1000 queries, 1 head: ceil(1000 / 128) = 8 blocks keep 8 / (8 + 24) of the machine busy
    _attention_row(b, "attention.prefill", flops=1e9, kv_bytes=1e3, seqs=1.0, query_tokens=1000.0, heads=1.0,
                   kv_heads=1.0)
    # 32 sequences x 32 heads x 8 tiles = 8192 blocks: nearly the whole machine
    _attention_row(b, "attention.prefill", flops=1e9, kv_bytes=1e3, seqs=32.0, query_tokens=32000.0, heads=32.0,
                   kv_heads=8.0)
    c = cost_ops(b.build(), dev)
    assert c.compute_s[:, 0] == pytest.approx([1e9 / 989.4e12 * (8 + 24) / 8, 1e9 / 989.4e12 * (8192 + 24) / 8192])
    assert c.overhead_s[:, 0] == pytest.approx([h100.efficiency.kernel_overhead_us * 1e-6] * 2)


def test_per_dtype_attention_memory_and_query_fractions_by_hand():
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), attention_memory_max_fraction=0.8,
                decode_attention_memory_max_fraction=0.9, decode_attention_memory_max_fraction_by_dtype={"fp8": 0.5},
                attention_query_bandwidth_fraction=2.0, attention_query_bandwidth_fraction_by_dtype={"fp8": 0.25})
    bw = 3.35e12
    b = OpBuilder(1)
    for name in ("attention.decode", "attention.prefill"):
        for dtype in ("bf16", "fp8"):
            _attention_row(b, name, dtype=dtype, kv_bytes=bw * 1e-6, act_bytes=bw * 1e-6)
    c = cost_ops(b.build(), dev)
    # memory: 2 us of bytes at the decode (bf16 0.9, fp8 0.5) or prefill (0.8) fraction; plus the
    # query term: 1 us of activation bytes at 2.0 (bf16) or 0.25 (fp8) of the bandwidth
    mem = np.array([2 / 0.9, 2 / 0.5, 2 / 0.8, 2 / 0.8]) * 1e-6
    query = np.array([1 / 2.0, 1 / 0.25, 1 / 2.0, 1 / 0.25]) * 1e-6
    assert c.memory_s[:, 0] == pytest.approx(mem + query)
    with pytest.raises(ValueError, match="must be in \\(0, 10\\]"):
        EfficiencySpec(attention_query_bandwidth_fraction_by_dtype={"fp8": 11.0})
    with pytest.raises(ValueError, match="unknown dtype"):
        EfficiencySpec(decode_attention_memory_max_fraction_by_dtype={"fp9": 0.5})


def test_decode_blocks_group_rule_and_parallelism_by_hand():
    h100 = ideal(get_device("h100-sxm", efficiency="spec"))
    dev = _with(h100, decode_attention_cta_us=3.0, decode_attention_cta_us_by_dtype={"fp8": 1.0},
                decode_attention_head_cta_us=0.5, decode_attention_max_group=4, decode_attention_parallel_half=20.0)
    b = OpBuilder(1)
    kv = 3.35e6  # 1 us at 3.35 TB/s
    # 10 sequences, 16 query heads over 8 KV heads (group 2): grouped kernel, 80 blocks
    _attention_row(b, "attention.decode", kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=16.0, kv_heads=8.0)
    # the same in fp8: its own block cost
    _attention_row(b, "attention.decode", dtype="fp8", kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=16.0,
                   kv_heads=8.0)
    # group 8 > 4: one block per query head (10 x 64 = 640), each streaming its KV head's cache
    _attention_row(b, "attention.decode", kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=64.0, kv_heads=8.0)
    # MHA (group 1): the per-head kernel, no extra reads
    _attention_row(b, "attention.decode", kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=8.0, kv_heads=8.0)
    # MLA: one latent per sequence, grouped whatever the heads
    _attention_row(b, "attention.decode", kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=128.0, kv_heads=1.0,
                   mla=True)
    c = cost_ops(b.build(), dev)
    blocks = np.array([80, 80, 640, 80, 10])
    cta = np.array([3.0, 1.0, 0.5, 0.5, 3.0])
    assert c.overhead_s[:, 0] == pytest.approx(blocks / 132 * cta * 1e-6)
    share = blocks / (blocks + 20.0)
    reads = np.array([1, 1, 8, 1, 1])  # group 8 per-head blocks read the KV once per query head
    assert c.memory_s[:, 0] == pytest.approx(1e-6 * reads / share)


def test_mla_rows_use_their_overrides_only():
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), attention_overhead_us=10.0,
                mla_overrides={"attention_overhead_us": 3.0, "attention_max_fraction_by_dtype.bf16": 0.5})
    b = OpBuilder(1)
    _attention_row(b, "attention.prefill", flops=989.4e6)
    _attention_row(b, "attention.prefill", flops=989.4e6, mla=True)
    c = cost_ops(b.build(), dev)
    assert c.overhead_s[:, 0].tolist() == pytest.approx([10e-6, 3e-6])
    assert c.compute_s[:, 0].tolist() == pytest.approx([1e-6, 2e-6])  # full peak vs MLA's half


def test_grouped_gemm_expert_tiles_permutation_and_memory_fraction():
    h100 = ideal(get_device("h100-sxm", efficiency="spec"))
    tiles = [(64, 64)]
    # 100 rows over 4 experts: 25 rows each -> 4 row tiles of 64 (not ceil(100/64) = 2); n = 640 -> 10 column tiles
    u = tiled_gemm_utilization(100.0, 640.0, 512.0, tiles, 132, experts=np.array(4.0))
    assert u == pytest.approx(100 * 640 / (1 * 132 * 64 * 64))  # 40 tiles: one wave
    u_many = tiled_gemm_utilization(100.0, 640.0, 512.0, tiles, 16, experts=np.array(4.0))
    assert u_many == pytest.approx(100 * 640 / (3 * 16 * 64 * 64))  # 40 tiles on 16 units: 3 waves
    assert tiled_gemm_utilization_scalar(100.0, 640.0, 512.0, tiles, 16, 0.0, 0, 4.0) == pytest.approx(u_many)
    dev = _with(h100, gemm_tiles=tiles, grouped_gemm_expert_tiles=True, grouped_gemm_act_bandwidth_fraction=0.5,
                grouped_gemm_memory_fraction_by_dtype={"bf16": 0.25})
    b = OpBuilder(1)
    b.gemm("moe.experts.gate_up", 100.0, 640.0, 512.0, weight_dtype_bytes=2, act_dtype_bytes=2, dtype="bf16",
           experts=4.0)
    b.gemm("mlp.gate_up", 100.0, 640.0, 512.0, weight_dtype_bytes=2, act_dtype_bytes=2, dtype="bf16")
    c = cost_ops(b.build(), dev)
    weight, act = 640 * 512 * 2, (100 * 512 + 100 * 640) * 2
    bw = 3.35e12
    # grouped: bytes at a quarter of the bandwidth, plus its activation bytes once more at half of it
    assert c.memory_s[0, 0] == pytest.approx((weight + act) / (0.25 * bw) + act / (0.5 * bw))
    assert c.memory_s[1, 0] == pytest.approx((weight + act) / bw)
    flops = 2 * 100 * 640 * 512
    assert c.compute_s[:, 0] == pytest.approx(flops / (989.4e12 * 100 * 640 / (132 * 64 * 64)))  # one wave each
    # on 16 units the grouped GEMM's 40 tiles take 3 waves, the plain one's 2 x 10 = 20 tiles 2
    small = dataclasses.replace(dev, compute_units=16)
    c16 = cost_ops(b.build(), small)
    assert c16.compute_s[0, 0] / c16.compute_s[1, 0] == pytest.approx(3 / 2)


def test_split_k_fills_the_units_by_hand():
    # m = n = 128 with one 128 x 128 tile on 8 units: 1 block alone, or split k = 4096 four ways
    tiles = [(128, 128)]
    plain = tiled_gemm_utilization(128.0, 128.0, 4096.0, tiles, 8, k_half=64.0)
    assert plain == pytest.approx(1 / 8 * 4096 / (4096 + 64))
    split = tiled_gemm_utilization(128.0, 128.0, 4096.0, tiles, 8, k_half=64.0, split_k=4)
    assert split == pytest.approx(4 / 8 * 1024 / (1024 + 64))  # s = 4 beats 1 and 2
    assert tiled_gemm_utilization_scalar(128.0, 128.0, 4096.0, tiles, 8, 64.0, 0, 0.0, 4) == pytest.approx(split)
    # a shallow k is not worth splitting: k / s shrinks against k_half
    shallow = tiled_gemm_utilization(128.0, 128.0, 64.0, tiles, 8, k_half=64.0, split_k=4)
    assert shallow == pytest.approx(max(s / 8 * (64 / s) / (64 / s + 64) for s in (1, 2, 4)))


def test_mla_overrides_are_validated():
    assert EfficiencySpec(mla_overrides={"decode_attention_cta_us": 2.0}).for_mla().decode_attention_cta_us == 2.0
    with pytest.raises(ValueError, match="cannot be overridden for MLA"):
        EfficiencySpec(mla_overrides={"gemm_k_half": 2.0})
    with pytest.raises(ValueError, match="unknown dtype"):
        EfficiencySpec(mla_overrides={"attention_max_fraction_by_dtype.int3": 0.5})


def test_plain_devices_have_no_block_terms():
    for name in ("h100-sxm", "b200", "a100-sxm-80gb"):
        eff = get_device(name, efficiency="spec").efficiency
        assert not eff.block_terms and not eff.grouped_gemm_expert_tiles and eff.gemm_split_k == 1


def test_decode_parallel_half_per_dtype_by_hand():
    """An fp8-KV decode kernel that does not split long sequences over blocks has its own,
    later half-point; the bf16 row keeps the general one."""
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), decode_attention_cta_us=0.0, decode_attention_parallel_half=20.0,
                decode_attention_parallel_half_by_dtype={"fp8": 500.0})
    b = OpBuilder(1)
    kv = 3.35e6  # 1 us at 3.35 TB/s
    for dtype in ("bf16", "fp8"):  # 10 sequences x 8 KV heads = 80 blocks
        _attention_row(b, "attention.decode", dtype=dtype, kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=16.0,
                       kv_heads=8.0)
    c = cost_ops(b.build(), dev)
    assert c.memory_s[:, 0] == pytest.approx([1e-6 * (80 + 20) / 80, 1e-6 * (80 + 500) / 80])


def test_warm_cache_only_for_kernel_microbenchmarks_by_hand():
    """Of W bytes, 1 / (1 + (W / C)^6) move at `ratio` times the DRAM rate, in warm-cache
    predictions only. At W = C half of them: factor (1 + 1 / ratio) / 2."""
    h100 = ideal(get_device("h100-sxm", efficiency="spec"))
    dev = _with(h100, warm_cache_bytes=40e6, warm_cache_bandwidth_ratio=3.0, attention_warm_cache_bytes=20e6,
                attention_warm_cache_bandwidth_ratio=2.0,
                attention_warm_cache_bandwidth_ratio_by_dtype={"fp8": 1.0})
    b = OpBuilder(1)
    b.add("mlp.down", OpKind.GEMM, dtype="bf16", weight_bytes=40e6)  # W = C: half warm
    b.add("mlp.up", OpKind.GEMM, dtype="bf16", weight_bytes=400e6)  # 10 x C: cold (1e-6 warm)
    _attention_row(b, "attention.decode", kv_bytes=20e6)  # the attention capacity and ratio
    _attention_row(b, "attention.decode", dtype="fp8", kv_bytes=20e6)  # fp8 kernel: ratio 1, no gain
    table = b.build()
    cold = cost_ops(table, dev).memory_s[:, 0]
    warm = cost_ops(table, dev, warm_cache=True).memory_s[:, 0]
    assert cold[0] == pytest.approx(40e6 / 3.35e12)  # serving steps: every byte from DRAM
    h10 = 1.0 / (1.0 + 10.0 ** 6)
    assert warm / cold == pytest.approx([(1 + 1 / 3) / 2, 1 - h10 + h10 / 3, (1 + 1 / 2) / 2, 1.0])
    with pytest.raises(ValueError, match=r"\[1, 50\]"):
        EfficiencySpec(attention_warm_cache_bandwidth_ratio_by_dtype={"fp8": 0.5})


def test_attention_head_size_without_native_kernel_by_hand():
    """Head size = flops / (4 scores); fp8 rows at a head size the dtype does not list run at the
    fallback fraction, listed ones (and bf16, MLA) at the attention fraction."""
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), attention_max_fraction_by_dtype={"fp8": 0.6, "bf16": 0.5},
                attention_native_head_dims_by_dtype={"fp8": [128]}, attention_fallback_fraction_by_dtype={"fp8": 0.2})
    b = OpBuilder(1)
    scores = 1e9
    for dtype, head, mla in (("fp8", 128, False), ("fp8", 64, False), ("bf16", 64, False), ("fp8", 64, True)):
        _attention_row(b, "attention.prefill", dtype=dtype, flops=4 * scores * head, scores=scores, mla=mla)
    c = cost_ops(b.build(), dev)
    peak = {"fp8": 1978.9e12, "bf16": 989.4e12}
    expected = [4 * scores * 128 / (peak["fp8"] * 0.6), 4 * scores * 64 / (peak["fp8"] * 0.2),
                4 * scores * 64 / (peak["bf16"] * 0.5), 4 * scores * 64 / (peak["fp8"] * 0.6)]
    assert c.compute_s[:, 0] == pytest.approx(expected)
    with pytest.raises(ValueError, match="non-empty list"):
        EfficiencySpec(attention_native_head_dims_by_dtype={"fp8": []})
    with pytest.raises(ValueError, match="unknown dtype"):
        EfficiencySpec(attention_native_head_dims_by_dtype={"fp9": [128]})


def test_sharp_decode_parallelism_ramp_and_queries_loaded_once_by_hand():
    """share = (1 + (half / blocks)^p)^(-1/p): p = 1 is blocks / (blocks + half), a large p tends
    to min(1, blocks / half). The ramp slows the KV stream, not the queries a block loads once."""
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), decode_attention_parallel_half=20.0,
                decode_attention_parallel_half_by_dtype={"fp8": 100.0},
                decode_attention_parallel_sharpness_by_dtype={"fp8": 8.0})
    b = OpBuilder(1)
    kv, act = 3.35e6, 0.335e6  # 1 us and 0.1 us at 3.35 TB/s
    for dtype in ("bf16", "fp8"):  # 10 sequences x 8 KV heads = 80 blocks
        _attention_row(b, "attention.decode", dtype=dtype, kv_bytes=kv, act_bytes=act, seqs=10.0,
                       query_tokens=10.0, heads=16.0, kv_heads=8.0)
    _attention_row(b, "attention.decode", dtype="fp8", kv_bytes=kv, seqs=100.0, query_tokens=100.0, heads=16.0,
                   kv_heads=8.0)  # 800 blocks: a full machine
    c = cost_ops(b.build(), dev)
    soft = 80 / (80 + 20)
    sharp = (1 + (100 / 80) ** 8) ** (-1 / 8)
    assert sharp == pytest.approx(0.785, abs=1e-3)  # (1 + 1.25^8)^(-1/8), close to min(1, 80 / 100) = 0.8
    assert c.memory_s[:, 0] == pytest.approx([1e-6 / soft + 0.1e-6, 1e-6 / sharp + 0.1e-6,
                                              1e-6 / (1 + (100 / 800) ** 8) ** (-1 / 8)])
    with pytest.raises(ValueError, match=r"\[1, 16\]"):
        EfficiencySpec(decode_attention_parallel_sharpness_by_dtype={"fp8": 0.5})


def test_per_query_head_decode_costs_by_hand():
    """The per-query-head kernel: its block cost and extra launch cost per dtype, its own (soft)
    parallelism half-point, and its re-reads of a KV head at the cache rate."""
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), decode_attention_cta_us=3.0, decode_attention_head_cta_us=0.5,
                decode_attention_head_cta_us_by_dtype={"fp8": 2.0},
                decode_attention_head_launch_us_by_dtype={"fp8": 6.0}, decode_attention_max_group=4,
                decode_attention_parallel_half=20.0, decode_attention_parallel_sharpness=8.0,
                decode_attention_head_parallel_half=160.0, decode_attention_reread_bandwidth_ratio=4.0,
                decode_attention_reread_bandwidth_ratio_by_dtype={"fp8": 2.0})
    b = OpBuilder(1)
    kv = 3.35e6  # 1 us at 3.35 TB/s
    for dtype in ("bf16", "fp8"):  # group 8 > 4: 10 x 64 = 640 per-head blocks, 7 more reads of each KV head
        _attention_row(b, "attention.decode", dtype=dtype, kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=64.0,
                       kv_heads=8.0)
    # group 2: the grouped kernel, 80 blocks, its general cost and sharp ramp
    _attention_row(b, "attention.decode", dtype="fp8", kv_bytes=kv, seqs=10.0, query_tokens=10.0, heads=16.0,
                   kv_heads=8.0)
    c = cost_ops(b.build(), dev)
    assert c.overhead_s[:, 0] == pytest.approx([640 / 132 * 0.5e-6, 640 / 132 * 2e-6 + 6e-6, 80 / 132 * 3e-6])
    head_share = 640 / (640 + 160)
    grouped_share = (1 + (20 / 80) ** 8) ** (-1 / 8)
    assert c.memory_s[:, 0] == pytest.approx([1e-6 / head_share * (1 + 7 / 4), 1e-6 / head_share * (1 + 7 / 2),
                                              1e-6 / grouped_share])
    with pytest.raises(ValueError, match=r"\[1, 50\]"):
        EfficiencySpec(decode_attention_reread_bandwidth_ratio_by_dtype={"bf16": 0.5})


def test_decode_kernels_have_their_own_fraction_and_every_head_size():
    """GQA decode rows compute at decode_attention_max_fraction and never at a prefill kernel's
    fallback fraction; prefill and MLA decode rows keep theirs."""
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), attention_max_fraction_by_dtype={"bf16": 0.5},
                decode_attention_max_fraction=0.25, attention_native_head_dims_by_dtype={"bf16": [128]},
                attention_fallback_fraction_by_dtype={"bf16": 0.1})
    b = OpBuilder(1)
    scores = 1e9
    _attention_row(b, "attention.prefill", flops=4 * scores * 64, scores=scores)  # fallback: head 64
    _attention_row(b, "attention.decode", flops=4 * scores * 64, scores=scores)  # decode fraction
    _attention_row(b, "attention.decode", flops=4 * scores * 64, scores=scores, mla=True)  # attention fraction
    c = cost_ops(b.build(), dev)
    work = 4 * scores * 64 / 989.4e12
    assert c.compute_s[:, 0] == pytest.approx([work / 0.1, work / 0.25, work / 0.5])


def test_warm_cache_speeds_the_machine_wide_stream_not_a_lone_block_by_hand():
    """Warm-cache decode: the stream's 1 / share = 1 + half / blocks (p = 1) becomes factor + half /
    blocks; the prefill query term is cache-resident like the op's other bytes."""
    dev = _with(ideal(get_device("h100-sxm", efficiency="spec")), decode_attention_parallel_half=20.0,
                attention_warm_cache_bytes=20e6, attention_warm_cache_bandwidth_ratio=3.0,
                attention_query_bandwidth_fraction=0.5)
    b = OpBuilder(1)
    _attention_row(b, "attention.decode", kv_bytes=20e6, seqs=10.0, query_tokens=10.0, heads=16.0, kv_heads=8.0)
    _attention_row(b, "attention.prefill", act_bytes=20e6)  # W = C
    table = b.build()
    cold = cost_ops(table, dev)
    warm = cost_ops(table, dev, warm_cache=True)
    factor = (1 + 1 / 3) / 2  # W = C: half the bytes from the cache
    stream = 20e6 / 3.35e12
    assert cold.memory_s[0, 0] == pytest.approx(stream * (1 + 20 / 80))
    assert warm.memory_s[0, 0] == pytest.approx(stream * (factor + 20 / 80))
    query = 20e6 / (0.5 * 3.35e12)
    assert cold.time_s[1, 0] == pytest.approx(stream + query)
    assert warm.time_s[1, 0] == pytest.approx((stream + query) * factor)


def test_block_terms_leave_other_rows_warm_cache_time_alone():
    """Switching attention block terms on changes no GEMM's time, warm or cold (the warm factor
    scales a GEMM's whole memory time, latency part included)."""
    h100 = get_device("h100-sxm", efficiency="spec")
    plain = _with(h100, warm_cache_bytes=40e6, warm_cache_bandwidth_ratio=3.0, memory_half_bytes=2e6)
    blocks = _with(plain, decode_attention_parallel_half=20.0, decode_attention_parallel_sharpness=4.0)
    b = OpBuilder(1)
    b.add("mlp.down", OpKind.GEMM, dtype="bf16", flops=1e9, weight_bytes=30e6, act_bytes=1e6,
          gemm_mnk=(16, 4096, 4096))
    _attention_row(b, "attention.decode", kv_bytes=20e6, seqs=10.0, query_tokens=10.0, heads=16.0, kv_heads=8.0)
    table = b.build()
    for warm in (False, True):
        assert cost_ops(table, blocks, warm_cache=warm).time_s[0, 0] == pytest.approx(
            cost_ops(table, plain, warm_cache=warm).time_s[0, 0], rel=1e-12)
