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

Part 3 (PP): pipeline-parallel replicas, whose engines' micro-batches share the stages in the
simulator: its step times against a flow shop replayed here, how much slower the coupled steps are
than the pipeline latency (and than independent draws of the same steps), and the static model's
coupled mean step against the simulated one.

Usage::

    python benchmarks/bench_plan.py                 # both parts
    python benchmarks/bench_plan.py --agreement     # part 1 only
    python benchmarks/bench_plan.py --speed         # part 2 only (--bytecode: as installed, .pyc cached)
    python benchmarks/bench_plan.py --pp            # part 3 only
    python benchmarks/bench_plan.py --pp --baseline /work/main   # + PP simulation wall against a checkout
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
    ("llama-3.1-8b", "h100-sxm", 1, 2, "bf16", 1024, 512, 1024, 512),
    # beyond the agreement table: whole prompts in one step; a longer prompt on H200; a MoE model
    ("llama-3.1-70b", "h100-sxm", 2, 2, "fp8", 8192, 128, 2048, 256),
    ("llama-3.1-70b", "h200", 4, 2, "bf16", 4096, 256, 4096, 512),
    ("qwen3-30b-a3b", "h100-sxm", 1, 2, "bf16", 2048, 256, 2048, 256),
]


def _stage_order(res) -> tuple:
    """A simulated replica's micro-batches in the order they entered the stages (formed: the step's
    start; ties to the lower engine): their pipeline latencies (the cost model's step time), the
    simulator's finish times and whether they carry prefill."""
    import numpy as np

    from infersim.serving.metrics import expand_steps

    cost = res.deployment.cost
    rows = []
    for e, steps in enumerate(res.engines):
        cols = expand_steps(steps, len(cost.windows), res.scenario.scheduler.block_size)
        for j in range(cols["start_s"].size):
            pairs, rect, kv_read, dp = cols["loads"][j]
            d = cost.time_full(int(cols["prefill_tokens"][j]), int(cols["prefill_seqs"][j]),
                               int(cols["decode_seqs"][j]), pairs, rect, kv_read, dp)
            rows.append((cols["start_s"][j], e, d, cols["start_s"][j] + cols["duration_s"][j],
                         cols["prefill_tokens"][j] > 0))
    rows.sort()
    start, _, d, end, mixed = (np.array(x) for x in zip(*rows))
    return start, d, end, mixed


def pipeline_coupling(requests: int) -> None:
    """The simulator's stage-coupled PP replicas against the flow shop, and the static model's coupling
    against the simulator. For each PP case at 50/65/80 % of the static capacity (Poisson, fixed lengths):

    * replay: every simulated micro-batch sent through ``pp`` stages of ``d / pp`` in the order the engines
      formed them (written here, not the simulator's StageClock): the largest |finish - simulated finish|;
    * slowdown = mean step as simulated (formation to finish) / mean pipeline latency ``d`` (what
      independent engines would step at); the same steps' flow shop with their order shuffled (independent
      draws) and lockstep E[max]/E[t] at the simulated prefill-bearing share (the two-kind closed form);
    * TTFT p50 and TPOT p50, the static model's (coupled) against the simulated: their differences."""
    import numpy as np

    from infersim.search.evaluators.base import EvaluatorContext
    from infersim.search.evaluators.loaded import LoadedEvaluator
    from infersim.search.plan import PlanQuestion
    from infersim.search.plan_check import aggregated_scenario
    from infersim.serving import simulate, summarize, validate_scenario
    from infersim.serving.pp_stages import flow_shop_finish_s, lockstep_slowdown

    print(f"{'replica':<54} {'load':>4} {'req/s':>6} {'p mix':>5} {'t_m':>6} {'t_d':>6} | {'replay':>8} | "
          f"{'slowdown sim':>12} {'iid flow shop':>13} {'E[max]/E[t]':>11} | {'TTFT p50 diff':>13} {'TPOT p50 diff':>13}")
    for row in PP_CASES:
        c = _agg_config(row)
        pp = c["pp"]
        wl = {"input_tokens": c["input_tokens"], "output_tokens": c["output_tokens"], "rate_rps": None}
        cap = LoadedEvaluator(EvaluatorContext(kind="loaded", workload=wl)).evaluate([c]).outcome(0).metrics[
            "capacity_requests_per_s"]
        q = PlanQuestion(c["model"], c["device"], 1, c["input_tokens"], c["output_tokens"], 1.0, 1.0)
        for load in LOADS:
            rate = load * cap
            m = LoadedEvaluator(EvaluatorContext(kind="loaded", workload={**wl, "rate_rps": rate})).evaluate(
                [c]).outcome(0).metrics
            res = simulate(validate_scenario(aggregated_scenario(q, c, rate, requests), "<bench>"))
            start, d, end, mixed = _stage_order(res)
            free = [0.0] * pp
            worst = 0.0
            for t0, dj, tj in zip(start.tolist(), d.tolist(), end.tolist()):
                x = t0
                for s in range(pp):
                    x = max(x, free[s]) + dj / pp
                    free[s] = x
                worst = max(worst, abs(x - tj))
            elapsed = end - start
            slowdown = float(elapsed.mean() / d.mean())
            rounds = d.size // pp
            shuffled = np.random.default_rng(0).permutation(d)[:rounds * pp].reshape(rounds, pp)
            done = flow_shop_finish_s(shuffled, pp)
            iid = float((done[-1] - done[0]).mean() / (rounds - 1) / shuffled.mean())
            p, t_m, t_d = float(mixed.mean()), float(d[mixed].mean()), float(d[~mixed].mean())
            label = f"{c['model']} {c['device']} TP{c['tp']}PP{pp} {c['weight_dtype']} T{c['max_prefill_tokens']} " \
                    f"B{c['max_batch']} {c['input_tokens']}/{c['output_tokens']}"
            summary = summarize(res)
            d_ttft = m["ttft_p50_s"] / summary.ttft_s["p50"] - 1
            d_tpot = m["tpot_p50_s"] / summary.tpot_s["p50"] - 1
            print(f"{label:<54} {load:>4.2f} {rate:>6.2f} {p:>5.2f} {t_m * 1e3:>4.0f}ms {t_d * 1e3:>4.0f}ms | "
                  f"{worst:>7.0e}s | {slowdown:>11.2f}x {iid:>12.2f}x {float(lockstep_slowdown(p, t_m, t_d, pp)):>10.2f}x"
                  f" | {100 * d_ttft:>+12.0f}% {100 * d_tpot:>+12.0f}%")


