"""Compression of the bundled real model: the ordering the papers report, low-rank recovery, and time.

Usage: python benchmarks/bench_compress.py [--calib 128] [--eval 256]

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

from infersim.compress import CompressionSpec, run_compression

MODEL = "all-minilm-l6-v2"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--eval", type=int, default=256)
    args = ap.parse_args()

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
