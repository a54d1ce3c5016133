"""``infersim plan`` against AIConfigurator's ``cli default``, both run as separate processes.

AIConfigurator (PyPI ``aiconfigurator`` 0.12, NVIDIA, Apache-2.0) answers the same question from
measured kernel tables of TensorRT-LLM with a static model (no queueing). It is a peer, never
imported here or by ``src/``: install it in its own environment and point ``--aic`` at its
executable::

    python -m venv /tmp/aic && /tmp/aic/bin/pip install aiconfigurator==0.12.0
    python benchmarks/bench_plan_vs_aiconfigurator.py --aic /tmp/aic/bin/aiconfigurator

For every question both tools get the same model, GPUs, ISL/OSL and SLOs. infersim runs at the
precision AIConfigurator infers from the checkpoint (bf16 for the Llama and Qwen checkpoints, fp8
for DeepSeek-V3's block-fp8 weights), SLOs at p90 (its default), with the simulated top-5 check.
Printed per question: the wall time of both tools (cold processes), each tool's best aggregated
and disaggregated configuration and its predicted tokens/s/GPU. Figures printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (label, infersim model, AIC model path, infersim device, AIC system, GPUs, ISL, OSL, TTFT ms, TPOT ms, precision)
QUESTIONS = [
    ("70B 16xH100 2k/256", "llama-3.1-70b", "meta-llama/Meta-Llama-3.1-70B", "h100-sxm", "h100_sxm", 16, 2048, 256,
     1000, 60, "bf16"),
    ("70B 8xH200 2k/256", "llama-3.1-70b", "meta-llama/Meta-Llama-3.1-70B", "h200", "h200_sxm", 8, 2048, 256,
     1000, 60, "bf16"),
    ("70B 32xB200 2k/256", "llama-3.1-70b", "meta-llama/Meta-Llama-3.1-70B", "b200", "b200_sxm", 32, 2048, 256,
     1000, 60, "bf16"),
    ("8B 8xH100 1k/512", "llama-3.1-8b", "meta-llama/Meta-Llama-3.1-8B", "h100-sxm", "h100_sxm", 8, 1024, 512,
     500, 20, "bf16"),
    ("Qwen3-235B 16xH200 2k/512", "qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B", "h200", "h200_sxm", 16, 2048, 512,
     2000, 50, "bf16"),
    ("DeepSeek-V3 16xH200 2k/512", "deepseek-v3", "deepseek-ai/DeepSeek-V3", "h200", "h200_sxm", 16, 2048, 512,
     2000, 50, "fp8"),
    ("70B 16xH100 32k/1k", "llama-3.1-70b", "meta-llama/Meta-Llama-3.1-70B", "h100-sxm", "h100_sxm", 16, 32768, 1024,
     10000, 60, "bf16"),
]


def run_infersim(q) -> tuple[float, dict | None, str]:
    label, model, _, device, _, gpus, isl, osl, ttft, tpot, prec = q
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "infersim.cli.main", "plan", "--model", model, "--hardware", device, "--gpus",
           str(gpus), "--isl", str(isl), "--osl", str(osl), "--ttft", str(ttft), "--tpot", str(tpot), "--precision",
           prec, "--json", "--no-store"]
    if model in ("qwen3-235b-a22b", "deepseek-v3"):
        cmd.append("--moe")
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return wall, None, (proc.stderr.strip().splitlines() or ["?"])[-1]
    return wall, json.loads(proc.stdout), ""


def _aic_rows(save: Path, mode: str) -> list[dict]:
    found = sorted(save.rglob(f"{mode}/best_config_topn.csv"))
    if not found:
        return []
    with open(found[0]) as f:
        return list(csv.DictReader(f))


def run_aic(q, exe: str) -> tuple[float, dict, str]:
    label, _, path, _, system, gpus, isl, osl, ttft, tpot, _ = q
    save = Path(tempfile.mkdtemp(prefix="aic-"))
    cmd = [exe, "cli", "default", "--model-path", path, "--total-gpus", str(gpus), "--system", system, "--isl",
           str(isl), "--osl", str(osl), "--ttft", str(ttft), "--tpot", str(tpot), "--no-color", "--save-dir", str(save)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    out = {m: _aic_rows(save, m) for m in ("agg", "disagg")}
    shutil.rmtree(save, ignore_errors=True)
    err = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]
    return wall, out, err


def aic_text(rows: list[dict], mode: str, gpus: int) -> tuple[str, str]:
    if not rows:
        return "-", "-"
    r = rows[0]
    if mode == "agg":  # (the CSV's num_total_gpus is one replica's; replicas fill the budget)
        replicas = gpus // max(int(r["num_total_gpus"]), 1)
        return (f"{replicas}x {_par(r['parallel'])} bs{r['bs']} {r['gemm']}",
                f"{float(r['tokens/s/gpu']):.1f}")
    return (f"{r['(p)workers']}x P {_par(r['(p)parallel'])} + {r['(d)workers']}x D "
            f"{_par(r['(d)parallel'])} bs{r['(d)bs']} {r['(p)gemm']}", f"{float(r['tokens/s/gpu']):.1f}")


def _par(text: str) -> str:
    """AIConfigurator's parallel string without its degree-1 parts (tp4pp1dp1etp1ep1 -> tp4)."""
    import re

    parts = re.findall(r"([a-z]+)(\d+)", text)
    return "".join(f"{k}{v}" for k, v in parts if v != "1") or "tp1"


