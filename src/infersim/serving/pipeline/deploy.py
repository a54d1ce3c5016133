"""What a pipeline's engines are, independent of the workload: cost models, KV capacity, devices.

:func:`prepare_pipeline` turns every engine spec into a prepared engine:

* ``llm``: a serving :class:`~infersim.serving.engine.Deployment` built by
  :func:`~infersim.serving.engine.prepare` (memory check, KV blocks, step costs);
* ``afd``: a Deployment whose step costs come from
  :class:`~infersim.serving.pipeline.afd.AFDStepTimeModel` and whose KV cache is the attention
  GPUs' memory left after their weights (the FFN GPUs are checked to hold the routed experts);
* ``encoder``: a :class:`~infersim.perf.step_time.StepTimeModel` of the encoder without the LM
  head; a batch of queries is one prefill-only forward with bidirectional attention
  (``c^2`` query-key pairs for a query of ``c`` tokens instead of the causal ``c (c + 1) / 2``);
* ``retrieval``: the database split into copies, each copy sharded over as few servers as hold its
  codes (:func:`retrieval_groups`); a batch of ``q`` queries on a copy of ``s`` servers takes
  :func:`~infersim.perf.retrieval.vector_search_time_s` with ``s x cores`` cores;
* ``kv_store``: its levels as :class:`~infersim.perf.retrieval.StorageLevel`.

Errors name the scenario file and the dotted key (``engines.decode.parallelism``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ...errors import ConfigError, InfersimError
from ...hardware import get_device
from ...hardware.catalog import is_file_reference
from ...hardware.device import Device, Link
from ...models import get_model
from ...models.config import ModelConfig
from ...perf.graph import GraphOptions
from ...perf.parallel import Parallelism, Precision
from ...perf.retrieval import StorageLevel, ivf_pq_bytes_scanned, vector_search_time_s
from ...perf.step_time import StepTimeModel
from ..cost import StepCost
from ..engine import Deployment, prepare, scenario_runtime
from ..scenario import validate_scenario
from .afd import AFDLayout, AFDStepTimeModel, afd_memory, check_memory
from .spec import (
    AFDEngineSpec,
    EncoderEngineSpec,
    KVStoreEngineSpec,
    LinkSpec,
    LLMEngineSpec,
    PipelineScenario,
    RetrievalEngineSpec,
)


@dataclass
class PreparedEngine:
    name: str
    kind: str
    #: (device, count) over all the engine's replicas / servers, for cost and energy
    devices: list[tuple[Device, int]] = field(default_factory=list)

    @property
    def device_count(self) -> int:
        return sum(n for _, n in self.devices)


@dataclass
class LLMEngine(PreparedEngine):
    """An ``llm`` or ``afd`` pool: ``replicas`` copies of one deployment."""

    deployment: Deployment | None = None
    model: ModelConfig | None = None
    replicas: int = 1
    devices_per_replica: int = 1


@dataclass
class EncoderEngine(PreparedEngine):
    stm: StepTimeModel | None = None
    servers: int = 1
    max_batch: int = 1
    router_policy: str = "least_outstanding"

    def batch_time_s(self, tokens: list[int]) -> float:
        """One forward of a batch of queries of ``tokens`` tokens each, bidirectional attention."""
        pairs = float(sum(c * c for c in tokens))
        total = int(sum(tokens))
        loads = {w: (pairs, pairs, float(total), 0.0) for w in self.stm.windows}
        return self.stm.step_time_s(total, len(tokens), 0, loads)


@dataclass
class RetrievalEngine(PreparedEngine):
    spec: RetrievalEngineSpec | None = None
    cores_per_server: int = 1
    group_servers: list[int] = field(default_factory=list)  # servers in each copy of the database
    max_batch: int = 1
    router_policy: str = "least_outstanding"

    @property
    def bytes_per_query(self) -> float:
        db = self.spec.database
        return float(ivf_pq_bytes_scanned(db.vectors, db.fraction_probed, db.code_bytes))

    def batch_time_s(self, queries: int, group: int) -> float:
        db = self.spec.database
        return float(vector_search_time_s(queries, db.vectors, db.fraction_probed, db.code_bytes,
                                          scan_bytes_per_s_per_core=self.spec.scan_gb_per_s_per_core * 1e9,
                                          cores=self.cores_per_server * self.group_servers[group],
                                          overhead_s=self.spec.overhead_ms * 1e-3))


@dataclass
class KVStoreEngine(PreparedEngine):
    levels: list[StorageLevel] = field(default_factory=list)


@dataclass
class PipelineDeployment:
    scenario: PipelineScenario
    engines: dict[str, PreparedEngine]
    max_context_tokens: int


# ----- helpers --------------------------------------------------------------------------------------
def resolve_model(sc: PipelineScenario, name: str, field_name: str) -> ModelConfig:
    """A catalog model, or a HF config.json named relative to the scenario file."""
    try:
        return get_model(name if _is_catalog_model(name) else sc.resolve_path(name))
    except InfersimError as exc:
        raise ConfigError(sc.origin, field_name, str(exc)) from None


def resolve_device(sc: PipelineScenario, name: str, field_name: str) -> Device:
    try:
        return get_device(name if _is_catalog_device(name) else str(sc.resolve_path(name)), efficiency=sc.efficiency)
    except InfersimError as exc:
        raise ConfigError(sc.origin, field_name, str(exc)) from None


def _joined_basis(*devices: Device) -> str:
    """The basis of one or more devices' numbers, each named where they differ."""
    bases = {d.basis for d in devices}
    return bases.pop() if len(bases) == 1 else "; ".join(f"{d.name}: {d.basis}" for d in devices)


