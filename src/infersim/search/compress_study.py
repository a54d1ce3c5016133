"""``compress-study``: methods x sparsity x bits x rank, measured quality beside predicted speed.

Each point compresses the packaged model's real weights (:func:`infersim.compress.run_compression`)
and measures the quality it lost; the point's compressed shape (sparsity pattern, bits and group,
adapter rank) then becomes transforms (:mod:`infersim.perf.transforms.measured`) whose predicted
speed the cost model gives for the study's deployment. Both go into the results database (one
row per point, evaluator ``compress``), and the measured accuracy-speed Pareto front (least
quality lost, most output tokens per second) is what the study reports.

The quality is measured on the packaged small model; the speed is the same compressed shape on
the deployment's model (Llama-3.1-8B on an H100 by default): a study of how much a setting costs
in quality here against what it buys on a served model.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError, InfersimError

#: the two objectives of the front: (metric, direction)
OBJECTIVES = (("quality_delta", "min"), ("output_tokens_per_s", "max"))


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "llama-3.1-8b"
    hardware: str = "h100-sxm"
    tp: int = Field(1, ge=1)
    batch: int = Field(16, ge=1)
    input: int = Field(1024, ge=1)
    output: int = Field(256, ge=1)
    #: the serving runtime modelled (infersim.runtime; unset: the default runtime, as estimate)
    runtime: str | None = None


class CompressStudySpec(BaseModel):
    """A compress-study file (YAML)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    model: str = "smollm2"
    calib: int | None = Field(None, ge=1)
    eval: int | None = Field(None, ge=1)
    layers: int | None = Field(None, ge=1)
    methods: list[str] = Field(min_length=1)
    sparsity: list[str | float] = ["0"]
    bits: list[int | None] = [None]
    lowrank: list[float] = [0.0]
    group_size: int = Field(128, ge=1)
    deployment: DeploymentSpec = DeploymentSpec()


@dataclass
class StudyPoint:
    config: dict
    metrics: dict[str, float]
    status: str = "ok"
    error: str | None = None
    front: bool = False


@dataclass
class CompressStudy:
    spec: CompressStudySpec
    origin: str
    points: list[StudyPoint] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def load_compress_study(path: str | Path) -> CompressStudySpec:
    """The study file through the checked user-file loader; every field checked before anything runs."""
    from ..compress import METHODS, PACKAGED_MODELS, CompressionSpec, parse_sparsity
    from ..hardware.catalog import format_validation_error
    from ..perf.transforms.measured import SCHEME_OF_BITS
    from ..userfile import load_yaml_mapping

    data = load_yaml_mapping(path, "compress-study file")
    try:
        spec = CompressStudySpec.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(str(path), err) from None
    from ..runtime import RUNTIMES

    if spec.deployment.runtime is not None and spec.deployment.runtime not in RUNTIMES:
        raise ConfigError(path, "deployment.runtime", f"unknown runtime '{spec.deployment.runtime}'; expected one "
                          f"of {', '.join(sorted(RUNTIMES))}")
    if spec.model not in PACKAGED_MODELS:
        raise ConfigError(path, "model", f"unknown packaged model '{spec.model}'; expected one of "
                          f"{', '.join(sorted(PACKAGED_MODELS))}")
    for i, m in enumerate(spec.methods):
        if m not in METHODS:
            raise ConfigError(path, f"methods.{i}", f"unknown method '{m}'; expected one of {', '.join(METHODS)}")
    for i, s in enumerate(spec.sparsity):
        try:
            parse_sparsity(str(s))
        except InfersimError as err:
            raise ConfigError(path, f"sparsity.{i}", str(err)) from None
    for i, b in enumerate(spec.bits):
        if b is not None and b not in SCHEME_OF_BITS:
            raise ConfigError(path, f"bits.{i}", f"{b}-bit weights have no modelled kernel for the speed "
                              f"prediction; expected one of {', '.join(map(str, SCHEME_OF_BITS))} or null")
    for i, r in enumerate(spec.lowrank):
        try:
            CompressionSpec(lowrank=r)
        except InfersimError as err:
            raise ConfigError(path, f"lowrank.{i}", str(err)) from None
    return spec


def _deployment(spec: CompressStudySpec):
    from ..hardware import get_device
    from ..models import get_model
    from ..perf.parallel import Parallelism, Precision

    d = spec.deployment
    return get_model(d.model), get_device(d.hardware), Parallelism(tp=d.tp), Precision()


def predicted_speed(spec: CompressStudySpec, transforms: tuple) -> dict[str, float]:
    """The cost model's prediction for the study's deployment with ``transforms`` applied."""
    from ..perf.estimate import estimate
    from ..perf.graph import GraphOptions
    from ..runtime import get_runtime

    model, device, par, prec = _deployment(spec)
    d = spec.deployment
    est = estimate(model, device, par, prec, batch=d.batch, input_tokens=d.input, output_tokens=d.output,
                   options=GraphOptions(transforms=transforms), runtime=get_runtime(d.runtime))
    if not est.fits:
        return {"output_tokens_per_s": math.nan, "tpot_s": math.nan, "ttft_s": math.nan}
    return {"output_tokens_per_s": est.output_tokens_per_s, "tpot_s": est.tpot_s, "ttft_s": est.ttft_s,
            "weights_bytes_per_device": est.memory.weights_bytes}


