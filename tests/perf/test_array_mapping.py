"""Tile-level mapping of template devices: SRAM-limited GEMM tiling and FLAT attention, by hand."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from infersim.hardware import get_device
from infersim.hardware.template import fused_attention_footprint_bytes
from infersim.models import get_model
from infersim.perf.array_mapping import (array_extra_bytes, attention_unfused_bytes, flat_row_block,
                                         gemm_block_side, gemm_reread_bytes)
from infersim.perf.estimate import step_costs
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.shape import StepShape
from infersim.perf.step_time import StepTimeModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accelerators"
MIB = 2**20


def _device(tmp_path, local_kib=192, global_mib=48, rows=16, cols=16):
    data = yaml.safe_load((EXAMPLES / "ga100.yaml").read_text())
    data["template"]["cores"].update(local_sram_kib=local_kib, array_rows=rows, array_cols=cols)
    data["template"]["global_buffer_mib"] = global_mib
    path = tmp_path / f"chip-{local_kib}-{global_mib}.yaml"
    path.write_text(yaml.safe_dump(data))
    return get_device(str(path))


def test_gemm_whose_blocks_fit_pays_no_rereads():
    # S = 1 MiB, k = 256, bf16: whole-depth panels give b = S / (4 k 2) = 512 (partial sums
    # sqrt(S / 8) = 362); a 512 x 512 output is one block: each operand read once
    assert gemm_block_side(256, MIB, 2.0) == 512
    assert gemm_reread_bytes(512, 512, 256, 512 * 256 * 2, 256 * 512 * 2, MIB, 2.0) == 0.0


def test_gemm_whose_blocks_do_not_fit_rereads_its_operands():
    # k = 4096: panels give S / (4 x 4096 x 2) = 32, partial sums floor(sqrt(2^20 / 8)) = 362;
    # columns: max(S / (2 k 2) - 362 < 0, S / (8 x 362)) -> 362. A 4096 x 4096 output is
    # ceil(4096 / 362) = 12 blocks each way: A and B (32 MiB each) are read 12 times, 11 extra.
    assert gemm_block_side(4096, MIB, 2.0) == 362
    a = b = 4096 * 4096 * 2
    assert math.ceil(4096 / 362) == 12
    assert gemm_reread_bytes(4096, 4096, 4096, a, b, MIB, 2.0) == 11 * a + 11 * b
    # within 3% of Hong & Kung's 2 m n k bpe / b for the same block
    assert 11 * (a + b) == pytest.approx(2 * 4096**3 * 2 / 362, rel=0.03)


def test_decode_rows_take_the_whole_width_and_pay_nothing():
    # m = 8 rows: bm = 8, bn = max(S / (2 k 2) - 8, S / (8 x 8)) = 16,384 >= n
    assert gemm_reread_bytes(8, 14336, 4096, 8 * 4096 * 2, 4096 * 14336 * 2, MIB, 2.0) == 0.0


def test_grouped_gemm_rereads_each_experts_weights_for_its_own_rows():
    # 8 experts x 1,000 rows each, S = 1 MiB, k = 4096 -> bm = 362 (fits none), ceil(1000 / 362) = 3
    # reads of every expert's weights; the 8,000 rows as one GEMM would need ceil(8000 / 362) = 23
    w = 8 * 4096 * 512 * 2.0
    got = gemm_reread_bytes(8000, 512, 4096, 0.0, w, MIB, 2.0, experts=np.float64(8))
    assert got == 2 * w


def test_fused_footprint_of_one_tile_and_the_row_block_that_fits():
    # 16 query rows, 1,000 keys, d = 128, 16-key K/V tile, fp16:
    # 2 (2 x 16 x 128 + 16 x 1000 + 2 x 16 x 128) = 48,384 bytes
    tile = fused_attention_footprint_bytes(16, 1000, 128, 16, 2)
    assert tile == 2 * (2 * 16 * 128 + 16 * 1000 + 2 * 16 * 128) == 48_384
    assert flat_row_block(1000, 128, 16, 2.0, tile, 64) == 16
    assert flat_row_block(1000, 128, 16, 2.0, tile - 1, 64) == 15
    assert flat_row_block(1000, 128, 16, 2.0, 10 * tile, 16) == 16  # capped at the array rows
    # one row: 2 (256 + N + 4096) bytes; 64 KiB holds N <= 28,416 keys
    assert flat_row_block(28_416, 128, 16, 2.0, 65_536, 16) == 1
    assert flat_row_block(28_417, 128, 16, 2.0, 65_536, 16) == 0


def test_unfused_attention_moves_the_logits_four_times(tmp_path):
    array = _device(tmp_path, local_kib=64).spec.array
    # decode: one query per sequence per head, so the keys are the context
    heads, seqs = 8.0, 4.0
    fits = attention_unfused_bytes(heads * seqs * 28_416, heads, seqs, 128.0, 2.0, array)
    spills = attention_unfused_bytes(heads * seqs * 40_000, heads, seqs, 128.0, 2.0, array)
    assert fits == 0.0
    assert spills == 4 * heads * seqs * 40_000 * 2.0


def test_cost_model_charges_unfused_attention_only_past_the_footprint(tmp_path):
    """Llama-3.1-8B decode on a template with 64 KiB of local SRAM (head size 128, 16-key tiles):
    one query row fits up to 28,416 keys; past that each decode attention row moves
    4 x scores x 2 bytes more, and only the attention rows change."""
    model = get_model("llama-3.1-8b")
    device = _device(tmp_path, local_kib=64)
    for context, spills in ((20_000, False), (40_000, True)):
        shape = StepShape.uniform(model, decode_seqs=4, decode_context=context)
        table, costs = step_costs(model, device, Parallelism(), Precision(), shape)
        extra = array_extra_bytes(table, device)
        attn = [i for i, n in enumerate(table.names) if n.startswith("attention.decode")]
        assert attn
        for i in range(len(table.names)):
            expected = 4 * table.scores[i, 0] * 2.0 if (i in attn and spills) else 0.0
            assert extra[i, 0] == pytest.approx(expected)
        if spills:
            assert table.scores[attn[0], 0] == 4 * 32 * context  # 4 sequences x 32 query heads


def test_prefill_gemm_on_a_small_sram_reads_operands_again(tmp_path):
    """Llama-3.1-8B prefill of 4,096 tokens on a template with 64 KiB local SRAM and no global
    buffer (108 x 64 KiB = 6.75 MiB on chip): mlp.down is 4096 x 14336 @ 14336 x 4096."""
    model = get_model("llama-3.1-8b")
    device = _device(tmp_path, local_kib=64, global_mib=0)
    shape = StepShape.uniform(model, prefill_seqs=1, chunk=4096)
    table, costs = step_costs(model, device, Parallelism(), Precision(), shape)
    i = table.names.index("mlp.down")
    m, n, k = 4096, 4096, 14336
    assert (table.gemm_m[i, 0], table.gemm_n[i, 0], table.gemm_k[i, 0]) == (m, n, k)
    s = 108 * 64 * 1024
    b = max(s / (4 * k * 2), math.sqrt(s / 8))           # max(61.7, 940.6): partial sums, 940
    bn = max(s / (2 * k * 2) - 940, s / (8 * 940))       # max(< 0, 941.2): 941
    assert math.floor(b) == 940 and math.floor(bn) == 941
    # A read ceil(4096 / 941) = 5 times, the weights ceil(4096 / 940) = 5 times: 4 extra each
    expected = m * k * 2 * (math.ceil(n / 941) - 1) + table.weight_bytes[i, 0] * (math.ceil(m / 940) - 1)
    assert expected == 4 * m * k * 2 + 4 * table.weight_bytes[i, 0]
    assert array_extra_bytes(table, device)[i, 0] == pytest.approx(expected)
    # with 48 MiB of global buffer more (55.5 MiB): b = floor(sqrt(S / 8)) = 2,678, two blocks each
    # way, one extra read of each operand
    big = _device(tmp_path, local_kib=64, global_mib=48)
    assert math.floor(math.sqrt((48 * 2**20 + s) / 8)) == 2678
    assert array_extra_bytes(table, big)[i, 0] == pytest.approx(expected / 4)


def test_catalog_devices_have_no_array_mapping():
    table, _ = step_costs(get_model("llama-3.1-8b"), get_device("a100-sxm-80gb"), Parallelism(), Precision(),
                          StepShape.uniform(get_model("llama-3.1-8b"), decode_seqs=4, decode_context=50_000))
    assert array_extra_bytes(table, get_device("a100-sxm-80gb")) is None


def test_step_time_equals_full_graph_on_a_template_device(tmp_path):
    """The simulator's fast step model charges the same re-reads and unfused attention."""
    model = get_model("llama-3.1-8b")
    device = _device(tmp_path, local_kib=64, global_mib=2)
    fast = StepTimeModel(model, device, initial_max_tokens=64)
    rng = np.random.default_rng(3)
    for _ in range(6):
        chunks = rng.integers(1, 6000, int(rng.integers(0, 3)))
        pasts = rng.integers(0, 60_000, len(chunks))
        ctx = rng.integers(1, 60_000, int(rng.integers(1, 16)))
        shape = StepShape.from_requests(model, chunks=chunks, pasts=pasts, decode_contexts=ctx)
        _, costs = step_costs(model, device, Parallelism(), Precision(), shape)
        assert fast.step_time_for(chunks, pasts, ctx) == pytest.approx(costs.step_time_s[0], rel=1e-9)