def resolve_link(sc: PipelineScenario, ref, device: Device) -> Link:
    """A link reference: the device's ``scale_out`` / ``scale_up`` link, a named one, or an inline one."""
    if isinstance(ref, str) and ref == "scale_out":
        return device.scale_out
    if isinstance(ref, str) and ref == "scale_up":
        return device.scale_up
    spec: LinkSpec = sc.links[ref] if isinstance(ref, str) else ref
    name = ref if isinstance(ref, str) else "link"
    return Link(name, spec.bandwidth_gb_per_s * 1e9, spec.latency_us * 1e-6, 1 << 30, "network")


def _pool_scenario(sc: PipelineScenario, name: str, model: str, hardware: str, parallelism: dict, precision,
                   scheduler, router, transforms=()):
    """The serving scenario of one LLM pool (the pipeline's workload is carried but not used)."""
    data = {"name": f"{sc.name}/{name}", "seed": sc.seed, "transforms": list(transforms), "runtime": sc.runtime,
            "efficiency": sc.efficiency,
            "model": model if _is_catalog_model(model) else str(sc.resolve_path(model)),
            "hardware": hardware if _is_catalog_device(hardware) else str(sc.resolve_path(hardware)),
            "parallelism": parallelism, "precision": precision.model_dump(),
            # only the keys the file set: the runtime's defaults fill the others
            "scheduler": scheduler.model_dump(exclude_none=True, exclude_unset=True), "router": router.model_dump(),
            "workload": sc.workload.model_dump(exclude_none=True)}
    return validate_scenario(data, sc.origin)


def _llm(sc: PipelineScenario, name: str, spec: LLMEngineSpec, max_context: int) -> LLMEngine:
    base = f"engines.{name}"
    model = resolve_model(sc, spec.model, f"{base}.model")
    device = resolve_device(sc, spec.hardware, f"{base}.hardware")
    try:
        pool_sc = _pool_scenario(sc, name, spec.model, spec.hardware, spec.parallelism.model_dump(), spec.precision,
                                 spec.scheduler, spec.router, spec.transforms)
        dep = prepare(pool_sc, max_context_tokens=max_context)
    except ConfigError as exc:
        raise ConfigError(sc.origin, f"{base}.{exc.field}" if exc.field else base, exc.problem) from None
    p = spec.parallelism
    per_replica = p.tp * p.pp
    return LLMEngine(name, "llm", [(device, per_replica * p.replicas)], deployment=dep, model=model,
                     replicas=p.replicas, devices_per_replica=per_replica)


