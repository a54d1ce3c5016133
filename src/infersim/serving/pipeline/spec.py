"""Pipeline scenarios: named engines, a request graph of stages, a workload, SLOs and an optional study.

A pipeline scenario is a YAML file validated like a serving scenario (frozen pydantic models,
``extra="forbid"``, errors naming the file and the dotted key). Its sections:

* ``engines``: a mapping of engine (pool) names to specs, each with a ``kind``:
  ``llm`` (a pool of model replicas, the fields of a serving scenario's deployment), ``afd``
  (attention-FFN disaggregated decode instances of a MoE model), ``encoder`` (embedding / rerank
  model servers), ``retrieval`` (IVF-PQ vector-search servers) and ``kv_store`` (a KV-cache
  storage hierarchy).
* ``graph``: the stages every request passes through, in an order compatible with their
  dependencies. Each stage names its ``kind``, the engine(s) serving it and the stages it waits
  for (``after``; by default the previous stage). Exactly one stage has no successor: the final
  stage, whose completion completes the request.
* ``links``: named links for KV-cache transfers (``scale_out`` and ``scale_up``, the devices' own
  links, need no entry).
* ``workload`` and ``slo`` as in a serving scenario; ``study``: what ``infersim pipeline-study``
  sweeps (see :mod:`.studies`).

Cross-references (engine names, stage names, which engine kind serves which stage kind) are
checked by :func:`check_pipeline` after the schema, with the same kind of error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator

from ...errors import ConfigError
from ..scenario import (
    LengthDist,
    ParallelismSpec,
    PrecisionSpec,
    RouterSpec,
    ScenarioFile,
    SchedulerSpec,
    _Strict,
    check_transforms,
    load_model_yaml,
    validate_model,
)


# ----- links -----------------------------------------------------------------------------------
class LinkSpec(_Strict):
    """A point-to-point link: per-device bandwidth (one direction) and latency."""

    bandwidth_gb_per_s: float = Field(gt=0.0)
    latency_us: float = Field(0.0, ge=0.0)


#: ``scale_out`` / ``scale_up`` (the device's own links), the name of an entry in ``links``, or a link
LinkRef = Union[str, LinkSpec]


# ----- engines -----------------------------------------------------------------------------------
class LLMEngineSpec(_Strict):
    """A pool of LLM replicas (the deployment fields of a serving scenario)."""

    kind: Literal["llm"]
    model: str
    hardware: str = "h100-sxm"
    parallelism: ParallelismSpec = ParallelismSpec()
    precision: PrecisionSpec = PrecisionSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    router: RouterSpec = RouterSpec()
    # software techniques, as a serving scenario's ``transforms`` (infersim.perf.transforms)
    transforms: list[str | dict[str, Any]] = Field(default_factory=list)
    _known_transforms = field_validator("transforms")(lambda cls, value: check_transforms(value))


class AFDGroupSpec(_Strict):
    """One side of an attention-FFN disaggregated instance."""

    gpus: int = Field(ge=1, le=4096)
    hardware: str | None = None  # default: the engine's hardware
    #: attention side: devices per attention rank (tensor parallel inside a rank); the ranks are
    #: data parallel, each with its own requests. Ignored on the FFN side (experts split over all gpus).
    tp: int = Field(1, ge=1, le=1024)


class AFDEngineSpec(_Strict):
    """Decode instances of a MoE model with attention and routed experts on separate GPU groups."""

    kind: Literal["afd"]
    model: str
    hardware: str = "h100-sxm"
    replicas: int = Field(1, ge=1, le=4096)
    attention: AFDGroupSpec
    ffn: AFDGroupSpec
    micro_batches: int = Field(2, ge=1, le=64)
    #: the link between the two groups (dispatch / combine all-to-all)
    link: LinkRef = "scale_out"
    #: m2n: all sends posted at once, one latency per direction; pairwise: one latency per peer
    comm: Literal["m2n", "pairwise"] = "m2n"
    precision: PrecisionSpec = PrecisionSpec()
    scheduler: SchedulerSpec = SchedulerSpec(preemption="swap")
    router: RouterSpec = RouterSpec()


class EncoderEngineSpec(_Strict):
    """Servers of an encoder (embedding or rerank model): batched prefill-only forwards."""

    kind: Literal["encoder"]
    model: str  # catalog name or a HF config.json (relative to the scenario file)
    hardware: str = "h100-sxm"
    servers: int = Field(1, ge=1, le=100_000)
    precision: PrecisionSpec = PrecisionSpec()
    max_batch: int = Field(64, ge=1, le=1_000_000)
    router: RouterSpec = RouterSpec(policy="least_outstanding")


class DatabaseSpec(_Strict):
    """An IVF-PQ vector database: ``vectors`` PQ codes of ``code_bytes``; a query scans ``fraction_probed``."""

    vectors: float = Field(gt=0.0)
    fraction_probed: float = Field(gt=0.0, le=1.0)
    code_bytes: float = Field(gt=0.0)


class RetrievalEngineSpec(_Strict):
    """Vector-search servers. The database is sharded over as few servers as hold it; each copy of it
    (a group of servers) scans a query on all its servers' cores at once."""

    kind: Literal["retrieval"]
    hardware: str = "cpu-xeon-8480"
    servers: int = Field(1, ge=1, le=100_000)
    cores_per_server: int | None = Field(None, ge=1, le=100_000)  # default: the device's compute units
    #: PQ scan rate of one core (a calibrated figure, see :mod:`infersim.perf.retrieval`)
    scan_gb_per_s_per_core: float = Field(1.0, gt=0.0)
    overhead_ms: float = Field(0.5, ge=0.0)  # per batch (coarse quantizer, top-k merge, RPC)
    memory_utilization: float = Field(0.9, gt=0.0, le=1.0)  # of a server's memory the codes may use
    max_batch: int = Field(16, ge=1, le=1_000_000)
    database: DatabaseSpec
    router: RouterSpec = RouterSpec(policy="least_outstanding")


