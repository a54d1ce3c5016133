"""One MoE shape, three engines' kernels: how much the measured MoE speed depends on the engine.

aiconfigurator-core times the same fused-MoE shapes under TensorRT-LLM, vLLM and SGLang (each
framework's current table). For Mixtral-8x7B's MoE layer (hidden 4096, expert FFN 14336, top 2 of 8
experts, one GPU, balanced routing) this prints each engine's gated-MoE kernel time per layer and its
FLOP/s (2 x tokens x top-k x 3 x hidden x FFN FLOPs), per weight format, and the time over
TensorRT-LLM's per-tensor FP8 kernel, which the shipped profiles are fitted to.
docs/validation.md ("Current accuracy", Mixtral) quotes these figures. Figures printed, never asserted.

    python benchmarks/bench_moe_engines.py [--devices h100-sxm,h200] [--tokens 1024,4096,8192]
"""

from __future__ import annotations

import argparse

from infersim.fidelity import load_aiconfigurator

SHAPE = {"hidden": 4096, "inter": 14336, "topk": 2, "num_experts": 8, "tp": 1, "ep": 1}  # Mixtral-8x7B
ENGINES = ("trtllm", "vllm", "sglang")


def _rows(device: str, engine: str, tokens: set[int]) -> dict[tuple[str, str, int], float]:
    """(dtype, format, tokens) -> latency in s of the balanced, gated rows of SHAPE."""
    table = load_aiconfigurator(device, "moe", engine, include_variants=True).to_pylist()
    out = {}
    for r in table:
        if any(r[k] != v for k, v in SHAPE.items()) or r["tokens"] not in tokens:
            continue
        if "dist=" in r["variant"] or "nongated" in r["variant"]:
            continue  # power-law routing or a non-gated MLP
        out[(r["dtype"], r["variant"] or "per-tensor", r["tokens"])] = r["latency_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="h100-sxm,h200")
    ap.add_argument("--tokens", default="1024,4096,8192")
    args = ap.parse_args()
    tokens = sorted(int(t) for t in args.tokens.split(","))
    flops_per_token = 2 * SHAPE["topk"] * 3 * SHAPE["hidden"] * SHAPE["inter"]
    for device in args.devices.split(","):
        rows = {e: _rows(device, e, set(tokens)) for e in ENGINES}
        ref = rows["trtllm"]
        print(f"\n{device}: Mixtral-8x7B MoE layer, balanced routing (ms per layer, TFLOP/s, x TensorRT-LLM fp8)")
        print(f"{'engine':8s} {'dtype':5s} {'format':10s}" + "".join(f" {t:>26d}" for t in tokens))
        for engine in ENGINES:
            for dtype, fmt in sorted({(d, f) for d, f, _ in rows[engine]}):
                cells = []
                for t in tokens:
                    lat = rows[engine].get((dtype, fmt, t))
                    base = ref.get(("fp8", "per-tensor", t))
                    if lat is None:
                        cells.append(f" {'-':>26s}")
                        continue
                    ratio = f"{lat / base:5.2f}x" if base else "   - "
                    cells.append(f" {lat * 1e3:7.3f} ms {flops_per_token * t / lat / 1e12:6.0f} TF {ratio}")
                print(f"{engine:8s} {dtype:5s} {fmt:10s}" + "".join(cells))


if __name__ == "__main__":
    main()