def settings(spec: CompressStudySpec):
    """(method, CompressionSpec) of every point of the grid, and the reasons points were skipped."""
    from ..compress import CompressionSpec, get_method, parse_sparsity

    out, skipped = [], []
    for method, sparsity, bits, lowrank in itertools.product(spec.methods, spec.sparsity, spec.bits, spec.lowrank):
        fraction, n, m = parse_sparsity(str(sparsity))
        cs = CompressionSpec(sparsity=fraction, n=n, m=m, bits=bits, group_size=spec.group_size, lowrank=lowrank)
        try:
            get_method(method).check(cs)
        except InfersimError as err:
            skipped.append(f"{method} {cs.label()}: {err}")
            continue
        out.append((method, cs))
    return out, skipped


def run_compress_study(spec: CompressStudySpec, origin: str, on_point=None) -> CompressStudy:
    """Measure every point of the grid (and the uncompressed baseline) and mark the Pareto front."""
    from ..compress import PACKAGED_MODELS, run_compression
    from ..perf.transforms.measured import record_from_dict
    from .pareto import pareto_mask

    causal = PACKAGED_MODELS[spec.model].kind == "causal"
    calib = spec.calib or (8 if causal else 128)
    evaluation = spec.eval or (8 if causal else 256)
    study = CompressStudy(spec, origin)
    grid, study.skipped = settings(spec)
    base = predicted_speed(spec, ())
    study.points.append(StudyPoint({"method": "none", "setting": "dense"}, {"quality_delta": 0.0, **base}))
    for method, cs in grid:
        t0 = time.perf_counter()
        run = run_compression(spec.model, method, cs, calib, evaluation, num_layers=spec.layers)
        rec = run.record.to_dict()
        measured = record_from_dict(rec, f"{origin}: {method} {cs.label()}")
        speed = predicted_speed(spec, measured.transforms())
        metrics = {k: float(rec[k]) for k in ("quality_delta", "mean_relative_error", "perplexity_dense",
                                               "perplexity_compressed", "cosine_similarity") if rec.get(k) is not None}
        metrics.update(speed)
        metrics["speedup"] = speed["output_tokens_per_s"] / base["output_tokens_per_s"]
        metrics["compressed_bytes_fraction"] = rec["compressed_linear_bytes"] / rec["dense_linear_bytes"]
        metrics["compress_s"] = rec["seconds"]
        metrics["elapsed_s"] = time.perf_counter() - t0
        config = {"method": method, "setting": cs.label(), "sparsity": cs.pruned_fraction,
                  "pattern": measured.pattern, "bits": cs.bits, "group_size": cs.group_size, "lowrank": cs.lowrank}
        study.points.append(StudyPoint(config, metrics))
        if on_point is not None:
            on_point(study.points[-1])
    values = np.array([[p.metrics.get(k, math.nan) for k, _ in OBJECTIVES] for p in study.points])
    ok = np.isfinite(values).all(axis=1)
    front = np.zeros(len(values), dtype=bool)
    front[ok] = pareto_mask(values[ok], [d for _, d in OBJECTIVES])
    for p, f in zip(study.points, front):
        p.front = bool(f)
    return study


def store_compress_study(study: CompressStudy, db: str | Path) -> int:
    """One row per point in the results database (``studies`` / ``evaluations``, evaluator ``compress``)."""
    from .backends import Batch
    from .scoring import Objective, Scoring
    from .space import canonical_json, point_key
    from .store import open_store

    spec = study.spec
    namespace = f"compress-study {spec.name}: {spec.model} calib={spec.calib} eval={spec.eval} " \
                f"layers={spec.layers} deployment={canonical_json(spec.deployment.model_dump())}"
    configs = [canonical_json({**p.config, "model": spec.model, "deployment": spec.deployment.model_dump()})
               for p in study.points]
    names = sorted({k for p in study.points for k in p.metrics})
    n = len(study.points)
    batch = Batch(trials=list(range(n)), keys=[point_key(namespace, c) for c in configs], configs=configs,
                  status=[p.status for p in study.points], errors=[p.error for p in study.points],
                  metrics={k: np.array([p.metrics.get(k, math.nan) for p in study.points]) for k in names},
                  feasible=np.ones(n, dtype=bool),
                  objectives=np.array([[p.metrics.get(k, math.nan) for k, _ in OBJECTIVES] for p in study.points]),
                  violations=np.zeros((n, 0)), evaluator="compress", elapsed_s=0.0)
    scoring = Scoring(tuple(Objective(k, d) for k, d in OBJECTIVES), ()).to_dict()
    with open_store(db, write=True) as store:
        store.register_study(spec.name, json.loads(spec.model_dump_json()), scoring, namespace)
        store.insert(spec.name, batch)
    return n
