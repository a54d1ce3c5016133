"""Template devices against LLMCompass's measured A100 and MI210 operator latencies, and SCALE-Sim's trends.

Usage: python benchmarks/bench_llmcompass.py

1. Matmul sweeps (LLMCompass figure 5a/b): fp16 ``[M, K] x [K, N]`` on a real A100 80GB and MI210, as
   bundled in benchmarks/data/llmcompass/ (see its SOURCE.md), against the GA100 and MI210 templates of
   examples/accelerators/ costed by infersim's cost model (systolic folds, SRAM-limited tiling).
2. One GPT-3 layer (LLMCompass figure 5i/k: d 12288, 96 heads, TP4, fp16, batch 8, 2048 tokens; decode at
   context 3072), operator by operator on the A100. Q_mul_K and A_mul_V are batched GEMMs (one problem
   per sequence and head); softmax, layer norms and GeLU are memory passes; all-reduces use the template's
   NVLink. LLMCompass's own simulated figures are published only as plots, so the reference is the
   measurement.
3. SCALE-Sim's array-size trends (Samajdar et al., ISPASS 2020): at a fixed number of MACs, fold cycles of
   one large array vs many small ones (scale-up vs scale-out), and off-chip traffic as the SRAM shrinks.

Errors are predicted / measured - 1; MdAPE is the median of their absolute values. The templates keep
infersim's generic 4 us per kernel call (the measured sweeps include the host's launch cost, ~21-30 us per
call on these GPUs, which a chip description does not know): rows under 100 us are shown but also
summarised apart.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml

from infersim.hardware.device import device_from_spec
from infersim.hardware.template import derive, parse_template
from infersim.perf.array_mapping import gemm_reread_bytes
from infersim.perf.operators import Collective, OpBuilder, OpKind
from infersim.perf.roofline import cost_ops

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "llmcompass"
EXAMPLES = ROOT / "examples" / "accelerators"
FP16 = 2.0


def template_device(name: str):
    data = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return device_from_spec(derive(parse_template(data, name))[0])


def read_matmuls(name: str) -> list[tuple[int, int, int, float]]:
    """(M, N, K, seconds) rows of an LLMCompass matmul CSV (``M, N, K, 0.1900ms, 101.7Tflops``)."""
    with open(DATA / name) as f:
        return [(int(r[0]), int(r[1]), int(r[2]), float(r[3].strip().removesuffix("ms")) * 1e-3)
                for r in csv.reader(f) if r]


def gemm_times(device, rows) -> np.ndarray:
    m, n, k = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    b = OpBuilder(len(rows))
    b.gemm("gemm", m, n, k, weight_dtype_bytes=FP16, act_dtype_bytes=FP16, dtype="fp16")
    return cost_ops(b.build(), device).time_s[0]


def mdape(pred, meas) -> float:
    return float(np.median(np.abs(np.asarray(pred) / np.asarray(meas) - 1.0)))


def matmul_sweeps() -> list[tuple[float, float]]:
    pairs = []
    for device_name, template in (("A100", "ga100"), ("MI210", "mi210")):
        rows = read_matmuls(f"matmul_{device_name}.csv")
        pred = gemm_times(template_device(template), rows)
        meas = np.array([r[3] for r in rows])
        print(f"\nfp16 matmul on {device_name} (measured, LLMCompass ae/figure5/ab) vs the {template} template:")
        print(f"{'M':>6} {'N':>6} {'K':>6} {'measured ms':>12} {'infersim ms':>12} {'error':>8}")
        for (m, n, k, t), p in zip(rows, pred):
            print(f"{m:>6} {n:>6} {k:>6} {t * 1e3:>12.4f} {p * 1e3:>12.4f} {p / t - 1:>+8.1%}")
        long = meas >= 100e-6
        print(f"  MdAPE {mdape(pred, meas):.1%} over {len(rows)} shapes; {mdape(pred[long], meas[long]):.1%} over the "
              f"{int(long.sum())} taking >= 100 us")
        pairs += list(zip(pred, meas))
    return pairs


#: LLMCompass's per-operator order (ae/figure5/ijkl/plot_transformer.py)
CATEGORIES = ("Q_K_V", "Q_mul_K", "A_mul_V", "Wo_proj", "W1_proj", "W2_proj", "Softmax", "LayerNorm_MHA",
              "LayerNorm_FFN", "GeLU", "AllReduce_MHA", "AllReduce_FFN")


def gpt3_layer(tokens: int, queries: int, keys: int) -> OpBuilder:
    """LLMCompass's GPT-3 layer on one of 4 devices: ``tokens`` rows through the projections, 8 x 24 local
    heads of ``queries`` x ``keys`` attention (ae/figure5/ijkl/test_transformer.py shapes)."""
    d, heads, head_dim, batch = 12288, 96 // 4, 128, 8
    problems = batch * heads
    b = OpBuilder(1)
    gemm = dict(weight_dtype_bytes=FP16, act_dtype_bytes=FP16, dtype="fp16")
    b.gemm("Q_K_V", tokens, 3 * d // 4, d, **gemm)
    # batched GEMMs: one [queries, 128] x [128, keys] problem per sequence and head, its own "weights" (K, V)
    b.gemm("Q_mul_K", problems * queries, keys, head_dim, weights_read=problems * head_dim * keys,
           experts=problems, **gemm)
    b.gemm("A_mul_V", problems * queries, head_dim, keys, weights_read=problems * keys * head_dim,
           experts=problems, **gemm)
    b.gemm("Wo_proj", tokens, d, d // 4, **gemm)
    b.gemm("W1_proj", tokens, d, d, **gemm)  # 4 d / 4 devices
    b.gemm("W2_proj", tokens, d, d, **gemm)
    scores = problems * queries * keys
    b.add("Softmax", OpKind.ELEMENTWISE, dtype="fp16", flops=5.0 * scores, act_bytes=2.0 * scores * FP16)
    for name in ("LayerNorm_MHA", "LayerNorm_FFN"):
        b.add(name, OpKind.ELEMENTWISE, dtype="fp16", flops=5.0 * tokens * d, act_bytes=2.0 * tokens * d * FP16)
    b.add("GeLU", OpKind.ELEMENTWISE, dtype="fp16", flops=8.0 * tokens * d, act_bytes=2.0 * tokens * d * FP16)
    for name in ("AllReduce_MHA", "AllReduce_FFN"):
        b.add(name, OpKind.COLLECTIVE, dtype="fp16", collective=Collective.ALL_REDUCE,
              comm_bytes=tokens * d * FP16, group_size=4)
    return b


def transformer_layer() -> list[tuple[float, float]]:
    device = template_device("ga100")
    pairs = []
    for phase, file, builder in (("prefill", "transformer_A100.csv", gpt3_layer(8 * 2048, 2048, 2048)),
                                 ("decode", "transformerAR_A100.csv", gpt3_layer(8, 1, 3072))):
        meas = np.array([float(x) for x in (DATA / file).read_text().split()])
        table = builder.build()
        assert tuple(table.names) == CATEGORIES
        pred = cost_ops(table, device).time_s[:, 0]
        print(f"\nGPT-3 layer, {phase}, A100 (measured, LLMCompass ae/figure5/ijkl) vs the ga100 template:")
        print(f"{'operator':<14} {'measured ms':>12} {'infersim ms':>12} {'error':>8}")
        for name, t, p in zip(CATEGORIES, meas, pred):
            print(f"{name:<14} {t * 1e3:>12.4f} {p * 1e3:>12.4f} {p / t - 1:>+8.1%}")
        print(f"{'layer':<14} {meas.sum() * 1e3:>12.4f} {pred.sum() * 1e3:>12.4f} {pred.sum() / meas.sum() - 1:>+8.1%}"
              f"   MdAPE over operators {mdape(pred, meas):.1%}")
        pairs += list(zip(pred, meas))
    return pairs


def scale_sim_trends() -> None:
    """SCALE-Sim's trends on a fixed budget of 2^14 MACs: output tiles of side s spread over 2^14 / s^2 arrays
    in waves, each fold ``2 s + s + k - 2`` cycles (:func:`~infersim.hardware.template.systolic_fold_cycles`)."""
    print("\nSCALE-Sim trends, 16,384 MACs as arrays of side s (fold cycles of 2 s + s + k - 2 per output tile):")
    shapes = {"GPT-3 QKV, 8 tokens": (8, 12288, 9216), "GPT-3 QKV, 2048 tokens": (2048, 12288, 9216),
              "ResNet-50 conv2 as GEMM": (3136, 576, 64)}
    print(f"{'arrays x side':>14} " + " ".join(f"{s:>24}" for s in shapes))
    for side in (8, 16, 32, 64, 128):
        arrays = 2**14 // (side * side)
        cells = []
        for m, k, n in shapes.values():
            tiles = -(-m // side) * -(-n // side)
            waves = -(-tiles // arrays)
            fold = 3 * side + k - 2
            cells.append(f"{waves * fold / 1e3:>9.1f} kcyc, util {m * k * n / (waves * fold * 2**14):>4.0%}")
        print(f"{arrays:>6} x {side:<5} " + " ".join(f"{c:>24}" for c in cells))
    print("  (scale-out -- many small arrays -- wins on small and skinny GEMMs; large arrays lose to padding,\n"
          "   SCALE-Sim's finding that utilization falls as one array grows for a fixed workload)")
    print("\nOff-chip traffic of GPT-3 W1 at 8 x 2048 tokens ([16384, 12288] x [12288, 12288], fp16) by on-chip SRAM:")
    m, k, n = 2048 * 8, 12288, 12288
    base = (m * k + k * n + m * n) * FP16
    for mib in (1, 4, 16, 64, 256):
        extra = float(gemm_reread_bytes(m, n, k, m * k * FP16, k * n * FP16, mib * 2**20, FP16))
        total = base + extra
        print(f"  {mib:>4} MiB: {total / 2**30:7.2f} GiB ({total / base:5.1f}x the compulsory traffic)")
    print("  (SCALE-Sim's trend: the DRAM bandwidth a given array needs falls as its SRAM grows)")


if __name__ == "__main__":
    pairs = matmul_sweeps()
    pairs += transformer_layer()
    pred, meas = np.array(pairs).T
    long = meas >= 100e-6
    print(f"\nAll {len(pairs)} measured operators: MdAPE {mdape(pred, meas):.1%}; {mdape(pred[long], meas[long]):.1%} "
          f"over the {int(long.sum())} taking >= 100 us")
    scale_sim_trends()
