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
  each configuration is checked against the SLOs at ``target_rate`` and its capacity found. With
  ``prefill_pool: auto`` the prefill pool is sized to the rate (DistServe's replication rule), so a
  disaggregated configuration's capacity is its decode side's, and the attention:FFN ratio is the
  one with the most decode tokens/s per decode GPU (Step-3's measure, :func:`best_afd_ratio`).
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
from .deploy import (LLMEngine, PipelineDeployment, min_retrieval_servers, prepare_pipeline, resolve_device,
                     with_llm_replicas)
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


@dataclass(frozen=True)
class PrefillSizing:
    """A prefill pool sized to the arrival rate: ``ceil(rate / replica_capacity_rps) + spare``
    replicas of ``engine``. DistServe (Zhong et al., OSDI 2024, section 4) sizes each phase this way:
    the per-instance goodput of the phase, replicated to match the traffic rate."""

    engine: str
    replica_capacity_rps: float  # the highest rate one replica meets the TTFT SLOs at
    gpus_per_replica: int
    spare: int = 0  # replicas beyond the rule (the decode-side search keeps one so prefill never throttles)

    def replicas_at(self, rate_rps: float) -> int:
        return prefill_replicas_for(rate_rps, self.replica_capacity_rps) + self.spare


def prefill_replicas_for(rate_rps: float, replica_capacity_rps: float) -> int:
    """Prefill replicas a pool needs at ``rate_rps`` when one replica keeps the SLOs up to
    ``replica_capacity_rps``: ``ceil(rate / capacity)``, at least one (DistServe's replication rule).
    A ratio within 1e-9 of an integer counts as that integer, so ``2 x capacity`` needs two."""
    if replica_capacity_rps <= 0:
        raise ValueError(f"a prefill replica's capacity must be positive, got {replica_capacity_rps}")
    return max(1, math.ceil(rate_rps / replica_capacity_rps - 1e-9))


class _Config:
    """A configuration: the scenario changed, prepared once, simulated at many rates. A run at rate
    ``r`` simulates ``max(requests, r x duration_s)`` requests (the same seed: common random numbers).
    With a :class:`PrefillSizing` the prefill engine's replicas follow the rate (the engines are
    prepared once and the pool resized, :func:`~.deploy.with_llm_replicas`)."""

    def __init__(self, sc: PipelineScenario, requests: int, duration_s: float,
                 prefill: PrefillSizing | None = None) -> None:
        self.sc = sc
        self.requests = requests
        self.duration_s = duration_s
        self.prefill = prefill
        self.dep: PipelineDeployment | None = None
        self.runs: dict[float, PipelineSummary] = {}
        self.fixed_runs: dict[tuple[float, int], PipelineSummary] = {}

    def _simulate(self, rate: float, prefill_replicas: int | None) -> PipelineSummary:
        n = min(MAX_REQUESTS, max(self.requests, math.ceil(rate * self.duration_s)))
        changes: dict = {"workload.requests": n}
        if prefill_replicas is not None:
            changes[f"engines.{self.prefill.engine}.parallelism.replicas"] = prefill_replicas
        sc = with_rate(self.sc.with_changes(**changes), rate)
        if self.dep is None:
            self.dep = prepare_pipeline(sc)
        dep = self.dep
        if prefill_replicas is not None:  # the engines prepared once, the prefill pool resized
            dep = with_llm_replicas(dep, sc, self.prefill.engine, prefill_replicas)
        return summarize_pipeline(simulate_pipeline(sc, deployment=dep))

    def run(self, rate: float) -> PipelineSummary:
        if rate not in self.runs:
            replicas = self.prefill.replicas_at(rate) if self.prefill is not None else None
            self.runs[rate] = self._simulate(rate, replicas)
        return self.runs[rate]

    def run_with_prefill(self, rate: float, replicas: int) -> PipelineSummary:
        """A run at ``rate`` with ``replicas`` prefill replicas (needs a :class:`PrefillSizing`)."""
        if (rate, replicas) not in self.fixed_runs:
            self.fixed_runs[(rate, replicas)] = self._simulate(rate, replicas)
        return self.fixed_runs[(rate, replicas)]

    def capacity(self, start: float, tolerance: float) -> tuple[float | None, PipelineSummary]:
        cap, at = self.capacity_rate(start, tolerance)
        return cap, self.runs[at]

    def capacity_rate(self, start: float, tolerance: float) -> tuple[float | None, float]:
        """(the capacity or None, the rate whose run stands for the configuration: the capacity,
        else the lowest rate tried)."""
        tried = bracket_and_bisect(lambda r: self.run(r).slo_met, start, tolerance, max_runs=14)
        cap = capacity_of(tried)
        return cap, (cap if cap is not None else min(r for r, _ in tried))


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
                progress(f"{wname}: {label}: {cap if cap is not None else 0:.3g} req/s", len(result.rows),
                         len(study.workloads) * (1 + len(splits)))
    return result


# ----- AFD ------------------------------------------------------------------------------------------
#: the SLO metrics the prefill pool alone governs (the first token comes from the prefill replica)
PREFILL_SLO_METRICS = ("ttft",)
#: prefill replicas tried beyond ``ceil(capacity / one replica's)`` before a pool counts as unsizable
MAX_EXTRA_PREFILL_REPLICAS = 2


def split_slos(sc: PipelineScenario) -> tuple[list[dict], list[dict]]:
    """(the SLOs the prefill pool governs: TTFT; the rest, which the decode side governs). A request's
    first token comes from its prefill replica, so its TTFT does not depend on the decode side."""
    slos = [s.model_dump() for s in sc.slo]
    prefill = [s for s in slos if s["metric"] in PREFILL_SLO_METRICS]
    return prefill, [s for s in slos if s["metric"] not in PREFILL_SLO_METRICS]


def prefill_replica_capacity(base: PipelineScenario, study: AFDStudySpec, transfer: dict | None,
                             workload: str) -> float:
    """The highest rate one prefill replica meets the TTFT SLOs at: the capacity of the P/D graph with
    one replica of the prefill engine and the scenario's AFD engine as the decode side, judged on the
    TTFT SLOs only."""
    prefill_slos, decode_slos = split_slos(base)
    if not prefill_slos or not decode_slos:
        raise ConfigError(base.origin, "study.prefill_pool",
                          "'auto' sizes the prefill pool from the ttft SLOs and compares the decode sides under "
                          "the others (tpot, itl, e2e, queue); the scenario needs both kinds")
    sc = base.with_changes(**{f"engines.{study.prefill_engine}.parallelism.replicas": 1, "slo": prefill_slos,
                              "graph": _pd_graph(study.prefill_engine, study.afd_engine, transfer)})
    cap, _ = _Config(sc, study.requests, study.duration_s).capacity_rate(study.target_rate, study.tolerance)
    if cap is None:
        raise ConfigError(base.origin, "study.prefill_pool", f"workload '{workload}': one '{study.prefill_engine}' "
                                                             "replica meets the TTFT SLO at no rate tried")
    return cap


def _afd_configs(study: AFDStudySpec, transfer: dict | None) -> list[tuple[str, int, dict]]:
    """(label, decode GPUs, changes) of every AFD decode instance of the study's grid."""
    configs = []
    for a in study.attention_gpus:
        for f in study.ffn_gpus:
            for m in study.micro_batches:
                configs.append((f"AFD {a}A:{f}F m{m}", a + f,
                                {f"engines.{study.afd_engine}.attention.gpus": a,
                                 f"engines.{study.afd_engine}.ffn.gpus": f,
                                 f"engines.{study.afd_engine}.micro_batches": m,
                                 "graph": _pd_graph(study.prefill_engine, study.afd_engine, transfer)}))
    return configs


def afd_study(sc: PipelineScenario, study: AFDStudySpec, progress=None) -> StudyResult:
    """Colocated vs P/D vs P/D with an AFD decode side, per workload. Each row's ``details`` carry
    ``decode_gpus`` and ``prefill_gpus`` (at the capacity); :func:`best_afd_ratio` picks the
    attention:FFN ratio. With ``prefill_pool: auto`` the disaggregated rows' capacity is their decode
    side's (:func:`_auto_prefill_row`)."""
    col = _engine(sc, study.colocated_engine, "study.colocated_engine", ("llm",))
    pre = _engine(sc, study.prefill_engine, "study.prefill_engine", ("llm",))
    _engine(sc, study.decode_engine, "study.decode_engine", ("llm",))
    _engine(sc, study.afd_engine, "study.afd_engine", ("afd",))
    result = StudyResult("afd", sc.name)
    transfer = _transfer_of(sc)
    per_prefill = _devices_per_replica(pre)
    for wname, variant in study.workloads.items():
        base = sc.with_changes(**_variant_changes(variant))
        sizing = None
        if study.prefill_pool == "auto":
            sizing = PrefillSizing(study.prefill_engine,
                                   prefill_replica_capacity(base, study, transfer, wname), per_prefill)
            if progress:
                progress(f"{wname}: one prefill replica meets the TTFT SLO up to {sizing.replica_capacity_rps:.3g} "
                         "req/s")
        dec = base.engines[study.decode_engine]
        configs = [("P/D", _devices_per_replica(dec) * dec.parallelism.replicas,
                    {"graph": _pd_graph(study.prefill_engine, study.decode_engine, transfer)})]
        configs += _afd_configs(study, transfer)
        rows = [_fixed_pool_row(base, study, wname, "colocated", _devices_per_replica(col) * col.parallelism.replicas,
                                0, {"graph": _colocated_graph(study.colocated_engine)})]
        for label, decode_gpus, changes in configs:
            if sizing is None:
                rows.append(_fixed_pool_row(base, study, wname, label, decode_gpus,
                                            per_prefill * pre.parallelism.replicas, changes))
            else:
                rows.append(_auto_prefill_row(base, study, wname, label, decode_gpus, sizing, changes))
        for row in rows:
            result.rows.append(row)
            if progress and "error" not in row.details:
                at = row.details["at_target"]
                progress(f"{wname}: {row.label}: target {'met' if at.slo_met else 'missed'}, "
                         f"capacity {row.capacity_rps or 0:.3g} req/s on {row.gpus} GPUs", len(result.rows),
                         len(study.workloads) * len(rows))
    return result


def _details(at_target: PipelineSummary, label: str, decode_gpus: int, prefill_gpus: int) -> dict:
    return {"at_target": at_target, "decode_gpus": decode_gpus, "prefill_gpus": prefill_gpus,
            "afd": label.startswith("AFD")}


def _fixed_pool_row(base: PipelineScenario, study: AFDStudySpec, wname: str, label: str, decode_gpus: int,
                    prefill_gpus: int, changes: dict) -> ConfigResult:
    """A configuration as written (the prefill pool fixed; colocated: none, its replicas both prefill
    and decode), checked at the target rate and its capacity found under every SLO."""
    try:
        cfg = _Config(base.with_changes(**changes), study.requests, study.duration_s)
        at_target = cfg.run(study.target_rate)
        cap, at = cfg.capacity(study.target_rate, study.tolerance)
    except ConfigError as exc:  # e.g. the experts do not fit this many FFN GPUs
        return ConfigResult(wname, label, decode_gpus + prefill_gpus, None, None, {"error": exc.problem})
    return ConfigResult(wname, label, decode_gpus + prefill_gpus, cap, at,
                        _details(at_target, label, decode_gpus, prefill_gpus))


def _auto_prefill_row(base: PipelineScenario, study: AFDStudySpec, wname: str, label: str, decode_gpus: int,
                      sizing: PrefillSizing, changes: dict) -> ConfigResult:
    """A disaggregated configuration whose prefill pool follows the rate, so its capacity is its
    decode side's, as in Step-3's AFD design study (StepFun, arXiv 2507.19427), which compares decode
    instances by their throughput under the TPOT SLO alone.

    1. the decode capacity: the highest rate meeting the decode-side SLOs (TPOT, ...), the prefill
       pool sized to each rate with one spare replica so that it never throttles the decode side;
    2. the pool at that capacity: from ``ceil(capacity / one replica's)`` replicas up (at most
       :data:`MAX_EXTRA_PREFILL_REPLICAS` more; extra replicas cover the prefix-cache misses every
       new replica pays), the first that meets every SLO. Its run is the row's summary and its GPUs
       count in the row's. The target check runs the rule's pool at the target with every SLO."""
    _, decode_slos = split_slos(base)
    try:
        full = _Config(base.with_changes(**changes), study.requests, study.duration_s, sizing)
        at_target = full.run(study.target_rate)
        decode = _Config(base.with_changes(**changes, slo=decode_slos), study.requests, study.duration_s,
                         PrefillSizing(sizing.engine, sizing.replica_capacity_rps, sizing.gpus_per_replica, spare=1))
        decode.dep = full.dep  # the same engines (only the SLOs differ): their cost caches shared
        cap, at = decode.capacity_rate(study.target_rate, study.tolerance)
    except ConfigError as exc:  # e.g. the experts do not fit this many FFN GPUs
        return ConfigResult(wname, label, decode_gpus, None, None, {"error": exc.problem})
    first = sizing.replicas_at(at)
    for replicas in range(first, first + MAX_EXTRA_PREFILL_REPLICAS + 1):
        summary = full.run_with_prefill(at, replicas)
        if summary.slo_met:
            break
    details = _details(at_target, label, decode_gpus, replicas * sizing.gpus_per_replica)
    details["prefill_replica_rps"] = sizing.replica_capacity_rps
    if cap is not None and not summary.slo_met:
        details["note"] = f"no pool of {first}-{replicas} prefill replicas meets every SLO at {cap:.3g} req/s"
        cap = None
    return ConfigResult(wname, label, decode_gpus + details["prefill_gpus"], cap, summary, details)


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
    plans = []
    for vectors in study.database_vectors:
        base = sc.with_changes(**{f"engines.{study.retrieval_engine}.database.vectors": vectors})
        need = min_retrieval_servers(base.engines[study.retrieval_engine], device)
        plans.append((vectors, base, need, _allocations(study.chips, per_set, need, study.max_allocations)))
    total = sum(len(p[3]) for p in plans)
    for vectors, base, need, allocations in plans:
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
                         f"({bottleneck}-bound)", len(result.rows), total)
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


def decode_tokens_per_gpu_s(row: ConfigResult) -> float:
    """Decode tokens per second per GPU that decodes (``details['decode_gpus']``) at the capacity, in
    steady state: the capacity (req/s) x the run's output tokens per completed request. The
    throughput-per-GPU measure of Step-3's AFD design study (StepFun, arXiv 2507.19427). The run's
    own tokens/s over its makespan would be lower by the ramp-down after the last arrival, which
    depends on ``duration_s``, not on the configuration."""
    s = row.summary
    if row.capacity_rps is None or s is None or not row.details.get("decode_gpus") or not s.throughput_rps > 0:
        return _NAN
    tokens_per_request = s.output_tokens_per_s / s.throughput_rps
    return row.capacity_rps * tokens_per_request / row.details["decode_gpus"]


def best_afd_ratio(result: StudyResult) -> dict[str, ConfigResult]:
    """Per workload, the AFD configuration with the most decode tokens/s per decode GPU among those
    meeting the SLOs at some rate (a capacity): Step-3's choice of the attention:FFN ratio, the
    highest decode throughput per GPU under the TPOT SLO."""
    best: dict[str, ConfigResult] = {}
    for row in result.rows:
        if not row.details.get("afd") or row.capacity_rps is None:
            continue
        cur = best.get(row.study)
        if cur is None or decode_tokens_per_gpu_s(row) > decode_tokens_per_gpu_s(cur):
            best[row.study] = row
    return best


def llm_gpus(dep: PipelineDeployment) -> int:
    return sum(e.device_count for e in dep.engines.values() if isinstance(e, LLMEngine))
