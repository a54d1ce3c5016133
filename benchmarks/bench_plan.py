"""``infersim plan``: static-vs-simulated agreement under load, and the wall time of the answer.

Part 1 (agreement): for a grid of deployments (aggregated chunked-prefill replicas, with PP and
several replicas behind round robin, and prefill/decode-disaggregated pools of 1-4 prefill workers),
the load-aware static evaluator (``evaluator: loaded``) and the discrete-event simulator are run at
the same Poisson rates, 50 %, 65 % and 80 % of the static capacity (the highest sustainable rate, no
SLOs); the table prints TTFT p50 and TPOT p50 from both and their relative difference. The target is
|diff| <= 15 %.

Part 2 (speed): cold processes of ``infersim`` (no arguments), ``infersim estimate``, the static
pass of the 16-GPU ``infersim plan`` question (``--no-simulate --no-store --json``) and the whole
answer with the simulated top-5, beside ``python -c pass`` on the same machine at the same time:
wall median / min / max of ``--runs`` runs, their CPU time (what the wall would be on a quiet machine) and
the seconds each spends importing (``-X importtime``).

Part 3 (PP): for pipeline-parallel replicas, how much the virtual-engine model (independent engines,
each step the whole pipeline's latency) overstates the step rate of micro-batches that share the
stages, at the static model's own mix of prefill-bearing and decode-only steps.

Usage::

    python benchmarks/bench_plan.py                 # both parts
    python benchmarks/bench_plan.py --agreement     # part 1 only
    python benchmarks/bench_plan.py --speed         # part 2 only (--bytecode: as installed, .pyc cached)
    python benchmarks/bench_plan.py --pp            # part 3 only
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADS = (0.5, 0.65, 0.8)

AGG = [  # (model, device, tp, pp, dtype, token budget, batch cap, isl, osl[, replicas behind round robin])
    ("llama-3.1-8b", "h100-sxm", 1, 1, "bf16", 2048, 256, 1024, 256),
    ("llama-3.1-8b", "h100-sxm", 1, 1, "bf16", 512, 256, 2048, 128),
    ("llama-3.1-8b", "h100-sxm", 1, 1, "fp8", 4096, 256, 512, 512),
    ("llama-3.1-70b", "h100-sxm", 4, 1, "fp8", 2048, 256, 2048, 256),
    ("llama-3.1-70b", "h100-sxm", 4, 1, "fp8", 2048, 256, 2048, 256, 2),
    ("llama-3.1-70b", "h100-sxm", 2, 1, "fp8", 8192, 128, 2048, 256),
    ("llama-3.1-70b", "h100-sxm", 8, 1, "bf16", 1024, 512, 2048, 256),
    ("llama-3.1-70b", "h200", 4, 1, "bf16", 4096, 256, 4096, 512),
    ("llama-3.1-70b", "h100-sxm", 2, 2, "fp8", 2048, 256, 2048, 256),
    ("llama-3.1-70b", "h100-sxm", 2, 4, "fp8", 2048, 256, 2048, 256),
    ("qwen3-30b-a3b", "h100-sxm", 2, 1, "bf16", 2048, 256, 2048, 256),
    ("qwen3-30b-a3b", "h200", 1, 1, "fp8", 8192, 512, 1024, 1024),
]
DISAGG = [  # (model, device, dtype, prefill tp, P, decode tp, D, decode cap, isl, osl)
    ("llama-3.1-70b", "h100-sxm", "fp8", 2, 3, 4, 1, 256, 2048, 256),
    ("llama-3.1-70b", "h100-sxm", "bf16", 4, 2, 8, 1, 256, 2048, 256),
    ("llama-3.1-70b", "h200", "fp8", 2, 1, 4, 1, 256, 2048, 256),
    ("llama-3.1-70b", "h100-sxm", "fp8", 2, 4, 4, 2, 256, 4096, 512),
    ("llama-3.1-8b", "h100-sxm", "bf16", 1, 2, 1, 2, 256, 4096, 256),
    ("qwen3-30b-a3b", "h100-sxm", "bf16", 1, 3, 2, 1, 256, 2048, 256),
]


def _agg_config(row) -> dict:
    model, device, tp, pp, dt, budget, cap, isl, osl, *rest = row
    return {"model": model, "device": device, "tp": tp, "pp": pp, "weight_dtype": dt, "activation_dtype": dt,
            "kv_dtype": dt, "max_prefill_tokens": budget, "max_batch": cap, "replicas": rest[0] if rest else 1,
            "mode": "aggregated",
            "input_tokens": isl, "output_tokens": osl}


def _disagg_config(row) -> dict:
    model, device, dt, ptp, p, dtp, d, cap, isl, osl = row
    return {"model": model, "device": device, "weight_dtype": dt, "activation_dtype": dt, "kv_dtype": dt,
            "mode": "disaggregated", "prefill_tp": ptp, "prefill_workers": p, "tp": dtp, "decode_workers": d,
            "max_batch": cap, "prefill_max_tokens": max(8192, isl), "input_tokens": isl, "output_tokens": osl}


def _label(c: dict) -> str:
    if c["mode"] == "aggregated":
        reps = f"{c['replicas']}x " if c["replicas"] > 1 else ""
        return (f"{c['model']} {c['device']} {reps}TP{c['tp']}PP{c['pp']} {c['weight_dtype']} T{c['max_prefill_tokens']} "
                f"B{c['max_batch']} {c['input_tokens']}/{c['output_tokens']}")
    return (f"{c['model']} {c['device']} {c['prefill_workers']}xP TP{c['prefill_tp']} + {c['decode_workers']}xD "
            f"TP{c['tp']} {c['weight_dtype']} {c['input_tokens']}/{c['output_tokens']}")


def agreement(requests: int) -> None:
    from infersim.search.evaluators.base import EvaluatorContext
    from infersim.search.evaluators.loaded import LoadedEvaluator
    from infersim.search.plan import PlanQuestion
    from infersim.search.plan_check import aggregated_scenario, pipeline_scenario
    from infersim.serving import simulate, summarize, validate_scenario
    from infersim.serving.pipeline import simulate_pipeline, summarize_pipeline
    from infersim.serving.pipeline.spec import validate_pipeline

    configs = [_agg_config(r) for r in AGG] + [_disagg_config(r) for r in DISAGG]
    print(f"{'deployment':<62} {'load':>5} {'req/s':>7} | {'TTFT p50 static':>15} {'sim':>8} {'diff':>6} | "
          f"{'TPOT p50 static':>15} {'sim':>8} {'diff':>6} | {'TTFT p90 static':>15} {'sim':>8} {'diff':>6} | "
          f"{'sim s':>5}")
    tails = []
    within = total = 0
    worst = 0.0
    for c in configs:
        wl = {"input_tokens": c["input_tokens"], "output_tokens": c["output_tokens"], "rate_rps": None}
        base = LoadedEvaluator(EvaluatorContext(kind="loaded", workload=wl)).evaluate([c]).outcome(0)
        if base.status != "ok":
            print(f"{_label(c):<62} rejected: {base.error}")
            continue
        cap = base.metrics["capacity_requests_per_s"]
        q = PlanQuestion(c["model"], c["device"], 1, c["input_tokens"], c["output_tokens"], 1.0, 1.0)
        for load in LOADS:
            rate = load * cap
            ev = LoadedEvaluator(EvaluatorContext(kind="loaded", workload={**wl, "rate_rps": rate}))
            m = ev.evaluate([c]).outcome(0).metrics
            start = time.perf_counter()
            if c["mode"] == "aggregated":
                s = summarize(simulate(validate_scenario(aggregated_scenario(q, c, rate, requests), "<bench>")))
            else:
                s = summarize_pipeline(simulate_pipeline(validate_pipeline(pipeline_scenario(q, c, rate, requests),
                                                                           "<bench>")))
            wall = time.perf_counter() - start
            d_ttft = m["ttft_p50_s"] / s.ttft_s["p50"] - 1
            d_tpot = m["tpot_p50_s"] / s.tpot_s["p50"] - 1
            total += 2
            within += (abs(d_ttft) <= 0.15) + (abs(d_tpot) <= 0.15)
            worst = max(worst, abs(d_ttft), abs(d_tpot))
            d_p90 = m["ttft_p90_s"] / s.ttft_s["p90"] - 1
            tails.append(abs(d_p90))
            print(f"{_label(c):<62} {load:>5.2f} {rate:>7.2f} | {m['ttft_p50_s'] * 1e3:>12.0f} ms {s.ttft_s['p50'] * 1e3:>5.0f} ms"
                  f" {100 * d_ttft:>+5.0f}% | {m['tpot_p50_s'] * 1e3:>12.1f} ms {s.tpot_s['p50'] * 1e3:>5.1f} ms "
                  f"{100 * d_tpot:>+5.0f}% | {m['ttft_p90_s'] * 1e3:>12.0f} ms {s.ttft_s['p90'] * 1e3:>5.0f} ms "
                  f"{100 * d_p90:>+5.0f}% | {wall:>5.1f}")
    print(f"\nwithin 15 %: {within}/{total} (TTFT p50 and TPOT p50 at loads {', '.join(map(str, LOADS))}); "
          f"worst |diff| {100 * worst:.0f} %")
    if tails:  # not part of the bound
        print(f"TTFT p90 (not in the bound): within 15 % {sum(t <= 0.15 for t in tails)}/{len(tails)}, "
              f"median |diff| {100 * sorted(tails)[len(tails) // 2]:.0f} %, worst {100 * max(tails):.0f} %")


def _import_s(cmd: list[str], env: dict) -> float:
    """Seconds a cold process spends importing infersim and what it pulls in (``-X importtime``: the
    top-level imports from the first ``infersim`` module on, the interpreter's own start left out)."""
    err = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, check=True, capture_output=True,
                         text=True).stderr
    total, seen = 0, False
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cum, name = line[len("import time:"):].split("|")
        if name.startswith(" ") and not name.startswith("  "):  # top level
            seen = seen or name.strip().startswith("infersim")
            total += int(cum) if seen else 0
    return total / 1e6