_PP_SPEED_SNIPPET = """
import sys, time
from infersim.serving import simulate, validate_scenario
pp, runs = int(sys.argv[1]), int(sys.argv[2])
sc = validate_scenario({"name": "pp-speed", "seed": 3, "model": "llama-3.1-8b", "hardware": "h100-sxm",
    "parallelism": {"tp": 1, "pp": pp}, "router": {"policy": "least_outstanding"},
    "scheduler": {"policy": "chunked", "max_num_batched_tokens": 1024, "max_num_seqs": 128},
    "workload": {"requests": 6000, "arrival": {"process": "poisson", "rate": 20.0},
                 "input_tokens": {"dist": "lognormal", "median": 1020, "sigma": 0.9, "min": 8, "max": 4096},
                 "output_tokens": {"dist": "lognormal", "median": 129, "sigma": 0.9, "min": 2, "max": 1024}}}, "<bench>")
best = min((lambda t0: (simulate(sc), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(runs))
print(best)
"""


def pp_speed(baseline: str, runs: int) -> None:
    """Wall time of one simulation of a PP2 and a PP4 replica (6000 Poisson chat requests at 20 req/s,
    Llama-3.1-8B on H100, chunked prefill), best of ``runs``, in this checkout and in ``baseline`` (e.g.
    a checkout whose PP engines step independently), alternating so both see the same machine load."""
    print(f"simulate, PP replica, 6000 requests, best of {runs}; load average {os.getloadavg()[0]:.1f}")
    for pp in (2, 4):
        walls: dict[str, list[float]] = {"this checkout": [], baseline: []}
        for _ in range(2):
            for name, src in (("this checkout", ROOT / "src"), (baseline, Path(baseline).resolve() / "src")):
                env = {**os.environ, "PYTHONPATH": str(src)}
                out = subprocess.run([sys.executable, "-c", _PP_SPEED_SNIPPET, str(pp), str(runs)], env=env,
                                     check=True, capture_output=True, text=True).stdout
                walls[name].append(float(out.split()[-1]))
        mine, theirs = min(walls["this checkout"]), min(walls[baseline])
        print(f"PP{pp}: this checkout {mine:.2f} s, {baseline} {theirs:.2f} s: {mine / theirs:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agreement", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--pp", action="store_true", help="PP replicas: the simulated stage coupling against the "
                    "flow shop and the static model")
    ap.add_argument("--requests", type=int, default=3000, help="requests per simulation (agreement, PP)")
    ap.add_argument("--runs", type=int, default=5, help="cold runs per command (speed)")
    ap.add_argument("--baseline", help="another checkout (e.g. /work/main) whose static pass runs interleaved "
                    "(with --pp: whose PP simulations are timed beside this checkout's)")
    ap.add_argument("--bytecode", action="store_true",
                    help="speed: let the cold processes cache bytecode as an installed package does (unsets "
                         "PYTHONDONTWRITEBYTECODE, compiles src/infersim first)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's infersim in this process too
    both = not (args.agreement or args.speed or args.pp)
    if args.agreement or both:
        agreement(args.requests)
    if args.pp or both:
        pipeline_coupling(args.requests)
        if args.baseline:
            pp_speed(args.baseline, 3)
    if args.speed or both:
        speed(args.runs, args.baseline, args.bytecode)


if __name__ == "__main__":
    main()