class StorageLevelSpec(_Strict):
    name: str
    hit_rate: float = Field(ge=0.0, le=1.0)  # given a miss in every level above
    latency_us: float = Field(ge=0.0)
    bandwidth_gb_per_s: float = Field(gt=0.0)


class KVStoreEngineSpec(_Strict):
    """A KV-cache storage hierarchy, fastest level first; a miss everywhere means recomputation."""

    kind: Literal["kv_store"]
    levels: list[StorageLevelSpec] = Field(min_length=1)


EngineSpec = Annotated[Union[LLMEngineSpec, AFDEngineSpec, EncoderEngineSpec, RetrievalEngineSpec,
                             KVStoreEngineSpec], Field(discriminator="kind")]


# ----- stages ------------------------------------------------------------------------------------
StageKind = Literal["llm", "llm_prefill", "llm_decode", "reasoning", "encoder", "retrieval", "kv_retrieval"]

#: which engine kinds may serve each stage kind
STAGE_ENGINES: dict[str, tuple[str, ...]] = {
    "llm": ("llm",), "reasoning": ("llm",), "llm_prefill": ("llm",), "llm_decode": ("llm", "afd"),
    "encoder": ("encoder",), "retrieval": ("retrieval",), "kv_retrieval": ("kv_store",),
}
GENERATION_KINDS = ("llm", "reasoning", "llm_decode")  # stages that generate the response's tokens
PREFILLING_KINDS = ("llm", "reasoning", "llm_prefill")  # LLM stages that run a prompt


class TransferSpec(_Strict):
    """KV-cache transfer from the prefill engine to the decode engine."""

    link: LinkRef = "scale_out"
    #: send each layer's KV while the next layer computes (Splitwise's layer-wise transfer)
    layerwise: bool = False


class StageRouteSpec(_Strict):
    """Routing over the replicas of all engines a stage names. ``size``: engine ``i`` takes the prompts
    of at most ``thresholds_tokens[i]`` tokens (the last engine the rest), then that engine's router."""

    policy: Literal["round_robin", "least_outstanding", "least_kv", "size"] = "round_robin"
    thresholds_tokens: list[int] = Field(default_factory=list)


