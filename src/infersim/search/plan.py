"""The deployment question: under a GPU budget and latency SLOs, which aggregated or disaggregated
deployment gives the most output tokens/s per GPU (``infersim plan``).

Two stages:

1. **static pass** (:class:`~.evaluators.loaded.LoadedEvaluator`) over every candidate: the
   parallelism grid (TP 1..8 within the scale-up domain, PP 1/2/4; for MoE EP = TP, with DP
   attention also EP 16/32/64 across scale-up domains), precisions,
   batch caps and token budgets; for disaggregation every pair of prefill and decode layouts and
   every maximal (P, D) worker count under the budget (no worker of either kind could be added);
   for MoE models with ``afd``, attention-FFN instances. Each point's figure of merit is its
   goodput per GPU: the highest request rate meeting the SLOs x output tokens / GPUs.
2. **simulated check** (:mod:`.plan_check`): the discrete-event simulator with a capacity search
   on the static front's ``top_k`` distinct deployments (the best of each mode always among them),
   giving the rate each sustains within the SLOs and the tail percentiles there.

Both stages are stored in the results database (studies ``<name>`` and ``<name>-simulated``).
What AIConfigurator's ``cli default`` searches and this grid covers: TP/PP per worker, batch sizes,
P:D worker counts for the budget, precision (``--precision``).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, InfersimError
from .evaluators.base import EvaluatorContext
from .evaluators.loaded import MODES, LoadedEvaluator
from .scoring import OK

ORIGIN = "plan"
DEFAULT_PRECISIONS = ("bf16", "fp8")
DEFAULT_BATCH_CAPS = (64, 128, 256, 512)
DEFAULT_TOKEN_BUDGETS = (1024, 2048, 4096, 8192)
TP_CHOICES = (1, 2, 4, 8)
#: MoE: data-parallel attention with the experts split this many ways, also beyond the scale-up
#: domain (wide EP: AIConfigurator's ``dp16ep16``, DeepSeek-V3's decode deployment of 2025 runs EP32+)
WIDE_EP_CHOICES = (16, 32, 64)
PP_CHOICES = (1, 2, 4)
#: prefill workers batch whole prompts up to this many tokens a step (DistServe-style prefill instances)
PREFILL_TOKEN_BUDGET = 8192


@dataclass(frozen=True)
class PlanQuestion:
    model: str
    device: str
    gpus: int
    input_tokens: int
    output_tokens: int
    ttft_s: float
    tpot_s: float
    percentile: float = 90.0
    precisions: tuple[str, ...] = DEFAULT_PRECISIONS
    modes: tuple[str, ...] = ("aggregated", "disaggregated")
    batch_caps: tuple[int, ...] = DEFAULT_BATCH_CAPS
    token_budgets: tuple[int, ...] = DEFAULT_TOKEN_BUDGETS
    kv_link: str = "scale_out"
    top_k: int = 5
    runtime: str | None = None  # serving runtime (infersim.runtime); None: the default (kernels only)
    moe_routing: str | None = None  # MoE routing model (infersim.perf.routing); None: the default

    @property
    def slo(self) -> dict[str, float]:
        q = f"{self.percentile:g}"
        return {f"ttft_p{q}_s": self.ttft_s, f"tpot_p{q}_s": self.tpot_s}

    @property
    def name(self) -> str:
        modes = "+".join(m[:3] for m in self.modes)
        return (f"plan-{self.model}-{self.device}-{self.gpus}g-{self.input_tokens}-{self.output_tokens}-"
                f"ttft{self.ttft_s * 1e3:g}-tpot{self.tpot_s * 1e3:g}-p{self.percentile:g}-{modes}-"
                f"{'+'.join(self.precisions)}" + (f"-{self.runtime}" if self.runtime else "")
                + (f"-{self.moe_routing}" if self.moe_routing else "")).replace("/", "_")


@dataclass
class PlanPoint:
    config: dict
    metrics: dict

    @property
    def mode(self) -> str:
        return self.config.get("mode", "aggregated")


@dataclass
class PlanResult:
    question: PlanQuestion
    evaluated: int
    feasible: int
    static_wall_s: float
    best: dict[str, PlanPoint]  # mode -> best point meeting the SLOs
    top: list[PlanPoint]  # the static front's top-k distinct deployments
    checks: list = field(default_factory=list)  # plan_check.Check per top point
    simulated_wall_s: float = 0.0
    stored: list[str] = field(default_factory=list)  # study names in the database

    def to_dict(self) -> dict:
        q = self.question
        return {
            "question": {**q.__dict__, "slo": q.slo},
            "evaluated": self.evaluated, "feasible": self.feasible, "static_wall_s": self.static_wall_s,
            "best": {m: {"config": p.config, "metrics": p.metrics} for m, p in self.best.items()},
            "top": [{"config": p.config, "static": p.metrics,
                     "simulated": (self.checks[i].to_dict() if i < len(self.checks) else None)}
                    for i, p in enumerate(self.top)],
            "simulated_wall_s": self.simulated_wall_s, "stored": self.stored,
        }


# ----- validation ---------------------------------------------------------------------------------
def check_question(q: PlanQuestion):
    """The model and device, or a ConfigError naming the question's field."""
    from ..dtypes import DTYPE_BYTES
    from ..hardware import get_device
    from ..models import get_model

    try:
        model = get_model(q.model)
    except InfersimError as exc:
        raise ConfigError(ORIGIN, "model", str(exc)) from None
    try:
        device = get_device(q.device)
    except InfersimError as exc:
        raise ConfigError(ORIGIN, "device", str(exc)) from None
    for name, value, low in (("gpus", q.gpus, 1), ("input_tokens", q.input_tokens, 1),
                             ("output_tokens", q.output_tokens, 2), ("top_k", q.top_k, 0)):
        if value < low:
            raise ConfigError(ORIGIN, name, f"expected an integer >= {low}, got {value}")
    for name, value in (("ttft_s", q.ttft_s), ("tpot_s", q.tpot_s)):
        if not value > 0:
            raise ConfigError(ORIGIN, name, f"expected a positive latency, got {value}")
    if not 0 < q.percentile < 100:
        raise ConfigError(ORIGIN, "percentile", f"expected a percentile in (0, 100), got {q.percentile}")
    for mode in q.modes:
        if mode not in MODES:
            raise ConfigError(ORIGIN, "modes", f"unknown mode '{mode}'; expected one of {', '.join(MODES)}")
    if not q.modes:
        raise ConfigError(ORIGIN, "modes", "give at least one mode")
    if "afd" in q.modes and not model.is_moe:
        raise ConfigError(ORIGIN, "modes", f"'afd' (attention-FFN disaggregation) needs a MoE model; {model.name} "
                                           "is dense")
    for p in q.precisions:
        if p not in DTYPE_BYTES:
            raise ConfigError(ORIGIN, "precisions", f"unknown dtype '{p}'; expected one of {', '.join(DTYPE_BYTES)}")
    if q.runtime is not None:
        from ..runtime import RUNTIMES

        if q.runtime not in RUNTIMES:
            raise ConfigError(ORIGIN, "runtime", f"unknown runtime '{q.runtime}'; expected one of "
                              + ", ".join(sorted(RUNTIMES)))
    if q.kv_link not in ("scale_out", "scale_up"):
        raise ConfigError(ORIGIN, "kv_link", f"expected scale_out or scale_up, got '{q.kv_link}'")
    return model, device


