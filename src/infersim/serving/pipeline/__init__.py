"""Multi-stage serving: disaggregated prefill/decode, attention-FFN disaggregation, RAG pipelines.

``infersim pipeline FILE`` simulates one pipeline scenario (a YAML file, see
``examples/disagg/``) and prints end-to-end latency, per-stage times, per-engine load,
throughput, $ per million output tokens and joules per output token.
``infersim pipeline-study FILE`` runs the comparison its ``study:`` section describes.

Data flow
---------
::

    scenario YAML ──load_pipeline──► PipelineScenario (spec.py: engines, graph, links, workload, slo, study)
          │                                   │
          │ prepare_pipeline (deploy.py)      │ build_workload (serving/workload.py, the same seed streams)
          ▼                                   ▼
    PipelineDeployment                     Workload ──plan_stages──► per-stage token counts
    (per engine: serving Deployment              (simulator.py; each stage's own random streams)
     for llm, AFDStepTimeModel for afd,           │
     encoder StepTimeModel, retrieval             ▼
     groups, KV-store levels)  ───────────► PipelineRun (simulator.py): one event heap + entities
                                                  │   entities: serving Replicas (LLM / AFD engines, their
                                                  │   schedulers and paged KV caches, unchanged) and
                                                  │   BatchServers (encoder, retrieval; servers.py)
                                                  ▼
                                            PipelineResult ──summarize_pipeline──► PipelineSummary (metrics.py)
                                                                     └──► per-engine serving Summary

* **Engines** (pools): ``llm`` (replicas of one model on one device type and layout; the
  serving scenario's deployment fields), ``afd`` (attention and routed experts on separate GPU
  groups, :mod:`.afd`), ``encoder`` (embedding / rerank models: batched prefill-only forwards with
  bidirectional attention), ``retrieval`` (IVF-PQ vector search on CPU servers or accelerators:
  bytes scanned = vectors x fraction probed x code bytes at a calibrated per-core rate,
  :mod:`infersim.perf.retrieval`), ``kv_store`` (a KV-cache hierarchy: per-level hit rate, latency
  and bandwidth, recomputation on a full miss).
* **Request graph**: stages in dependency order, each naming its kind (``llm`` colocated,
  ``llm_prefill`` + ``llm_decode`` for P/D disaggregation, ``reasoning``, ``encoder``,
  ``retrieval``, ``kv_retrieval``), its engine(s) and the stages it waits for. A request
  finishing stage A becomes an arrival at B's engine at that instant (plus the KV transfer for
  ``llm_decode``); parallel stages join at the later one. Iterative retrieval during decode
  stalls only the request that retrieves; ``branches`` decode several continuations of one prefill.
* **Routing**: per stage over all replicas of the engines it names: round robin, least
  outstanding, least KV load, or ``size`` (by prompt length to one engine, then its router).
* **Time**: the event loop is exact and deterministic (see :mod:`.simulator`); engines'
  step costs are the foundation's (:class:`~infersim.perf.step_time.StepTimeModel`), so a
  pipeline with one colocated ``llm`` stage reproduces ``infersim simulate`` step for step.

Definitions (:mod:`.metrics`): TTFT counts from the arrival at the first stage to the first
output token of the final generation stage (for ``llm_decode``, the token its prefill emits);
TPOT, E2E, goodput as in :mod:`infersim.serving.metrics`; cost from the devices' $/hour over the
makespan; energy from a linear power model driven by each engine's busy fraction.

Python API::

    from infersim.serving.pipeline import load_pipeline, simulate_pipeline, summarize_pipeline
    summary = summarize_pipeline(simulate_pipeline(load_pipeline("examples/disagg/pd_vs_colocated.yaml")))
    print(summary.tpot_s["p90"], summary.usd_per_million_output_tokens)
"""

from .afd import AFDLayout, AFDStepTimeModel, afd_memory
from .deploy import PipelineDeployment, prepare_pipeline
from .metrics import PipelineSummary, summarize_pipeline
from .simulator import PipelineResult, simulate_pipeline
from .spec import PipelineScenario, load_pipeline, validate_pipeline
from .studies import StudyResult, run_study

__all__ = [
    "AFDLayout",
    "AFDStepTimeModel",
    "PipelineDeployment",
    "PipelineResult",
    "PipelineScenario",
    "PipelineSummary",
    "StudyResult",
    "afd_memory",
    "load_pipeline",
    "prepare_pipeline",
    "run_study",
    "simulate_pipeline",
    "summarize_pipeline",
    "validate_pipeline",
]
