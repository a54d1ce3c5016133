"""Measured rows -> cost-model operators -> predicted latency, checked against hand formulas."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from infersim.fidelity import load_measurements
from infersim.fidelity.kernels import build_kernels, families, predict
from infersim.hardware import get_device
from infersim.hardware.efficiency import EfficiencySpec
from infersim.models import get_model
from infersim.perf.graph import build_step_graph
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.roofline import QUANTIZE_INPUT
from infersim.perf.shape import StepShape
from tests.fidelity.synth import rows_table
from tests.perf.conftest import ideal

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "fidelity" / "sample.parquet"
P_BF16, P_FP8, BW = 989.4e12, 1978.9e12, 3350e9  # H100 SXM spec sheet


@pytest.fixture
def h100_ideal():
    return ideal(get_device("h100-sxm", efficiency="spec"), gemm_tile_m=1, gemm_tile_n=1)


def test_gemm_is_the_roofline_of_2mnk_and_its_bytes(h100_ideal):
    # n = 32 x 132: whole waves of 1 x 1 tiles on the 132 SMs (no wave-quantization loss)
    rows = [dict(op="gemm", m=m, n=4224, k=8192, dtype=d) for d in ("bf16", "fp8") for m in (1, 64, 4096)]
    pred = predict(rows_table(rows), h100_ideal)
    for r, p in zip(rows, pred):
        m, n, k = r["m"], r["n"], r["k"]
        wbytes = 2 if r["dtype"] == "bf16" else 1  # fp8 weights, bf16 activations in and out
        expected = max(2 * m * n * k / (P_BF16 if r["dtype"] == "bf16" else P_FP8),
                       (n * k * wbytes + 2 * (m * k + m * n)) / BW)
        assert p == pytest.approx(expected, rel=1e-9)


def test_prefill_attention_counts_causal_pairs(h100_ideal):
    b, s, h, kvh, d = 2, 1024, 32, 8, 128
    row = dict(op="attention_prefill", batch=b, seq_len=s, kv_len=s, num_heads=h, num_kv_heads=kvh, head_dim=d,
               dtype="bf16", kv_dtype="bf16")
    pred = predict(rows_table([row]), h100_ideal)[0]
    pairs = b * s * (s + 1) / 2
    flops = 2 * pairs * h * 2 * d
    nbytes = b * s * h * 2 * d * 2 + 2 * b * s * kvh * 2 * d * 2  # q + o; KV read once and written once
    assert pred == pytest.approx(max(flops / P_BF16, nbytes / BW), rel=1e-9)


def test_decode_attention_reads_the_kv_cache_in_its_dtype(h100_ideal):
    b, ctx, h, kvh, d = 64, 8192, 32, 8, 128
    for kv, kvb in (("bf16", 2), ("fp8", 1)):
        row = dict(op="attention_decode", batch=b, seq_len=1, kv_len=ctx, num_heads=h, num_kv_heads=kvh, head_dim=d,
                   dtype="bf16", kv_dtype=kv)
        pred = predict(rows_table([row]), h100_ideal)[0]
        nbytes = b * ctx * kvh * 2 * d * kvb + b * kvh * 2 * d * kvb + b * h * 2 * d * 2
        assert pred == pytest.approx(nbytes / BW, rel=1e-9)  # memory-bound


def test_fp8_kv_cache_prefill_runs_fp8_attention(h100_ideal):
    # the graph's rule: fp8 FMHA with an fp8 cache (TensorRT-LLM times such rows like fp8 ones)
    base = dict(op="attention_prefill", batch=1, seq_len=8192, kv_len=8192, num_heads=32, num_kv_heads=32,
                head_dim=128, dtype="bf16")
    t_bf16, t_fp8 = predict(rows_table([dict(base, kv_dtype="bf16"), dict(base, kv_dtype="fp8")]), h100_ideal)
    assert t_bf16 / t_fp8 == pytest.approx(2.0, rel=1e-3)  # compute-bound: fp8 peak is twice bf16's


def test_balanced_moe_reads_min_of_assignments_and_experts(h100_ideal):
    hidden, inter, topk, experts = 4096, 1536, 8, 128
    rows = [dict(op="moe", tokens=t, hidden=hidden, inter=inter, topk=topk, num_experts=experts, tp=1, ep=1,
                 dtype="bf16") for t in (1, 4)]
    pred = predict(rows_table(rows), h100_ideal)
    for t, p in zip((1, 4), pred):
        active = min(t * topk, experts)
        weights = active * 3 * hidden * inter * 2  # gate + up + down of every expert that gets a token
        a = t * topk  # expert rows
        acts = (a * hidden + a * 2 * inter) * 2 + (a * inter + a * hidden) * 2  # gate_up GEMM + down GEMM
        act_fn = (2 * inter + inter) * a * 2
        combine = (a + t) * hidden * 2
        # every operator is memory-bound at these sizes on an ideal H100
        assert p == pytest.approx((weights + acts + act_fn + combine) / BW, rel=1e-6)


def test_moe_ep_shares_experts_and_tokens(h100_ideal):
    row = dict(op="moe", tokens=8192, hidden=4096, inter=1536, topk=8, num_experts=128, tp=1, dtype="bf16")
    t1, t8 = predict(rows_table([dict(row, ep=1), dict(row, ep=8)]), h100_ideal)
    # balanced: each of 8 ranks gets 1/8 of the assignments and 1/8 of the experts (compute-bound here)
    assert t1 / t8 == pytest.approx(8.0, rel=0.05)


def test_power_law_moe_rows_load_the_busiest_rank(h100_ideal):
    """A ``dist=power_law_1.2`` row is the busiest EP rank of the power-law draws: with one expert
    per rank (8 experts, ep 8) its rows are the heaviest expert's, ``T k / 8`` times the tabulated
    factor, against exactly ``T k / 8`` for the balanced row."""
    from infersim.perf.routing import power_law_table

    row = dict(op="moe", tokens=4096, hidden=4096, inter=14336, topk=2, num_experts=8, tp=1, ep=8, dtype="bf16")
    rows = [row, dict(row, variant="dist=power_law_1.2")]
    m = {}
    for idx, table in build_kernels(rows_table(rows)).groups:
        j = list(table.names).index("moe.experts.gate_up")
        for col, i in enumerate(idx):
            m[int(i)] = float(table.gemm_m[j, col])
    log_t, rank, _, _ = power_law_table(8, 2, 8, 1.2)
    assert m[0] == pytest.approx(4096 * 2 / 8)
    assert m[1] == pytest.approx(4096 * 2 / 8 * np.interp(12.0, log_t, rank))
    t_bal, t_skew = predict(rows_table(rows), h100_ideal)
    assert t_skew > 1.5 * t_bal  # compute-bound: the busiest rank's rows set the time


def test_moe_stage_fits_balanced_rows_where_there_are_some():
    from infersim.fidelity.stages import CALIBRATION_STAGES

    stage = CALIBRATION_STAGES["moe"]
    both = np.array(["", "dist=power_law_1.2", "fp8_block", "fp8_block,dist=power_law_1.01"], dtype=object)
    assert stage.fit_rows(both).tolist() == [True, False, True, False]
    only_skewed = np.array(["dist=power_law_1.2", "dist=power_law_1.01"], dtype=object)
    assert stage.fit_rows(only_skewed).tolist() == [True, True]
    assert CALIBRATION_STAGES["gemm"].fit_rows(both).tolist() == [True] * 4


def test_kernel_rows_carry_sequences_heads_and_experts():
    rows = [dict(op="attention_prefill", batch=3, seq_len=100, kv_len=100, num_heads=32, num_kv_heads=8,
                 head_dim=128, dtype="bf16", kv_dtype="bf16"),
            dict(op="attention_decode", batch=5, seq_len=1, kv_len=700, num_heads=16, num_kv_heads=2, head_dim=64,
                 dtype="bf16", kv_dtype="bf16"),
            dict(op="mla_decode", batch=2, seq_len=1, kv_len=64, num_heads=16, num_kv_heads=1, head_dim=576,
                 dtype="bf16", kv_dtype="bf16"),
            dict(op="moe", tokens=4, hidden=1024, inter=512, topk=2, num_experts=64, tp=1, ep=2, dtype="bf16")]
    got = {}
    for idx, table in build_kernels(rows_table(rows)).groups:
        for j, name in enumerate(table.names):
            got[(int(idx[0]), name)] = (table.seqs[j, 0], table.query_tokens[j, 0], table.scores[j, 0],
                                        table.heads[j, 0], table.kv_heads[j, 0], bool(table.mla[j]),
                                        table.experts[j, 0])
    assert got[(0, "attention.prefill")] == (3, 300, 3 * 100 * 101 / 2 * 32, 32, 8, False, 0)
    assert got[(1, "attention.decode")] == (5, 5, 5 * 700 * 16, 16, 2, False, 0)
    assert got[(2, "attention.decode")] == (2, 2, 2 * 64 * 16, 16, 1, True, 0)
    # balanced routing: 4 tokens x top-2 = 8 assignments on 8 distinct experts, 4 per EP rank
    assert got[(3, "moe.experts.gate_up")][-1] == 4 and got[(3, "moe.experts.down")][-1] == 4
    assert got[(3, "moe.combine")][-1] == 0


def test_collectives_use_the_alpha_beta_model(h100_ideal):
    rows = [dict(op="allgather", num_devices=8, message_bytes=1 << 26, dtype="fp16")]
    pred = predict(rows_table(rows), h100_ideal)[0]
    up = h100_ideal.scale_up
    assert pred == pytest.approx(7 * up.latency_s + 7 / 8 * (1 << 26) / up.bandwidth_bytes_per_s, rel=1e-9)


def test_unknown_dtype_rows_are_not_predicted():
    table = rows_table([dict(op="gemm", m=1, n=2, k=3, dtype="bf16"), dict(op="gemm", m=1, n=2, k=3, dtype="e5m2x")])
    ks = build_kernels(table)
    assert ks.unsupported.tolist() == [1]
    pred = ks.predict(get_device("h100-sxm", efficiency="spec"))
    assert np.isfinite(pred[0]) and np.isnan(pred[1])


def test_dtype_the_device_lacks_falls_back_like_peak_flops(h100_ideal):
    # fp4 on an H100 runs at the fp8 peak (Device.peak_flops' fallback), as the cost model does
    rows = [dict(op="gemm", m=8192, n=8192, k=8192, dtype="fp8"), dict(op="gemm", m=8192, n=8192, k=8192, dtype="fp4")]
    t8, t4 = predict(rows_table(rows), h100_ideal)
    assert t4 == pytest.approx(t8, rel=1e-6)  # compute-bound: same peak, same FLOPs


def test_subset_and_work_keep_row_order():
    rows = [dict(op="gemm", m=m, n=256, k=512, dtype="bf16") for m in (1, 2, 3, 4)]
    ks = build_kernels(rows_table(rows))
    flops, nbytes = ks.work()
    assert flops.tolist() == [2.0 * m * 256 * 512 for m in (1, 2, 3, 4)]
    sub = ks.subset(np.array([False, True, False, True]))
    assert sub.work()[0].tolist() == [flops[1], flops[3]]


def test_every_sample_row_is_predicted_positive():
    t = load_measurements(SAMPLE)
    for dev in ("h100-sxm", "b200"):
        x = t.filter(pc.equal(t.column("device"), dev))
        pred = predict(x, get_device(dev, efficiency="spec"))
        assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    fam = set(families(t).tolist())
    assert fam == {"gemm", "attention", "mla", "moe", "collective"}


def test_a_quantized_linear_first_quantizes_its_bf16_input(h100_ideal):
    """fp8 / fp4 rows are TensorRT-LLM Linear calls on bf16 inputs: one pass reading m x k bf16
    values and writing them quantized, priced at gemm_quantize_bandwidth_fraction_by_dtype of the
    bandwidth, before the GEMM; nothing where the device sets no fraction (the GEMM alone)."""
    m, n, k = 4096, 4224, 8192
    table = rows_table([dict(op="gemm", m=m, n=n, k=k, dtype="fp8"), dict(op="gemm", m=m, n=n, k=k, dtype="bf16")])
    (rows, ops), = [g for g in build_kernels(table).groups if QUANTIZE_INPUT in g[1].names]
    assert list(rows) == [0]  # the bf16 row has no quantization pass
    i = ops.names.index(QUANTIZE_INPUT)
    assert ops.kernels[i] == 0  # its launch is the GEMM call's
    assert ops.act_bytes[i, 0] == m * k * (2 + 1)  # bf16 in, fp8 out
    gemm_alone = max(2 * m * n * k / P_FP8, (n * k + 2 * (m * k + m * n)) / BW)
    assert predict(table, h100_ideal)[0] == gemm_alone  # no fraction: exactly the GEMM
    quant = dataclasses.replace(h100_ideal, efficiency=h100_ideal.efficiency.model_copy(
        update={"gemm_quantize_bandwidth_fraction_by_dtype": {"fp8": 0.25}}))
    pred = predict(table, quant)
    assert pred[0] == pytest.approx(gemm_alone + m * k * 3 / (0.25 * BW), rel=1e-12)
    assert pred[1] == predict(table, h100_ideal)[1]  # bf16 unchanged


def test_serving_step_graphs_have_no_quantization_pass():
    """A serving step's linears take their input quantized by the fused producer kernels
    (TensorRT-LLM's AllReduceFusionOp.RESIDUAL_RMS_NORM_QUANT_FP8 / _NVFP4): no such operator."""
    model = get_model("llama-3.1-8b")
    for prec in (Precision(weight="fp8", activation="fp8"), Precision(weight="fp4", activation="fp4")):
        t = build_step_graph(model, Parallelism(), prec, StepShape.uniform(model, prefill_seqs=2, chunk=512))
        assert QUANTIZE_INPUT not in t.names


def test_quantize_fractions_are_checked():
    with pytest.raises(ValueError, match="fraction for 'fp4' must be in"):
        EfficiencySpec(gemm_quantize_bandwidth_fraction_by_dtype={"fp4": 1.5})
    with pytest.raises(ValueError, match="unknown dtype 'fp5'"):
        EfficiencySpec(gemm_quantize_bandwidth_fraction_by_dtype={"fp5": 0.5})