def smallest_fit(q: PlanQuestion, model, device) -> tuple[int, str] | None:
    """GPUs of the smallest tp x pp replica (any precision asked) that holds one request, and its layout."""
    from ..perf.parallel import Parallelism, Precision
    from ..serving.loaded import server_kv_tokens

    best = None
    for prec, tp, pp in itertools.product(q.precisions, (1, 2, 4, 8, 16, 32, 64), (1, 2, 4, 8)):
        par = Parallelism(tp=tp, pp=pp, ep=tp if model.is_moe else 1)
        try:
            par.validate(model)
        except InfersimError:
            continue
        kv = float(server_kv_tokens(model, device, par, Precision(prec, prec, prec), token_budget=1024, max_batch=1,
                                    memory_utilization=0.9))
        if kv >= q.input_tokens + q.output_tokens and (best is None or tp * pp < best[0]):
            best = (tp * pp, f"tp={tp} pp={pp} {prec}")
    return best


# ----- candidates ---------------------------------------------------------------------------------
def _layouts(model, device, gpus: int, pps=PP_CHOICES) -> list[tuple[int, int, int, bool]]:
    """(tp, pp, ep, dp_attention) per worker: TP within the scale-up domain, EP = 1 or TP for MoE, and
    for MoE also data-parallel attention with EP = TP (the DeepSeek-V3 / SGLang layout), which
    also comes wide (:data:`WIDE_EP_CHOICES`, one pipeline stage): DP attention needs no collective
    of its own, so its group may span scale-up domains, the all-to-alls crossing the scale-out link."""
    from ..perf.parallel import Parallelism

    domain = device.scale_up.domain_size
    grid = [(tp, pp, ep, dpa) for tp, pp in itertools.product(TP_CHOICES, pps) if tp * pp <= gpus and tp <= domain
            for ep, dpa in (((1, False), (tp, False), (tp, True)) if model.is_moe and tp > 1 else ((1, False),))]
    if model.is_moe:
        grid += [(ep, 1, ep, True) for ep in WIDE_EP_CHOICES if ep <= gpus]
    out = []
    for tp, pp, ep, dpa in grid:
        try:
            Parallelism(tp=tp, pp=pp, ep=ep, dp_attention=dpa).validate(model)
        except InfersimError:
            continue
        out.append((tp, pp, ep, dpa))
    return out