class StageSpec(_Strict):
    name: str
    kind: StageKind
    engine: str | list[str]
    after: list[str] | None = None  # None: the previous stage (none for the first)
    route: StageRouteSpec = StageRouteSpec()
    #: prompt of an LLM / encoder stage (default: the workload's prompt); llm_decode inherits its prefill's
    input_tokens: LengthDist | None = None
    extra_input_tokens: int = Field(0, ge=0, le=10_000_000)  # e.g. retrieved passages appended
    #: tokens generated (llm, reasoning, llm_decode; default: the workload's output tokens)
    output_tokens: LengthDist | None = None
    #: parallel decode branches sharing one prefill (reasoning, parallel sampling)
    branches: int = Field(1, ge=1, le=64)
    transfer: TransferSpec | None = None  # llm_decode only
    #: iterative retrieval: every N generated tokens the request stalls for one query on this engine
    retrieve_every_tokens: int | None = Field(None, ge=1)
    retrieval_engine: str | None = None
    queries: int = Field(1, ge=1, le=10_000)  # retrieval: queries per request
    #: kv_retrieval: tokens whose KV is fetched ("prefix": the request's shared prefix)
    tokens: Literal["prefix"] | int = "prefix"

    @property
    def engines(self) -> list[str]:
        return [self.engine] if isinstance(self.engine, str) else list(self.engine)


# ----- studies -----------------------------------------------------------------------------------
class WorkloadVariant(_Strict):
    """A workload of a study: its lengths (and optionally a shared prefix) replace the scenario's."""

    input_tokens: LengthDist
    output_tokens: LengthDist
    prefix: dict[str, Any] | None = None
    slo: list[dict[str, Any]] | None = None


class PDStudySpec(_Strict):
    """Colocated (chunked prefill) vs prefill/decode disaggregation at a fixed GPU count."""

    kind: Literal["pd_vs_colocated"]
    colocated_engine: str
    prefill_engine: str
    decode_engine: str
    gpus: int = Field(ge=2, le=4096)  # per configuration
    workloads: dict[str, WorkloadVariant] = Field(min_length=1)
    requests: int = Field(300, ge=10, le=1_000_000)  # at least this many per run
    #: simulated seconds of arrivals per run (more requests at higher rates, so queues reach a steady state)
    duration_s: float = Field(60.0, gt=0.0, le=1e6)
    start_rate: float = Field(2.0, gt=0.0)
    tolerance: float = Field(0.08, gt=0.0, lt=1.0)


class AFDStudySpec(_Strict):
    """Colocated vs P/D vs P/D with an AFD decode side, for a MoE model; sweeps the attention:FFN ratio."""

    kind: Literal["afd"]
    colocated_engine: str
    prefill_engine: str
    decode_engine: str
    afd_engine: str
    attention_gpus: list[int] = Field(min_length=1)
    ffn_gpus: list[int] = Field(min_length=1)
    micro_batches: list[int] = Field(default_factory=lambda: [2], min_length=1)
    target_rate: float = Field(gt=0.0)  # req/s at which every configuration is checked against the SLOs
    #: ``fixed``: every disaggregated configuration keeps the prefill engine's replicas as written;
    #: ``auto``: the prefill pool is sized to the rate from one replica's measured TTFT capacity, so
    #: it never sets a configuration's capacity and the decode side (P/D or AFD) is what is compared
    prefill_pool: Literal["fixed", "auto"] = "fixed"
    workloads: dict[str, WorkloadVariant] = Field(min_length=1)
    requests: int = Field(200, ge=10, le=1_000_000)  # at least this many per run
    #: simulated seconds of arrivals per run (more requests at higher rates, so queues reach a steady state)
    duration_s: float = Field(60.0, gt=0.0, le=1e6)
    tolerance: float = Field(0.1, gt=0.0, lt=1.0)


