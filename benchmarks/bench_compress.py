"""Compression of the bundled real model: the ordering the papers report, low-rank recovery, and time.

Usage: python benchmarks/bench_compress.py [--calib 128] [--eval 256] [--causal-calib 8] [--causal-eval 8]
       [--only encoder|causal] [--blas-threads N]

Two models: the all-MiniLM-L6-v2 sentence encoder (fp32 safetensors; quality = embedding agreement) and
the SmolLM2-135M-Instruct causal LM (Q4_1 GGUF dequantized, so its "dense" baseline is already 4-bit;
quality = held-out perplexity on pydoc_data.topics, 256-token windows). For each:

1. At 50% unstructured and at 2:4 sparsity, per method: mean layer reconstruction error
   ||WX - W'X|| / ||WX|| (calibration inputs) and the quality kept on held-out passages (embedding
   cosine similarity, top-10 retrieval agreement). The papers' ordering: magnitude > Wanda > SparseGPT
   >= OPTIMA-style reconstruction in error, the reverse in quality.
2. Low-rank correction: SparseGPT 2:4 + int4 with and without adapters of rank 10%: the share of the
   quality gap (1 - cosine) the adapters recover.
3. Wall time of SparseGPT 2:4 + int4 on the whole model (target: 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

from infersim.compress import CompressionSpec, run_compression

MODEL = "all-minilm-l6-v2"
CAUSAL = "smollm2"
ORDER = ("magnitude", "wanda", "sparsegpt", "optima")


def ordering(values: list[float], lower_is_better: bool = True) -> bool:
    """magnitude > Wanda > SparseGPT >= OPTIMA (in harm: error, perplexity)."""
    v = values if lower_is_better else [-x for x in values]
    return v[0] > v[1] > v[2] >= v[3]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def causal(args) -> None:
    def run(method, spec):
        return run_compression(CAUSAL, method, spec, args.causal_calib, args.causal_eval).record

    print(f"\n{CAUSAL} (SmolLM2-135M-Instruct, Q4_1 GGUF dequantized: the dense baseline is already 4-bit), "
          f"{args.causal_calib} calibration / {args.causal_eval} held-out windows of 256 tokens (pydoc_data.topics)")
    print(f"{'sparsity':<9} {'method':<10} {'layer error':>12} {'ppl dense':>10} {'ppl after':>10} {'seconds':>8}")
    for label, spec in (("50%", CompressionSpec(sparsity=0.5)), ("2:4", CompressionSpec(n=2, m=4))):
        rows = {}
        for m in ORDER:
            r = rows[m] = run(m, spec)
            print(f"{label:<9} {m:<10} {r.mean_relative_error:>12.4f} {r.perplexity_dense:>10.3f} "
                  f"{r.perplexity_compressed:>10.3f} {r.seconds:>8.1f}", flush=True)
        print(f"{label:<9} ordering holds: error {ordering([rows[m].mean_relative_error for m in ORDER])}, "
              f"perplexity {ordering([rows[m].perplexity_compressed for m in ORDER])}")
    before = load()
    t0 = time.perf_counter()
    base = run("sparsegpt", CompressionSpec(n=2, m=4, bits=4))
    wall = time.perf_counter() - t0
    lowrank = run("sparsegpt", CompressionSpec(n=2, m=4, bits=4, lowrank=0.1))
    gap = base.perplexity_compressed - base.perplexity_dense
    recovered = (base.perplexity_compressed - lowrank.perplexity_compressed) / gap
    print(f"\nSparseGPT 2:4 + int4 g128, whole model (30 layers x 7 linears): compression {base.seconds:.1f} s wall, "
          f"{base.cpu_seconds:.1f} s CPU (target 120 s on 2 cores), {wall:.1f} s wall with the perplexity evaluation; "
          f"{before} before, {load()} after; BLAS threads {args.blas_threads or 'library default'}")
    print(f"  perplexity {base.perplexity_dense:.3f} -> {base.perplexity_compressed:.3f}; linear layers "
          f"{base.compressed_linear_bytes / base.dense_linear_bytes:.0%} of fp16")
    print(f"  + rank-10% adapters: perplexity {lowrank.perplexity_compressed:.3f}: recovers {recovered:.0%} of the "
          f"gap ({lowrank.compressed_linear_bytes / lowrank.dense_linear_bytes:.0%} of fp16)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--eval", type=int, default=256)
    ap.add_argument("--causal-calib", type=int, default=8)
    ap.add_argument("--causal-eval", type=int, default=8)
    ap.add_argument("--only", choices=("encoder", "causal"), default=None)
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="cap BLAS threads (threadpoolctl): on a shared machine 1 avoids oversubscription")
    args = ap.parse_args()
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.blas_threads, user_api="blas")
    if args.only != "causal":
        encoder(args)
    if args.only != "encoder":
        causal(args)


def encoder(args) -> None:
    def run(method, spec):
        return run_compression(MODEL, method, spec, args.calib, args.eval).record

    print(f"{MODEL}, {args.calib} calibration / {args.eval} held-out passages of 128 tokens (pydoc_data.topics)")
    print(f"{'sparsity':<9} {'method':<10} {'layer error':>12} {'cosine':>8} {'top-10 agree':>13} {'seconds':>8}")
    for label, spec in (("50%", CompressionSpec(sparsity=0.5)), ("2:4", CompressionSpec(n=2, m=4))):
        rows = {m: run(m, spec) for m in ("magnitude", "wanda", "sparsegpt", "optima")}
        for m, r in rows.items():
            print(f"{label:<9} {m:<10} {r.mean_relative_error:>12.4f} {r.cosine_similarity:>8.4f} "
                  f"{r.retrieval_agreement_at_10:>13.3f} {r.seconds:>8.1f}")
        err = [rows[m].mean_relative_error for m in rows]
        cos = [rows[m].cosine_similarity for m in rows]
        print(f"{label:<9} ordering holds: error {all(a > b for a, b in zip(err, err[1:3])) and err[2] >= err[3]}, "
              f"quality {all(a < b for a, b in zip(cos, cos[1:3])) and cos[2] <= cos[3]}")

    base = run("sparsegpt", CompressionSpec(n=2, m=4, bits=4))
    lowrank = run("sparsegpt", CompressionSpec(n=2, m=4, bits=4, lowrank=0.1))
    slim = run("slim", CompressionSpec(n=2, m=4, bits=4, lowrank=0.1))
    recovered = (lowrank.cosine_similarity - base.cosine_similarity) / (1.0 - base.cosine_similarity)
    print(f"\nSparseGPT 2:4 + int4 g128: cosine {base.cosine_similarity:.4f}, {base.seconds:.1f} s, linear layers "
          f"{base.compressed_linear_bytes / base.dense_linear_bytes:.0%} of fp16")
    print(f"  + rank-10% adapters: cosine {lowrank.cosine_similarity:.4f}: recovers {recovered:.0%} of the gap "
          f"({lowrank.compressed_linear_bytes / lowrank.dense_linear_bytes:.0%} of fp16)")
    print(f"SLiM 2:4 + int4 + rank 10%: cosine {slim.cosine_similarity:.4f}, top-10 agreement "
          f"{slim.retrieval_agreement_at_10:.3f}")


if __name__ == "__main__":
    main()
