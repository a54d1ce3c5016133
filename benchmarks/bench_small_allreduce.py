"""Small-message all-reduce: measured (aiconfigurator-core) against the spec-sheet model and the shipped profiles.

A tensor-parallel decode step all-reduces one hidden vector per token per layer: 16 KiB for
Llama-2-70B at batch 1 (8,192 x bf16). For every device with measured collectives this prints,
per group size and message size, the measured latency of TensorRT-LLM's custom all-reduce
(CUDA-graph rows, what the shipped profiles are fitted to; eager rows where the package has
them) and of NCCL's all-reduce (nccl-tests-style rows of the system's NCCL version), next to
what the spec-sheet-only model and the shipped profile predict for the same call.

    python benchmarks/bench_small_allreduce.py [--sizes 8192,16384,65536] [--devices a100-sxm-80gb,h100-sxm]

Source of the measured rows: aiconfigurator-core's ``systems/data/<device>/comm/`` tables
(custom_allreduce_perf.parquet, nccl/<version>/nccl_perf.parquet; ``latency`` in ms).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from infersim.fidelity import load_aiconfigurator
from infersim.fidelity.kernels import build_kernels
from infersim.fidelity.aic_tables import AIC_DEVICE_NAMES, aiconfigurator_systems_dir
from infersim.hardware import get_device


def _aic_name(device: str) -> str:
    inverse = {v: k for k, v in AIC_DEVICE_NAMES.items()}
    return inverse.get(device, device.replace("-", "_"))


def _nccl_rows(root: Path, device: str) -> dict[tuple[int, int], float]:
    """(group size, message bytes) -> NCCL all-reduce latency (s) at the system's NCCL version."""
    system = _aic_name(device)
    spec = root / f"{system}.yaml"
    version = ((yaml.safe_load(spec.read_text()) or {}).get("misc") or {}).get("nccl_version") if spec.is_file() else None
    files = sorted((root / "data" / system / "comm" / "nccl").glob("*/nccl_perf.parquet"))
    files = [f for f in files if version is None or f.parent.name == str(version)] or files[-1:]
    out: dict[tuple[int, int], float] = {}
    for f in files:
        t = pq.read_table(f)
        t = t.filter(pc.equal(t.column("op_name"), "all_reduce"))
        width = {"half": 2, "bfloat16": 2, "float16": 2, "float32": 4}
        for row in t.to_pylist():
            nbytes = int(row["message_size"]) * width.get(str(row.get("nccl_dtype", "half")), 2)
            out[(int(row["num_gpus"]), nbytes)] = float(row["latency"]) * 1e-3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="8192,16384,65536", help="message bytes")
    ap.add_argument("--devices", default="a100-sxm-80gb,h100-sxm,h200,b200,gb200,l40s")
    args = ap.parse_args()
    root = aiconfigurator_systems_dir()
    if root is None:
        raise SystemExit("aiconfigurator-core is not installed (pip install aiconfigurator-core)")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'device':14} {'p':>2} {'bytes':>7} | {'custom AR graph':>15} {'custom AR eager':>15} {'NCCL':>9} | "
          f"{'spec model':>10} {'profile':>9}   (microseconds)")
    for name in args.devices.split(","):
        rows = load_aiconfigurator(devices=[name], ops=["allreduce"], include_variants=True)
        nccl = _nccl_rows(root, name)
        spec, shipped = get_device(name, efficiency="spec"), get_device(name)
        p_all = np.asarray(rows.column("num_devices").to_numpy())
        b_all = np.asarray(rows.column("message_bytes").to_numpy())
        v_all = np.asarray(rows.column("variant").to_numpy(zero_copy_only=False)).astype(str)
        lat = np.asarray(rows.column("latency_s").to_numpy())
        pred_spec = build_kernels(rows).predict(spec)
        pred_prof = build_kernels(rows).predict(shipped)
        for p in sorted(set(p_all.tolist())):
            for size in sizes:
                def pick(variant: str, values: np.ndarray) -> float:
                    hit = np.flatnonzero((p_all == p) & (b_all == size) & (v_all == variant))
                    return float(values[hit[0]]) * 1e6 if hit.size else float("nan")

                graph, eager = pick("", lat), pick("eager", lat)
                nccl_us = nccl.get((int(p), size), float("nan")) * 1e6
                print(f"{name:14} {p:>2} {size:>7} | {graph:>15.1f} {eager:>15.1f} {nccl_us:>9.1f} | "
                      f"{pick('', pred_spec):>10.1f} {pick('', pred_prof):>9.1f}")
        print(f"{'':14} basis of the profile: {shipped.basis}")


if __name__ == "__main__":
    main()