def _is_catalog_model(name: str) -> bool:
    return not (name.endswith(".json") or "/" in name or "\\" in name)


def _is_catalog_device(name: str) -> bool:
    return not is_file_reference(name)


def _afd(sc: PipelineScenario, name: str, spec: AFDEngineSpec, max_context: int) -> LLMEngine:
    base = f"engines.{name}"
    model = resolve_model(sc, spec.model, f"{base}.model")
    dev_a = resolve_device(sc, spec.attention.hardware or spec.hardware, f"{base}.attention.hardware")
    dev_f = resolve_device(sc, spec.ffn.hardware or spec.hardware, f"{base}.ffn.hardware")
    layout = AFDLayout(spec.attention.gpus, spec.attention.tp, spec.ffn.gpus, spec.micro_batches)
    pr = spec.precision
    prec = Precision(pr.weight, pr.activation, pr.kv_cache)
    link = resolve_link(sc, spec.link, dev_a)
    sched = spec.scheduler
    try:
        stm = AFDStepTimeModel(model, dev_a, dev_f, layout, prec, link.bandwidth_bytes_per_s, link.latency_s,
                               GraphOptions(attention_impl=sched.attention), comm=spec.comm)
        mem = afd_memory(model, dev_a, dev_f, layout, prec, sched.token_budget, sched.max_num_seqs,
                         sched.memory_utilization)
        check_memory(mem, layout, model)
    except InfersimError as exc:
        raise ConfigError(sc.origin, base, str(exc)) from None
    per_token = stm.kv_bytes_per_token()
    blocks = int(mem.attention_kv_capacity // (per_token * sched.block_size)) * layout.ranks
    if sched.num_gpu_blocks_override is not None:
        blocks = sched.num_gpu_blocks_override
    pool_sc = _pool_scenario(sc, name, spec.model, spec.attention.hardware or spec.hardware,
                             {"tp": spec.attention.tp, "replicas": spec.replicas}, pr, sched, spec.router)
    dep = Deployment(scenario=pool_sc, model_name=model.name, device_name=f"{dev_a.name}+{dev_f.name}",
                     parallel=stm.attn_par, precision=prec, stm=stm, cost=StepCost(stm, max_context, runtime=scenario_runtime(sc).for_device(dev_a.memory_bytes)),
                     blocks_per_engine=blocks, kv_bytes_per_token=per_token,
                     weights_bytes=mem.attention_weights, kv_capacity_bytes=mem.attention_kv_capacity,
                     peak_flops=dev_a.peak_flops(prec.gemm_compute),
                     memory_bandwidth_bytes_per_s=dev_a.memory_bandwidth_bytes_per_s,
                     device_basis=_joined_basis(dev_a, dev_f))
    devices = [(dev_a, layout.attention_gpus * spec.replicas), (dev_f, layout.ffn_gpus * spec.replicas)]
    if dev_a.name == dev_f.name:
        devices = [(dev_a, layout.gpus * spec.replicas)]
    return LLMEngine(name, "afd", devices, deployment=dep, model=model, replicas=spec.replicas,
                     devices_per_replica=layout.gpus)


def _encoder(sc: PipelineScenario, name: str, spec: EncoderEngineSpec) -> EncoderEngine:
    base = f"engines.{name}"
    model = resolve_model(sc, spec.model, f"{base}.model")
    device = resolve_device(sc, spec.hardware, f"{base}.hardware")
    pr = spec.precision
    try:
        stm = StepTimeModel(model, device, Parallelism(), Precision(pr.weight, pr.activation, pr.kv_cache),
                            GraphOptions(include_lm_head=False))
    except InfersimError as exc:
        raise ConfigError(sc.origin, base, str(exc)) from None
    return EncoderEngine(name, "encoder", [(device, spec.servers)], stm=stm, servers=spec.servers,
                         max_batch=spec.max_batch, router_policy=spec.router.policy)


def retrieval_groups(servers: int, shards: int) -> list[int]:
    """Servers per copy of the database: ``servers // shards`` copies, the remainder spread over them."""
    copies = servers // shards
    base, extra = divmod(servers, copies)
    return [base + (1 if i < extra else 0) for i in range(copies)]


def _retrieval(sc: PipelineScenario, name: str, spec: RetrievalEngineSpec) -> RetrievalEngine:
    base = f"engines.{name}"
    device = resolve_device(sc, spec.hardware, f"{base}.hardware")
    cores = spec.cores_per_server or device.compute_units
    db = spec.database
    db_bytes = db.vectors * db.code_bytes
    per_server = device.memory_bytes * spec.memory_utilization
    shards = max(1, math.ceil(db_bytes / per_server))
    if spec.servers < shards:
        raise ConfigError(sc.origin, f"{base}.servers",
                          f"the database's codes ({db_bytes / 1e12:.2f} TB) need {shards} servers of "
                          f"{device.name} ({per_server / 1e9:.0f} GB usable each), got {spec.servers}")
    return RetrievalEngine(name, "retrieval", [(device, spec.servers)], spec=spec, cores_per_server=cores,
                           group_servers=retrieval_groups(spec.servers, shards), max_batch=spec.max_batch,
                           router_policy=spec.router.policy)


def min_retrieval_servers(spec: RetrievalEngineSpec, device: Device) -> int:
    """Fewest servers that hold the database's codes."""
    db = spec.database
    return max(1, math.ceil(db.vectors * db.code_bytes / (device.memory_bytes * spec.memory_utilization)))


def prepare_pipeline(sc: PipelineScenario, max_context_tokens: int = 32768) -> PipelineDeployment:
    """Prepare every engine a stage of the scenario uses (errors name the engine's key)."""
    engines: dict[str, PreparedEngine] = {}
    for name in sc.used_engines:
        spec = sc.engines[name]
        if isinstance(spec, LLMEngineSpec):
            engines[name] = _llm(sc, name, spec, max_context_tokens)
        elif isinstance(spec, AFDEngineSpec):
            engines[name] = _afd(sc, name, spec, max_context_tokens)
        elif isinstance(spec, EncoderEngineSpec):
            engines[name] = _encoder(sc, name, spec)
        elif isinstance(spec, RetrievalEngineSpec):
            engines[name] = _retrieval(sc, name, spec)
        elif isinstance(spec, KVStoreEngineSpec):
            engines[name] = KVStoreEngine(name, "kv_store", [], levels=[
                StorageLevel(lv.name, lv.hit_rate, lv.latency_us * 1e-6, lv.bandwidth_gb_per_s * 1e9)
                for lv in spec.levels])
        else:  # pragma: no cover
            raise TypeError(spec)
    return PipelineDeployment(sc, engines, max_context_tokens)


def with_llm_replicas(dep: PipelineDeployment, sc: PipelineScenario, name: str, replicas: int) -> PipelineDeployment:
    """``dep`` with the ``llm`` engine ``name`` at ``replicas`` replicas and ``sc`` (the scenario with
    that change) as its scenario. Every prepared model is shared, cost caches included, so a study
    that only resizes a pool does not prepare (and cost) its engines again."""
    eng = dep.engines[name]
    if not isinstance(eng, LLMEngine) or eng.kind != "llm":
        raise TypeError(f"engine '{name}' is not an llm engine")
    inner = replace(eng.deployment, scenario=eng.deployment.scenario.with_changes(
        **{"parallelism.replicas": replicas}))
    (device, _), = eng.devices
    engines = dict(dep.engines)
    engines[name] = replace(eng, devices=[(device, eng.devices_per_replica * replicas)], deployment=inner,
                            replicas=replicas)
    return PipelineDeployment(sc, engines, dep.max_context_tokens)


def ensure_context(dep: PipelineDeployment, max_context_tokens: int) -> None:
    """Widen the LLM engines' decode lines to contexts of ``max_context_tokens``."""
    if max_context_tokens > dep.max_context_tokens:
        dep.max_context_tokens = max_context_tokens
        for e in dep.engines.values():
            if isinstance(e, LLMEngine):
                e.deployment.cost.ensure_context(max_context_tokens)