def _worker_pairs(gpus: int, per_prefill: int, per_decode: int) -> list[tuple[int, int]]:
    """Maximal (P, D) with P * per_prefill + D * per_decode <= gpus, P, D >= 1."""
    out = []
    for p in range(1, gpus // per_prefill + 1):
        d = (gpus - p * per_prefill) // per_decode
        if d >= 1:
            out.append((p, d))
    return out


def candidates(q: PlanQuestion, model, device) -> list[dict]:
    base = {"model": q.model, "device": q.device, "input_tokens": q.input_tokens, "output_tokens": q.output_tokens}
    out: list[dict] = []
    for prec in q.precisions:
        dt = {"weight_dtype": prec, "activation_dtype": prec, "kv_dtype": prec}
        if "aggregated" in q.modes:
            for (tp, pp, ep, dpa), cap, budget in itertools.product(_layouts(model, device, q.gpus), q.batch_caps,
                                                                     q.token_budgets):
                out.append({**base, **dt, "mode": "aggregated", "tp": tp, "pp": pp, "ep": ep, "dp_attention": dpa,
                            "replicas": q.gpus // (tp * pp), "max_batch": cap, "max_prefill_tokens": budget})
        if "disaggregated" in q.modes:
            layouts = _layouts(model, device, q.gpus, pps=(1,))
            for (ptp, _, pep, pdpa), (dtp, _, dep, ddpa) in itertools.product(layouts, layouts):
                for (p, d), cap in itertools.product(_worker_pairs(q.gpus, ptp, dtp), q.batch_caps):
                    out.append({**base, **dt, "mode": "disaggregated", "prefill_tp": ptp, "prefill_ep": pep,
                                "prefill_dp_attention": pdpa, "prefill_workers": p,
                                "prefill_max_tokens": max(PREFILL_TOKEN_BUDGET, q.input_tokens), "tp": dtp, "ep": dep,
                                "dp_attention": ddpa, "decode_workers": d, "max_batch": cap, "kv_link": q.kv_link})
        if "afd" in q.modes:
            prefill = _layouts(model, device, q.gpus, pps=(1,))
            for (ptp, _, pep, pdpa), attn, ffn, cap in itertools.product(prefill, (2, 4, 8), (2, 4, 8, 16),
                                                                          q.batch_caps):
                if model.num_experts % ffn:
                    continue
                for p, d in _worker_pairs(q.gpus, ptp, attn + ffn):
                    out.append({**base, **dt, "mode": "afd", "prefill_tp": ptp, "prefill_ep": pep,
                                "prefill_dp_attention": pdpa, "prefill_workers": p, "prefill_max_tokens": max(PREFILL_TOKEN_BUDGET, q.input_tokens),
                                "tp": 1, "afd_attention_gpus": attn, "afd_ffn_gpus": ffn, "afd_micro_batches": 2,
                                "decode_workers": d, "max_batch": cap, "kv_link": q.kv_link})
    return out


def deployment_key(config: dict) -> tuple:
    """What makes two points the same deployment for the top-k (batch caps and budgets aside)."""
    skip = ("max_batch", "max_prefill_tokens", "prefill_max_tokens")
    return tuple(sorted((k, v) for k, v in config.items() if k not in skip))


# ----- the static pass ----------------------------------------------------------------------------
def context_for(q: PlanQuestion) -> EvaluatorContext:
    return EvaluatorContext(kind="loaded", workload={"input_tokens": q.input_tokens, "output_tokens": q.output_tokens,
                                                     "rate_rps": None}, slo=q.slo, runtime=q.runtime,
                            options={"moe_routing": q.moe_routing} if q.moe_routing else {})


def static_pass(q: PlanQuestion) -> tuple[PlanResult, list[dict], object]:
    """Evaluate every candidate; the result (without the simulated check), the configs and the columns."""
    model, device = check_question(q)
    start = time.perf_counter()
    configs = candidates(q, model, device)
    columns = LoadedEvaluator(context_for(q)).evaluate(configs) if configs else None
    wall = time.perf_counter() - start
    ok = np.array([s == OK for s in columns.status]) if columns is not None else np.zeros(0, dtype=bool)
    if not ok.any():
        fit = smallest_fit(q, model, device)
        if fit is None:
            raise ConfigError(ORIGIN, "model", f"{model.name} does not fit on any {device.name} layout tried "
                                               f"(tp up to 64, pp up to 8) with {', '.join(q.precisions)}")
        raise ConfigError(ORIGIN, "gpus", f"{q.gpus} {device.name} GPUs cannot hold {model.name} with room for a "
                                          f"{q.input_tokens}+{q.output_tokens}-token request; the smallest "
                                          f"deployment that fits needs {fit[0]} ({fit[1]})")
    goodput = np.where(ok, columns.metrics["goodput_tokens_per_s_per_device"], np.nan)
    met = ok & (goodput > 0)
    if not met.any():
        raise _nothing_meets(q, configs, columns, ok)
    order = np.argsort(-np.where(met, goodput, -np.inf), kind="stable")
    best_idx: dict[str, int] = {}  # mode -> index of its best point
    ranked: list[int] = []  # the best point of each distinct deployment, best first
    seen: set = set()
    modes_met = {configs[i].get("mode", "aggregated") for i in np.flatnonzero(met)}
    for i in order[:int(met.sum())]:  # the met points, best first
        best_idx.setdefault(configs[i].get("mode", "aggregated"), int(i))
        key = deployment_key(configs[i])
        if key not in seen:
            seen.add(key)
            ranked.append(int(i))
        if len(best_idx) == len(modes_met) and len(ranked) >= q.top_k + len(modes_met):
            break  # enough for the top-k below
    # the top-k: the best of each mode always, then the next best deployments
    top_idx = list(best_idx.values())[:q.top_k]
    top_idx += [i for i in ranked if i not in top_idx][:max(q.top_k - len(top_idx), 0)]
    points = {i: PlanPoint(configs[i], columns.outcome(i).metrics or {}) for i in {*best_idx.values(), *top_idx}}
    best = {mode: points[i] for mode, i in best_idx.items()}
    top = [points[i] for i in top_idx]
    top.sort(key=lambda p: -p.metrics["goodput_tokens_per_s_per_device"])
    return (PlanResult(q, len(configs), int(met.sum()), wall, best, top), configs, columns)


def _nothing_meets(q: PlanQuestion, configs, columns, ok) -> ConfigError:
    """'No deployment meets the SLOs' naming the closest point and how far it is."""
    ttft_name, tpot_name = list(q.slo)
    ttft = columns.metrics["ttft_floor_s"]
    tpot = columns.metrics["tpot_floor_s"]
    ratio = np.where(ok, np.maximum(ttft / q.ttft_s, tpot / q.tpot_s), np.inf)
    i = int(np.argmin(ratio))
    c = configs[i]
    layout = describe(c)
    field_name = "ttft_s" if ttft[i] / q.ttft_s >= tpot[i] / q.tpot_s else "tpot_s"
    return ConfigError(ORIGIN, field_name,
                       f"no deployment meets TTFT p{q.percentile:g} <= {q.ttft_s * 1e3:g} ms and TPOT p{q.percentile:g} "
                       f"<= {q.tpot_s * 1e3:g} ms; the closest ({layout}) reaches TTFT {ttft[i] * 1e3:.4g} ms "
                       f"({ttft[i] / q.ttft_s:.2f}x) and TPOT {tpot[i] * 1e3:.4g} ms ({tpot[i] / q.tpot_s:.2f}x) "
                       "even at the lowest load")


def _ep(c: dict, prefix: str = "") -> str:
    ep = c.get(f"{prefix}ep", 1)
    return (f"EP{ep}" if ep > 1 else "") + ("-DPA" if c.get(f"{prefix}dp_attention") else "")


def describe(c: dict) -> str:
    """A one-line description of a deployment (DPA: data-parallel attention)."""
    prec = c.get("weight_dtype", "bf16")
    mode = c.get("mode", "aggregated")
    if mode == "aggregated":
        return f"aggregated {c['replicas']}x TP{c['tp']}PP{c.get('pp', 1)}{_ep(c)} {prec}"
    pre = f"{c['prefill_workers']}x prefill TP{c['prefill_tp']}{_ep(c, 'prefill_')}"
    if mode == "afd":
        return (f"afd {pre} + {c['decode_workers']}x AFD {c['afd_attention_gpus']}A(TP{c['tp']})+"
                f"{c['afd_ffn_gpus']}F {prec}")
    return f"disaggregated {pre} + {c['decode_workers']}x decode TP{c['tp']}{_ep(c)} {prec}"


def store_static(q: PlanQuestion, configs: list[dict], columns, db: str) -> str:
    """The static pass in the results database as study ``q.name`` (one row per candidate)."""
    from .backends import Job, batch_for
    from .scoring import Constraint, Objective, Scoring
    from .space import canonical_json, point_key
    from .store import open_store

    context = context_for(q)
    scoring = Scoring((Objective("goodput_tokens_per_s_per_device", "max"),),
                      (Constraint("devices", high=float(q.gpus)), Constraint("slo_met", low=1.0)))
    namespace = f"{q.name}\n{context.to_json()}"
    items = []
    for n, c in enumerate(configs):
        js = canonical_json(c)
        items.append((n, point_key(namespace, js), js, c))
    batch = batch_for(Job(context, scoring, tuple(items)), columns, 0.0)
    spec = {"plan": {**q.__dict__, "slo": q.slo}, "evaluator": "loaded"}
    with open_store(db, write=True) as store:
        store.register_study(q.name, spec, scoring.to_dict(), namespace)
        store.insert(q.name, batch)
    return q.name


def rate_note(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"