def ours_text(answer: dict | None, mode: str) -> tuple[str, str, str]:
    if answer is None or mode not in answer["best"]:
        return "-", "-", "-"
    from infersim.search.plan import describe

    best = answer["best"][mode]
    static = best["metrics"]["goodput_tokens_per_s_per_device"]
    sim = next((t["simulated"] for t in answer["top"] if t["config"] == best["config"] and t["simulated"]), None)
    sim_txt = f"{sim['goodput_tokens_per_s_per_device']:.1f}" if sim else "-"
    return describe(best["config"]) + f" bs{best['config']['max_batch']}", f"{static:.1f}", sim_txt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aic", default="/tmp/aic/bin/aiconfigurator",
                    help="the aiconfigurator 0.12 executable, in its own environment (the test set-up installs "
                         "aiconfigurator 0.4.0 without dependencies beside infersim, for its data only)")
    ap.add_argument("--only", default=None, help="comma-separated question numbers (1-based)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    picks = [int(x) - 1 for x in args.only.split(",")] if args.only else range(len(QUESTIONS))
    for k in picks:
        q = QUESTIONS[k]
        w_ours, ours, err_ours = run_infersim(q)
        w_aic, aic, err_aic = run_aic(q, args.aic)
        print(f"\n[{k + 1}] {q[0]}  (TTFT <= {q[8]} ms, TPOT <= {q[9]} ms; infersim at {q[10]}, p90 SLOs)")
        print(f"    wall: infersim {w_ours:.1f} s (static pass {ours['static_wall_s']:.2f} s in-process, simulated "
              f"top-{len(ours['top'])} {ours['simulated_wall_s']:.1f} s)" if ours else f"    wall: infersim {w_ours:.1f} s")
        print(f"          aiconfigurator {w_aic:.1f} s    ratio {w_aic / w_ours:.1f}x")
        if err_ours:
            print(f"    infersim: {err_ours}")
        if err_aic:
            print(f"    aiconfigurator: {err_aic}")
        for mode, ours_mode in (("agg", "aggregated"), ("disagg", "disaggregated"), (None, "afd")):
            mine, static, sim = ours_text(ours, ours_mode)
            if mode is None and mine == "-":
                continue
            print(f"    {ours_mode:<13} infersim: {mine:<58} {static:>7} tok/s/GPU static, {sim:>7} simulated")
            if mode is not None:
                theirs, tps = aic_text(aic.get(mode, []), mode, q[5])
                print(f"    {'':<13} aiconfig: {theirs:<58} {tps:>7} tok/s/GPU")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