def _run_timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one cold process; its CPU time (user + system) is close to the wall
    time it would take alone on a quiet machine (the work is single-threaded) when others share the
    cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def speed(runs: int, baseline: str | None = None, bytecode: bool = False) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    trees = [ROOT / "src"] + ([Path(baseline).resolve() / "src"] if baseline else [])
    if bytecode:  # as an installed package runs: modules compiled once (into a cache of its own, not the trees)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "infersim-bench-pycache")
        for tree in trees:
            subprocess.run([sys.executable, "-c", "import compileall, sys; compileall.compile_dir(sys.argv[1], "
                            "quiet=1)", str(tree / "infersim")], env=env, check=True)
    cached = "PYTHONDONTWRITEBYTECODE" not in env
    cli = [sys.executable, "-m", "infersim.cli.main"]
    plan = cli + ["plan", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--gpus", "16", "--isl", "2048",
                  "--osl", "256", "--ttft", "1000", "--tpot", "60", "--json"]
    cases = (("python -c pass (interpreter start)", [sys.executable, "-c", "pass"], False),
             ("infersim (no arguments: default estimate + command list)", cli, True),
             ("infersim estimate (Llama-3.1-8B, H100)", cli + ["estimate", "--json"], True),
             ("infersim plan static pass (16-GPU question)", plan + ["--no-simulate", "--no-store"], True),
             ("infersim plan whole answer (+ simulated top-5)", plan + ["--no-store"], False))
    print(f"cold processes, {runs} runs each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          + ("bytecode cached (__pycache__)" if cached else
             "no bytecode cache (PYTHONDONTWRITEBYTECODE: every process compiles infersim's modules; --bytecode)"))
    print(f"{'':<58} {'wall median':>11} {'min':>6} {'max':>6} | {'CPU median':>10} {'min':>5} | "
          f"{'imports (median)':>16}")
    for label, cmd, imports in cases:
        walls, cpus = zip(*(_run_timed(cmd, env) for _ in range(runs)))
        imp = f"{statistics.median(_import_s(cmd, env) for _ in range(3)):>14.2f} s" if imports else f"{'':>16}"
        print(f"{label:<58} {statistics.median(walls):>9.2f} s {min(walls):>5.2f} {max(walls):>6.2f} | "
              f"{statistics.median(cpus):>8.2f} s {min(cpus):>5.2f} | {imp}")
    # in this process (imports warm): the static pass, and the part of it in the TTFT quantiles
    from infersim.search.plan import PlanQuestion, static_pass
    from infersim.serving.loaded import LoadCurve

    spent = [0.0]
    ttft = LoadCurve.ttft

    def timed(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return ttft(self, *a, **k)
        finally:
            spent[0] += time.perf_counter() - t0

    LoadCurve.ttft = timed
    try:
        q = PlanQuestion("llama-3.1-70b", "h100-sxm", 16, 2048, 256, 1.0, 0.060)
        walls = []
        for _ in range(runs):
            spent[0] = 0.0
            start = time.perf_counter()
            static_pass(q)
            walls.append((time.perf_counter() - start, spent[0]))
    finally:
        LoadCurve.ttft = ttft
    wall, in_ttft = sorted(walls)[len(walls) // 2]
    print(f"{'static pass in this process (imports warm)':<58} {wall:>9.2f} s {min(w for w, _ in walls):>5.2f} "
          f"{max(w for w, _ in walls):>6.2f} | TTFT quantiles {in_ttft:.2f} s")
    if baseline:  # the same static pass from another checkout, runs interleaved with this one's
        other = {**env, "PYTHONPATH": str(trees[1])}
        timed_runs: dict[str, list] = {"this checkout": [], baseline: []}
        for _ in range(runs):
            for name, e in (("this checkout", env), (baseline, other)):
                timed_runs[name].append(_run_timed(plan + ["--no-simulate", "--no-store"], e))
        for name, wc in timed_runs.items():
            w, c = zip(*wc)
            print(f"static pass, interleaved, {name:<32} {statistics.median(w):>9.2f} s {min(w):>5.2f} {max(w):>6.2f} | "
                  f"{statistics.median(c):>8.2f} s {min(c):>5.2f} |")


PP_CASES = [  # (model, device, tp, pp, dtype, token budget, batch cap, isl, osl)
    ("llama-3.1-70b", "h100-sxm", 2, 2, "fp8", 1024, 512, 2048, 256),
    ("llama-3.1-70b", "h100-sxm", 2, 2, "fp8", 2048, 256, 2048, 256),
    ("llama-3.1-70b", "h100-sxm", 2, 4, "fp8", 2048, 256, 2048, 256),
]


def pipeline_coupling() -> None:
    """How much the virtual-engine model of a PP replica overstates its step rate: the static model's
    step mix (prefill-bearing steps of t_full, a fraction rho of the time; decode steps t_d) sent
    through the stages as a flow shop (infersim.serving.pp_stages), against the same steps run
    independently."""
    import numpy as np

    from infersim.hardware import get_device
    from infersim.models import get_model
    from infersim.perf.graph import GraphOptions
    from infersim.perf.parallel import Parallelism, Precision
    from infersim.serving.loaded import colocated_curve, server_kv_tokens
    from infersim.serving.pp_stages import flow_shop_finish_s, lockstep_slowdown

    print(f"{'replica':<44} {'req/s/engine':>12} {'rho':>5} {'p mixed':>7} {'t_m':>7} {'t_d':>7} | "
          f"{'flow shop':>9} {'E[max]/E[t]':>11}")
    for model_name, device_name, tp, pp, dt, budget, cap, isl, osl in PP_CASES:
        model, device = get_model(model_name), get_device(device_name)
        par, prec = Parallelism(tp=tp, pp=pp), Precision(weight=dt, activation=dt, kv_cache=dt)
        kv = server_kv_tokens(model, device, par, prec, token_budget=budget, max_batch=cap, memory_utilization=0.9)
        c = colocated_curve(model, device, par, prec, GraphOptions(), input_tokens=[isl], output_tokens=[osl],
                            token_budget=[budget], max_batch=[cap], kv_tokens=[kv])
        for j in range(8, c.rho.shape[1], 8):
            rho = float(c.rho[0, j])
            if not (c.valid[0, j] and 0.3 < rho < 0.97):
                continue
            b, t_d = float(c.batch[0, j]), 2.0 * float(c.residual_s[0, j])
            t_m = float(c.queue_service_s[0, j]) * (budget - b) / isl  # a full-budget step
            p = (rho / t_m) / (rho / t_m + (1.0 - rho) / t_d)  # share of steps that carry prefill
            steps = np.where(np.random.default_rng(0).random((20_000, pp)) < p, t_m, t_d)
            done = flow_shop_finish_s(steps, pp)
            flow = float((done[-1] - done[0]).mean() / (steps.shape[0] - 1) / steps.mean())
            label = f"{model_name} {device_name} TP{tp}PP{pp} {dt} T{budget} B{cap} {isl}/{osl}"
            print(f"{label:<44} {c.rate_rps[0, j]:>12.2f} {rho:>5.2f} {p:>7.2f} {t_m * 1e3:>5.0f}ms "
                  f"{t_d * 1e3:>5.0f}ms | {flow:>8.2f}x {float(lockstep_slowdown(p, t_m, t_d, pp)):>10.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agreement", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--pp", action="store_true", help="PP replicas: virtual engines vs stage-coupled steps")
    ap.add_argument("--requests", type=int, default=3000, help="requests per simulation (agreement)")
    ap.add_argument("--runs", type=int, default=5, help="cold runs per command (speed)")
    ap.add_argument("--baseline", help="another checkout (e.g. /work/main) whose static pass runs interleaved")
    ap.add_argument("--bytecode", action="store_true",
                    help="speed: let the cold processes cache bytecode as an installed package does (unsets "
                         "PYTHONDONTWRITEBYTECODE, compiles src/infersim first)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's infersim in this process too
    both = not (args.agreement or args.speed or args.pp)
    if args.agreement or both:
        agreement(args.requests)
    if args.pp or both:
        pipeline_coupling()
    if args.speed or both:
        speed(args.runs, args.baseline, args.bytecode)


if __name__ == "__main__":
    main()