def test_scalar_twins_equal_the_vectorized_formulas(tmp_path):
    """The simulator's plain-float versions give the vectorized functions' numbers."""
    from infersim.perf.array_mapping import attention_unfused_bytes_scalar, gemm_reread_bytes_scalar

    rng = np.random.default_rng(7)
    m, n, k = (rng.integers(1, 40_000, 300).astype(float) for _ in range(3))
    experts = rng.choice([0.0, 4.0, 64.0], 300)
    sram = float(rng.integers(1, 64)) * MIB
    vec = gemm_reread_bytes(m, n, k, m * k * 2, k * n * 2, sram, 2.0, experts)
    for i in range(300):
        assert gemm_reread_bytes_scalar(m[i], n[i], k[i], m[i] * k[i] * 2, k[i] * n[i] * 2, sram, 2.0,
                                        experts[i]) == pytest.approx(vec[i])
    array = _device(tmp_path, local_kib=64).spec.array
    scores = rng.integers(1, 10**9, 300).astype(float)
    queries = rng.integers(1, 4096, 300).astype(float)
    vec = attention_unfused_bytes(scores, 32.0, queries, 128.0, 2.0, array)
    assert vec.any() and not vec.all()  # both sides of the footprint are exercised
    for i in range(300):
        assert attention_unfused_bytes_scalar(scores[i], 32.0, queries[i], 128.0, 2.0, array) == vec[i]