class RAGStudySpec(_Strict):
    """Chips split between retrieval servers and inference replicas, for growing databases."""

    kind: Literal["rag"]
    retrieval_engine: str
    inference_engines: list[str] = Field(min_length=1)  # their replicas are set by the allocation
    chips: int = Field(ge=2, le=100_000)  # retrieval servers + inference devices
    database_vectors: list[float] = Field(min_length=1)
    requests: int = Field(300, ge=10, le=1_000_000)  # at least this many per run
    #: simulated seconds of arrivals per run (more requests at higher rates, so queues reach a steady state)
    duration_s: float = Field(60.0, gt=0.0, le=1e6)
    start_rate: float = Field(2.0, gt=0.0)
    tolerance: float = Field(0.1, gt=0.0, lt=1.0)
    max_allocations: int = Field(8, ge=1, le=1000)  # per database size, spread over the feasible range


StudySpec = Annotated[Union[PDStudySpec, AFDStudySpec, RAGStudySpec], Field(discriminator="kind")]


# ----- the scenario ------------------------------------------------------------------------------
class PipelineScenario(ScenarioFile):
    engines: dict[str, EngineSpec] = Field(min_length=1)
    graph: list[StageSpec] = Field(min_length=1)
    links: dict[str, LinkSpec] = Field(default_factory=dict)
    study: StudySpec | None = None

    def with_changes(self, **changes: Any) -> "PipelineScenario":
        new = super().with_changes(**changes)
        check_pipeline(new)
        return new

    def stage_index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.graph) if s.name == name)

    def predecessors(self, i: int) -> list[int]:
        stage = self.graph[i]
        if stage.after is None:
            return [i - 1] if i > 0 else []
        return [self.stage_index(n) for n in stage.after]

    def successors(self, i: int) -> list[int]:
        return [j for j in range(len(self.graph)) if i in self.predecessors(j)]

    @property
    def used_engines(self) -> list[str]:
        """The engines some stage runs on (in ``engines`` order); the others are not provisioned."""
        used = {e for st in self.graph for e in st.engines}
        used |= {st.retrieval_engine for st in self.graph if st.retrieval_engine}
        return [name for name in self.engines if name in used]

    @property
    def final_stage(self) -> int:
        return next(i for i in range(len(self.graph)) if not self.successors(i))


BUILTIN_LINKS = ("scale_out", "scale_up")


def _check_link(sc: PipelineScenario, ref, field: str) -> None:
    if isinstance(ref, str) and ref not in BUILTIN_LINKS and ref not in sc.links:
        raise ValueError(f"{field}: unknown link '{ref}'; expected scale_out, scale_up, a name in 'links' "
                         f"({', '.join(sc.links) or 'none defined'}) or {{bandwidth_gb_per_s, latency_us}}")


def check_pipeline(sc: PipelineScenario, origin: object = None) -> None:
    """Cross-references of a pipeline: :class:`ConfigError` naming the file and the dotted field."""
    try:
        _check(sc)
    except ValueError as exc:
        field, _, problem = str(exc).partition(": ")
        raise ConfigError(sc.origin if origin is None else origin, field, problem) from None


