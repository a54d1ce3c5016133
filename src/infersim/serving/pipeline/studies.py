"""The comparison studies a pipeline scenario's ``study`` section asks for.

Every configuration of a study is the scenario with a few keys changed (engine replica counts,
the graph, the workload's lengths); its **capacity** is the highest Poisson rate meeting the
scenario's SLOs, found by bracketing and bisection
(:func:`~infersim.serving.sweep.bracket_and_bisect`, all rates sharing the scenario's seed, so the
runs share their random numbers), and its **goodput per GPU** is that capacity over the
configuration's accelerators (DistServe's per-GPU goodput, Zhong et al., OSDI 2024). Each
configuration is prepared once (cost models, decode lines) and simulated at every rate.

* ``pd_vs_colocated``: colocated replicas with chunked prefill (Sarathi-Serve) against every
  prefill:decode split of the same number of GPUs, per workload. Reproduces the direction of
  DistServe's and Splitwise's (Patel et al., ISCA 2024) findings: disaggregation wins on long
  prompts under a tight TPOT, loses on short ones, and its best ratio follows the input/output ratio.
* ``afd``: for a MoE model, colocated vs P/D vs P/D whose decode side is attention-FFN
  disaggregated (MegaScale-Infer; Step-3, StepFun 2025), sweeping the attention:FFN GPU ratio;
  each configuration is checked against the SLOs at ``target_rate`` and its capacity found.
* ``rag``: a fixed number of chips split between the retrieval servers and the inference replicas,
  for each database size; reports the best split and which stage limits it (RAGO, Jiang et al.,
  ISCA 2025: the bottleneck moves between retrieval and inference as the database grows, and the
  best allocation with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...errors import ConfigError
from ..sweep import bracket_and_bisect, capacity_of, with_rate
from .deploy import LLMEngine, PipelineDeployment, min_retrieval_servers, prepare_pipeline, resolve_device
from .metrics import PipelineSummary, summarize_pipeline
from .simulator import simulate_pipeline
from .spec import AFDStudySpec, PDStudySpec, PipelineScenario, RAGStudySpec, WorkloadVariant

_NAN = float("nan")


@dataclass
class ConfigResult:
    """One configuration of a study: its capacity and the summary of the run at (or near) it."""

    study: str  # the workload / database size it belongs to
    label: str
    gpus: int  # accelerators
    capacity_rps: float | None
    summary: PipelineSummary | None  # at the capacity (or at the target rate)
    details: dict = field(default_factory=dict)

    @property
    def goodput_per_gpu(self) -> float:
        return (self.capacity_rps or 0.0) / self.gpus if self.gpus else _NAN


@dataclass
class StudyResult:
    kind: str
    scenario: str
    rows: list[ConfigResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


#: a run never simulates more requests than this (bounds a study's time at absurd rates)
MAX_REQUESTS = 20_000


class _Config:
    """A configuration: the scenario changed, prepared once, simulated at many rates. A run at rate
    ``r`` simulates ``max(requests, r x duration_s)`` requests (the same seed: common random numbers)."""

    def __init__(self, sc: PipelineScenario, requests: int, duration_s: float) -> None:
        self.sc = sc
        self.requests = requests
        self.duration_s = duration_s
        self.dep: PipelineDeployment | None = None
        self.runs: dict[float, PipelineSummary] = {}

    def run(self, rate: float) -> PipelineSummary:
        if rate not in self.runs:
            n = min(MAX_REQUESTS, max(self.requests, math.ceil(rate * self.duration_s)))
            sc = with_rate(self.sc.with_changes(**{"workload.requests": n}), rate)
            if self.dep is None:
                self.dep = prepare_pipeline(sc)
            self.runs[rate] = summarize_pipeline(simulate_pipeline(sc, deployment=self.dep))
        return self.runs[rate]

    def capacity(self, start: float, tolerance: float) -> tuple[float | None, PipelineSummary]:
        tried = bracket_and_bisect(lambda r: self.run(r).slo_met, start, tolerance, max_runs=14)
        cap = capacity_of(tried)
        at = cap if cap is not None else min(r for r, _ in tried)
        return cap, self.runs[at]


def _variant_changes(w: WorkloadVariant) -> dict:
    changes = {"workload.input_tokens": w.input_tokens.model_dump(), "workload.output_tokens": w.output_tokens.model_dump()}
    if w.prefix is not None:
        changes["workload.prefix"] = w.prefix
    if w.slo is not None:
        changes["slo"] = w.slo
    return changes


def _engine(sc: PipelineScenario, name: str, field_name: str, kinds: tuple[str, ...]):
    eng = sc.engines.get(name)
    if eng is None or eng.kind not in kinds:
        raise ConfigError(sc.origin, field_name, f"expected the name of an engine of kind {' or '.join(kinds)}, "
                                                 f"got '{name}' (engines: {', '.join(sc.engines)})")
    return eng


def _devices_per_replica(spec) -> int:
    if spec.kind == "afd":
        return spec.attention.gpus + spec.ffn.gpus
    if spec.kind == "encoder":
        return 1
    return spec.parallelism.tp * spec.parallelism.pp


def _replicas_key(spec) -> str:
    return {"afd": "replicas", "encoder": "servers"}.get(spec.kind, "parallelism.replicas")


def _pd_graph(prefill: str, decode: str, transfer: dict | None) -> list[dict]:
    dec = {"name": "decode", "kind": "llm_decode", "engine": decode}
    if transfer is not None:
        dec["transfer"] = transfer
    return [{"name": "prefill", "kind": "llm_prefill", "engine": prefill}, dec]


def _transfer_of(sc: PipelineScenario) -> dict | None:
    for st in sc.graph:
        if st.kind == "llm_decode" and st.transfer is not None:
            return st.transfer.model_dump()
    return None


def _colocated_graph(engine: str) -> list[dict]:
    return [{"name": "generate", "kind": "llm", "engine": engine}]


# ----- P/D vs colocated ---------------------------------------------------------------------------
def pd_study(sc: PipelineScenario, study: PDStudySpec, progress=None) -> StudyResult:
    col = _engine(sc, study.colocated_engine, "study.colocated_engine", ("llm",))
    pre = _engine(sc, study.prefill_engine, "study.prefill_engine", ("llm",))
    dec = _engine(sc, study.decode_engine, "study.decode_engine", ("llm",))
    per = {n: _devices_per_replica(e) for n, e in ((study.colocated_engine, col), (study.prefill_engine, pre),
                                                    (study.decode_engine, dec))}
    if study.gpus % per[study.colocated_engine]:
        raise ConfigError(sc.origin, "study.gpus", f"{study.gpus} GPUs do not split into replicas of "
                                                   f"{per[study.colocated_engine]} for '{study.colocated_engine}'")
    result = StudyResult("pd_vs_colocated", sc.name)
    transfer = _transfer_of(sc)
    splits = [(p, (study.gpus - p * per[study.prefill_engine]) // per[study.decode_engine])
              for p in range(1, study.gpus // per[study.prefill_engine])]
    splits = [(p, d) for p, d in splits if d >= 1 and p * per[study.prefill_engine] + d * per[study.decode_engine]
              == study.gpus]
    for wname, variant in study.workloads.items():
        base = sc.with_changes(**_variant_changes(variant))
        configs = [("colocated", {f"engines.{study.colocated_engine}.parallelism.replicas":
                                  study.gpus // per[study.colocated_engine],
                                  "graph": _colocated_graph(study.colocated_engine)})]
        for p, d in splits:
            configs.append((f"P/D {p}:{d}", {f"engines.{study.prefill_engine}.parallelism.replicas": p,
                                             f"engines.{study.decode_engine}.parallelism.replicas": d,
                                             "graph": _pd_graph(study.prefill_engine, study.decode_engine, transfer)}))
        for label, changes in configs:
            cfg = _Config(base.with_changes(**changes), study.requests, study.duration_s)
            cap, summary = cfg.capacity(study.start_rate, study.tolerance)
            result.rows.append(ConfigResult(wname, label, study.gpus, cap, summary))
            if progress:
                progress(f"{wname}: {label}: {cap if cap is not None else 0:.3g} req/s")
    return result


# ----- AFD ------------------------------------------------------------------------------------------
def afd_study(sc: PipelineScenario, study: AFDStudySpec, progress=None) -> StudyResult:
    col = _engine(sc, study.colocated_engine, "study.colocated_engine", ("llm",))
    pre = _engine(sc, study.prefill_engine, "study.prefill_engine", ("llm",))
    _engine(sc, study.decode_engine, "study.decode_engine", ("llm",))
    _engine(sc, study.afd_engine, "study.afd_engine", ("afd",))
    result = StudyResult("afd", sc.name)
    transfer = _transfer_of(sc)
    for wname, variant in study.workloads.items():
        base = sc.with_changes(**_variant_changes(variant))
        configs = [("colocated", _devices_per_replica(col) * col.parallelism.replicas,
                    {"graph": _colocated_graph(study.colocated_engine)})]
        pd_gpus = _devices_per_replica(pre) * pre.parallelism.replicas
        dec = base.engines[study.decode_engine]
        configs.append(("P/D", pd_gpus + _devices_per_replica(dec) * dec.parallelism.replicas,
                        {"graph": _pd_graph(study.prefill_engine, study.decode_engine, transfer)}))
        for a in study.attention_gpus:
            for f in study.ffn_gpus:
                for m in study.micro_batches:
                    configs.append((f"AFD {a}A:{f}F m{m}", pd_gpus + a + f,
                                    {f"engines.{study.afd_engine}.attention.gpus": a,
                                     f"engines.{study.afd_engine}.ffn.gpus": f,
                                     f"engines.{study.afd_engine}.micro_batches": m,
                                     "graph": _pd_graph(study.prefill_engine, study.afd_engine, transfer)}))
        for label, gpus, changes in configs:
            try:
                cfg = _Config(base.with_changes(**changes), study.requests, study.duration_s)
                at_target = cfg.run(study.target_rate)
                cap, at_cap = cfg.capacity(study.target_rate, study.tolerance)
            except ConfigError as exc:  # e.g. the experts do not fit this many FFN GPUs
                result.rows.append(ConfigResult(wname, label, gpus, None, None, {"error": exc.problem}))
                continue
            decode_gpus = gpus if label == "colocated" else gpus - pd_gpus
            result.rows.append(ConfigResult(wname, label, gpus, cap, at_cap,
                                            {"at_target": at_target, "decode_gpus": decode_gpus}))
            if progress:
                progress(f"{wname}: {label}: target {'met' if at_target.slo_met else 'missed'}, "
                         f"capacity {cap if cap is not None else 0:.3g} req/s")
    return result


# ----- RAG ------------------------------------------------------------------------------------------
def _allocations(chips: int, per_set: int, need: int, most: int) -> list[tuple[int, int]]:
    """(retrieval servers, inference sets) using every chip: ``k`` sets of inference replicas and the
    rest as retrieval servers, from the most sets down, while the servers still hold the database."""
    out = []
    for k in range(chips // per_set, 0, -1):
        servers = chips - k * per_set
        if servers >= need:
            out.append((servers, k))
        if len(out) == most:
            break
    return out


def rag_study(sc: PipelineScenario, study: RAGStudySpec, progress=None) -> StudyResult:
    ret = _engine(sc, study.retrieval_engine, "study.retrieval_engine", ("retrieval",))
    infer = [_engine(sc, n, f"study.inference_engines[{i}]", ("llm", "afd", "encoder"))
             for i, n in enumerate(study.inference_engines)]
    device = resolve_device(sc, ret.hardware, f"engines.{study.retrieval_engine}.hardware")
    per_set = sum(_devices_per_replica(e) for e in infer)  # one replica of every inference engine
    result = StudyResult("rag", sc.name)
    for vectors in study.database_vectors:
        base = sc.with_changes(**{f"engines.{study.retrieval_engine}.database.vectors": vectors})
        need = min_retrieval_servers(base.engines[study.retrieval_engine], device)
        allocations = _allocations(study.chips, per_set, need, study.max_allocations)
        if not allocations:
            result.notes.append(f"{vectors:.3g} vectors: the database needs {need} retrieval servers, which leaves "
                                f"too few of the {study.chips} chips for one inference replica")
            continue
        label_db = f"{vectors / 1e9:g}B vectors"
        for servers, sets in allocations:
            changes = {f"engines.{study.retrieval_engine}.servers": servers}
            for name in study.inference_engines:
                changes[f"engines.{name}.{_replicas_key(sc.engines[name])}"] = sets
            cfg = _Config(base.with_changes(**changes), study.requests, study.duration_s)
            cap, summary = cfg.capacity(study.start_rate, study.tolerance)
            gpus = sets * per_set
            bottleneck = _bottleneck(summary, study)
            result.rows.append(ConfigResult(label_db, f"{servers} retrieval + {gpus} inference", gpus, cap, summary,
                                            {"servers": servers, "chips": servers + gpus, "min_servers": need,
                                             "bottleneck": bottleneck, "vectors": vectors}))
            if progress:
                progress(f"{label_db}: {servers} retrieval servers: {cap if cap is not None else 0:.3g} req/s "
                         f"({bottleneck}-bound)")
    return result


#: retrieval servers busier than this at a configuration's capacity make it retrieval-bound
RETRIEVAL_BOUND_BUSY = 0.7


def _bottleneck(summary: PipelineSummary, study: RAGStudySpec) -> str:
    """``retrieval`` when the retrieval servers are more than 70% busy at the capacity, else
    ``inference``. (An LLM engine's busy fraction is no measure of saturation: continuous batching
    keeps it stepping whenever it holds a request, at any load.)"""
    busy = {e.name: e.busy_fraction for e in summary.engines}
    r = busy.get(study.retrieval_engine, _NAN)
    if math.isnan(r):
        return "-"
    return "retrieval" if r >= RETRIEVAL_BOUND_BUSY else "inference"


def run_study(sc: PipelineScenario, progress=None) -> StudyResult:
    if sc.study is None:
        raise ConfigError(sc.origin, "study", "this scenario has no study section; run it with `infersim pipeline`")
    kind = sc.study.kind
    if kind == "pd_vs_colocated":
        return pd_study(sc, sc.study, progress)
    if kind == "afd":
        return afd_study(sc, sc.study, progress)
    return rag_study(sc, sc.study, progress)


def best_by_group(result: StudyResult) -> dict[str, ConfigResult]:
    """The configuration with the highest goodput per GPU (RAG: highest capacity) in each group."""
    best: dict[str, ConfigResult] = {}
    for row in result.rows:
        if row.capacity_rps is None:
            continue
        key = row.capacity_rps if result.kind == "rag" else row.goodput_per_gpu
        cur = best.get(row.study)
        if cur is None or key > (cur.capacity_rps if result.kind == "rag" else cur.goodput_per_gpu):
            best[row.study] = row
    return best


def llm_gpus(dep: PipelineDeployment) -> int:
    return sum(e.device_count for e in dep.engines.values() if isinstance(e, LLMEngine))