def _check(sc: PipelineScenario) -> None:
    names = [s.name for s in sc.graph]
    for i, stage in enumerate(sc.graph):
        f = f"graph[{i}]"
        if names.index(stage.name) != i:
            raise ValueError(f"{f}.name: stage name '{stage.name}' is used twice")
        for n in stage.after or []:
            if n not in names[:i]:
                raise ValueError(f"{f}.after: '{n}' is not an earlier stage (stages must be listed after "
                                 f"the ones they wait for; earlier: {', '.join(names[:i]) or 'none'})")
        kinds = STAGE_ENGINES[stage.kind]
        for e in stage.engines:
            if e not in sc.engines:
                raise ValueError(f"{f}.engine: unknown engine '{e}'; engines: {', '.join(sc.engines)}")
            if sc.engines[e].kind not in kinds:
                raise ValueError(f"{f}.engine: a {stage.kind} stage runs on {' or '.join(kinds)} engines; "
                                 f"'{e}' is {sc.engines[e].kind}")
        route = stage.route
        if route.policy == "size":
            if len(route.thresholds_tokens) != len(stage.engines) - 1:
                raise ValueError(f"{f}.route.thresholds_tokens: size routing over {len(stage.engines)} engines "
                                 f"needs {len(stage.engines) - 1} thresholds, got {len(route.thresholds_tokens)}")
            if sorted(route.thresholds_tokens) != route.thresholds_tokens:
                raise ValueError(f"{f}.route.thresholds_tokens: expected increasing thresholds")
        elif route.thresholds_tokens:
            raise ValueError(f"{f}.route.thresholds_tokens: only for policy: size")
        llm = stage.kind in GENERATION_KINDS
        if stage.branches > 1 and not llm:
            raise ValueError(f"{f}.branches: only llm, reasoning and llm_decode stages branch")
        if stage.output_tokens is not None and not llm:
            raise ValueError(f"{f}.output_tokens: a {stage.kind} stage generates no tokens"
                             + (" (its llm_decode stage sets them)" if stage.kind == "llm_prefill" else ""))
        if stage.kind == "llm_decode":
            if stage.input_tokens is not None or stage.extra_input_tokens:
                raise ValueError(f"{f}.input_tokens: an llm_decode stage continues its prefill stage's prompt")
            preds = sc.predecessors(i)
            if len(preds) != 1 or sc.graph[preds[0]].kind != "llm_prefill":
                raise ValueError(f"{f}.after: an llm_decode stage follows exactly one llm_prefill stage")
        elif stage.transfer is not None:
            raise ValueError(f"{f}.transfer: only llm_decode stages receive a KV transfer")
        if stage.transfer is not None:
            _check_link(sc, stage.transfer.link, f"{f}.transfer.link")
        if (stage.retrieve_every_tokens is None) != (stage.retrieval_engine is None):
            raise ValueError(f"{f}.retrieval_engine: iterative retrieval needs both retrieve_every_tokens "
                             "and retrieval_engine")
        if stage.retrieval_engine is not None:
            if not llm:
                raise ValueError(f"{f}.retrieve_every_tokens: only generating stages retrieve while decoding")
            if stage.branches > 1:
                raise ValueError(f"{f}.retrieve_every_tokens: not supported together with branches")
            eng = sc.engines.get(stage.retrieval_engine)
            if eng is None or eng.kind != "retrieval":
                raise ValueError(f"{f}.retrieval_engine: expected the name of a retrieval engine, got "
                                 f"'{stage.retrieval_engine}'")
        if stage.kind == "llm_prefill":
            succ = sc.successors(i)
            if len(succ) != 1 or sc.graph[succ[0]].kind != "llm_decode":
                raise ValueError(f"{f}.kind: an llm_prefill stage must be followed by exactly one llm_decode "
                                 "stage (and nothing else)")
        if stage.kind == "kv_retrieval":
            succ = sc.successors(i)
            if len(succ) != 1 or sc.graph[succ[0]].kind not in PREFILLING_KINDS:
                raise ValueError(f"{f}.kind: a kv_retrieval stage must be followed by exactly one LLM stage that "
                                 "runs the prompt (llm, reasoning or llm_prefill)")
            if isinstance(stage.tokens, int) and stage.tokens < 1:
                raise ValueError(f"{f}.tokens: expected 'prefix' or a positive token count")
    sinks = [i for i in range(len(sc.graph)) if not sc.successors(i)]
    if len(sinks) != 1:
        raise ValueError("graph: exactly one stage may have no successor (the final stage); found "
                         + ", ".join(sc.graph[i].name for i in sinks))
    for name, eng in sc.engines.items():
        if eng.kind == "afd":
            _check_link(sc, eng.link, f"engines.{name}.link")


def validate_pipeline(data: Any, origin: object = "<pipeline>") -> PipelineScenario:
    """Validate a pipeline scenario given as a mapping (errors as :class:`ConfigError`)."""
    sc = validate_model(PipelineScenario, data, origin)
    check_pipeline(sc, origin)
    return sc


def load_pipeline(path: str | Path) -> PipelineScenario:
    """Read and validate a pipeline scenario YAML file."""
    sc = load_model_yaml(PipelineScenario, path)
    check_pipeline(sc)
    return sc
