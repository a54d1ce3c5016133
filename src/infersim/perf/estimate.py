"""Static end-to-end estimate of a batch of identical requests on one replica.

One prefill step of ``batch x input`` tokens, then ``output - 1`` decode steps at
contexts ``input + 1 .. input + output - 1`` (all costed in one vectorized
graph build). TTFT is the prefill time (queueing excluded); TPOT is the mean
decode step. With pipeline parallelism the step latency runs through all
stages; throughput assumes ``pp`` batches in flight (one per stage), as vLLM
and TensorRT-LLM schedule pipelines.

Energy uses a linear power model between idle and TDP, driven by how busy the
bottleneck unit is (Fan, Weber & Barroso, "Power provisioning for a
warehouse-sized computer", ISCA 2007).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..errors import InfersimError
from ..hardware.device import Device
from ..models.config import ModelConfig
from ..runtime import Runtime
from .graph import GraphOptions, build_step_graph, options_for_device
from .memory import DEFAULT_MEMORY_UTILIZATION, MemoryBreakdown, memory_breakdown
from ..dtypes import bytes_per_element
from .operators import OpBuilder, OpTable
from .parallel import Parallelism, Precision
from .roofline import BOUND_NAMES, Bound, OpCosts, cost_ops
from .shape import StepShape
from .transforms import SpecPlan, speculation
from .transforms import notes as transform_notes
from .transforms import prepare as prepare_transforms


@dataclass(frozen=True)
class OperatorSummary:
    name: str
    prefill_s: float  # in the prefill step, all occurrences
    decode_step_s: float  # in a mean decode step, all occurrences
    share: float  # of the request's end-to-end time
    prefill_bound: str
    decode_bound: str


@dataclass(frozen=True)
class Estimate:
    model: str
    device: str
    parallel: Parallelism
    precision: Precision
    batch: int
    input_tokens: int
    output_tokens: int
    memory: MemoryBreakdown
    fits: bool
    runtime: str = "none"  # the serving runtime whose host time and graph padding are included
    prefill_s: float = float("nan")
    decode_step_s: float = float("nan")  # mean over the decode steps
    decode_total_s: float = float("nan")
    ttft_s: float = float("nan")
    tpot_s: float = float("nan")
    e2e_s: float = float("nan")
    output_tokens_per_s: float = float("nan")  # per replica
    input_tokens_per_s: float = float("nan")
    prefill_mfu: float = float("nan")
    decode_mbu: float = float("nan")
    power_w_per_device: float = float("nan")
    joules_per_output_token: float = float("nan")
    usd_per_million_output_tokens: float | None = None
    operators: list[OperatorSummary] = field(default_factory=list)
    transforms: tuple = ()  # applied software techniques (infersim.perf.transforms)
    notes: list[str] = field(default_factory=list)  # their fallbacks and caveats
    tokens_per_round: float = 1.0  # speculative decoding: tokens emitted per decode round
    device_basis: str = "spec sheet only"  # what the device's efficiency numbers rest on (Device.basis)

    @property
    def devices(self) -> int:
        return self.parallel.devices

    def to_dict(self) -> dict:
        m = self.memory
        out = {
            "model": self.model, "hardware": self.device, "hardware_basis": self.device_basis,
            "parallel": {"tp": self.parallel.tp, "pp": self.parallel.pp, "ep": self.parallel.ep,
                         "dp_attention": self.parallel.dp_attention, "devices": self.devices},
            "precision": {"weight": self.precision.weight, "activation": self.precision.activation,
                          "kv_cache": self.precision.kv_cache},
            "batch": self.batch, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "runtime": self.runtime, "fits": self.fits,
            "transforms": [{"spec": t.spec(), "accuracy": t.accuracy().__dict__} for t in self.transforms],
            "notes": list(self.notes),
            "memory_per_device_bytes": {
                "capacity": m.capacity_bytes, "usable": m.usable_bytes, "weights": m.weights_bytes,
                "kv_cache": m.kv_cache_bytes, "activations": m.activation_bytes, "headroom": m.headroom_bytes},
        }
        if self.fits:
            out.update({
                "prefill_s": self.prefill_s, "decode_step_s": self.decode_step_s,
                "decode_total_s": self.decode_total_s, "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
                "e2e_s": self.e2e_s, "output_tokens_per_s": self.output_tokens_per_s,
                "output_tokens_per_s_per_device": self.output_tokens_per_s / self.devices,
                "input_tokens_per_s": self.input_tokens_per_s,
                "prefill_mfu": self.prefill_mfu, "decode_mbu": self.decode_mbu,
                "power_w_per_device": self.power_w_per_device,
                "joules_per_output_token": self.joules_per_output_token,
                "usd_per_million_output_tokens": self.usd_per_million_output_tokens,
                "operators": [op.__dict__ for op in self.operators],
                "tokens_per_round": self.tokens_per_round,
            })
        return out


def step_costs(model: ModelConfig, device: Device, par: Parallelism, prec: Precision, shape: StepShape,
               options: GraphOptions = GraphOptions()) -> tuple[OpTable, OpCosts]:
    """Build and cost the step graph for every scenario in ``shape``."""
    table = build_step_graph(model, par, prec, shape, options_for_device(options, device))
    return table, cost_ops(table, device)


def runtime_step_times(runtime: Runtime | None, model: ModelConfig, device: Device, par: Parallelism,
                       prec: Precision, shape: StepShape, options: GraphOptions = GraphOptions()
                       ) -> tuple[OpTable, OpCosts, np.ndarray]:
    """:func:`step_costs` plus the wall time of every step under a serving runtime: decode-only
    scenarios run at the runtime's CUDA-graph batch, and each step gets the runtime's host time
    for its sequences (``runtime.step_times_s``). Without a runtime (or the kernels-only one) the
    step times are the kernels'. Operator rows (``OpTable``, ``OpCosts``) describe the real batch."""
    table, costs = step_costs(model, device, par, prec, shape, options)
    if runtime is None or runtime.identity:
        return table, costs, costs.step_time_s
    kernel = costs.step_time_s
    padded, changed = _graph_padded(runtime, shape)
    if changed.any():  # re-cost only the scenarios the padding changed (scenarios cost independently)
        kernel = kernel.copy()
        kernel[changed] = step_costs(model, device, par, prec, padded.take(changed), options)[1].step_time_s
    return table, costs, runtime.step_times_s(kernel, shape.prefill_seqs + shape.decode_seqs)


def _graph_padded(runtime: Runtime, shape: StepShape) -> tuple[StepShape, np.ndarray]:
    """The steps as the runtime's CUDA graphs run them, and which scenarios that changes."""
    if not (runtime.graph_padding and runtime.graph_sizes):
        return shape, np.zeros(shape.prefill_seqs.shape[0], dtype=bool)
    padded = shape.padded_decodes(runtime.graph_batches(shape.decode_seqs))
    return padded, padded.decode_seqs != shape.decode_seqs


def runtime_step_times_s(runtime: Runtime | None, model: ModelConfig, device: Device, par: Parallelism,
                         prec: Precision, shape: StepShape, options: GraphOptions = GraphOptions()) -> np.ndarray:
    """The step times of :func:`runtime_step_times` alone, from one graph: the CUDA-graph-padded
    decode-only scenarios are costed beside the others (scenarios cost independently, so the
    times are the same as costing them apart)."""
    if runtime is None or runtime.identity:
        return step_costs(model, device, par, prec, shape, options)[1].step_time_s
    n = shape.prefill_seqs.shape[0]
    padded, changed = _graph_padded(runtime, shape)
    both = StepShape.concat([shape, padded.take(changed)]) if changed.any() else shape
    times = step_costs(model, device, par, prec, both, options)[1].step_time_s
    kernel = times[:n].copy()
    kernel[changed] = times[n:]
    return runtime.step_times_s(kernel, shape.prefill_seqs + shape.decode_seqs)


def _dominant_bound(costs: OpCosts, row: int, columns: slice) -> str:
    """The bound that accounts for most of the row's time over the given scenarios."""
    share = np.bincount(costs.bound[row, columns], weights=costs.time_s[row, columns], minlength=3)
    return BOUND_NAMES[Bound(int(share.argmax()))]


def _busy_fraction(costs: OpCosts, step_weights: np.ndarray) -> float:
    """Time-weighted fraction in which the op's bottleneck unit is busy (0..1)."""
    busy = np.maximum(np.maximum(costs.compute_s, costs.memory_s), costs.network_s)
    num = (busy * costs.count[:, None] * step_weights).sum()
    den = (costs.time_s * costs.count[:, None] * step_weights).sum()
    return float(num / den) if den > 0 else 0.0


DEFAULT_MAX_PREFILL_TOKENS = 8192  # TensorRT-LLM max_num_tokens / vLLM max_num_batched_tokens default


@dataclass(frozen=True)
class PrefillPlan:
    """Prefill steps of a batch under a per-step token cap (arrays over distinct step kinds).

    Whole prompts are packed ``floor(cap / input)`` per step; a prompt longer than the
    cap is split into chunks of ``cap`` tokens (Sarathi-style chunked prefill).
    """

    seqs: np.ndarray  # requests in the step
    chunk: np.ndarray  # new tokens per request
    past: np.ndarray  # cached tokens before the chunk
    repeats: np.ndarray  # how many times this step runs
    completes: np.ndarray  # requests whose prompt completes in this step (1 per seq, or 0 mid-prompt)


def plan_prefill(batch: int, input_tokens: int, max_tokens: int) -> PrefillPlan:
    if input_tokens <= max_tokens:
        per_step = max_tokens // input_tokens
        full, rem = divmod(batch, per_step)
        seqs = [per_step] * (full > 0) + [rem] * (rem > 0)
        reps = [full] * (full > 0) + [1] * (rem > 0)
        n = len(seqs)
        return PrefillPlan(np.array(seqs, float), np.full(n, float(input_tokens)), np.zeros(n),
                           np.array(reps, float), np.array(seqs, float))
    chunks = -(-input_tokens // max_tokens)
    sizes = np.full(chunks, float(max_tokens))
    sizes[-1] = input_tokens - (chunks - 1) * max_tokens
    pasts = np.arange(chunks, dtype=float) * max_tokens
    completes = np.zeros(chunks)
    completes[-1] = 1.0
    return PrefillPlan(np.ones(chunks), sizes, pasts, np.full(chunks, float(batch)), completes)


def _mean_ttft(plan: PrefillPlan, step_s: np.ndarray, batch: int) -> float:
    """Mean over requests of the time their prompt's last prefill step ends."""
    reps = plan.repeats.astype(int)
    times = np.repeat(step_s, reps)
    done = np.repeat(plan.completes, reps)
    if plan.seqs.size and plan.completes.sum() == plan.seqs.sum():  # whole prompts per step
        finish = np.cumsum(times)
        return float((finish * done).sum() / batch)
    # chunked: request b's chunks run back to back; b finishes after (b + 1) prompt times
    per_request = float(step_s.sum())
    return per_request * (batch + 1) / 2.0


def estimate(model: ModelConfig, device: Device, par: Parallelism = Parallelism(),
             prec: Precision = Precision(), *, batch: int = 16, input_tokens: int = 1024,
             output_tokens: int = 256, options: GraphOptions = GraphOptions(),
             memory_utilization: float = DEFAULT_MEMORY_UTILIZATION,
             max_prefill_tokens: int = DEFAULT_MAX_PREFILL_TOKENS, top: int = 8,
             runtime: Runtime | None = None) -> Estimate:
    """Prefill + decode of ``batch`` requests of ``input_tokens`` in / ``output_tokens`` out.

    Prefill runs in steps of at most ``max_prefill_tokens`` tokens (see :func:`plan_prefill`);
    ``prefill_s`` is the whole batch's prefill and ``ttft_s`` the mean over requests of the end
    of their prompt's last step. Then all requests decode together. ``runtime`` (a serving engine,
    :mod:`infersim.runtime`) adds its host time per step and pads decode steps to its CUDA-graph
    sizes (:func:`runtime_step_times`); operator shares stay those of the kernels.
    """
    for name, value, lo in (("--batch", batch, 1), ("--input", input_tokens, 1), ("--output", output_tokens, 1),
                            ("--max-prefill-tokens", max_prefill_tokens, 1)):
        if value < lo:
            raise InfersimError(f"{name} must be >= {lo}, got {value}")
    par.validate(model)
    transforms = options.transforms
    notes: list[str] = []
    if transforms:
        model, prec = prepare_transforms(model, prec, transforms)
        options = options_for_device(options, device)  # binds: refuses what the device cannot run
        transforms = options.transforms
        notes = transform_notes(transforms, device, prec)
    context = input_tokens + output_tokens
    problem = model.context_problem(context)
    if problem:
        raise InfersimError(f"--input + --output: {problem}")
    plan = plan_prefill(batch, input_tokens, max_prefill_tokens)
    step_tokens = float((plan.seqs * plan.chunk).max())
    mem = memory_breakdown(model, device, par, prec, batch=batch, context=context,
                           prefill_tokens=step_tokens, attention_impl=options.attention_impl,
                           memory_utilization=memory_utilization, transforms=transforms)
    if runtime is not None:
        runtime = runtime.for_device(device.memory_bytes)
    base = dict(model=model.name, device=device.name, device_basis=device.basis, parallel=par, precision=prec,
                batch=batch, input_tokens=input_tokens, output_tokens=output_tokens, memory=mem,
                transforms=transforms, notes=notes, runtime=runtime.name if runtime is not None else "none")
    if not mem.fits:
        return Estimate(**base, fits=False)

    # scenarios 0..k-1: the distinct prefill steps; then decode steps at context input + s
    k = plan.seqs.size
    steps = np.arange(1, output_tokens, dtype=np.float64)
    zeros = np.zeros(steps.size)
    shape = StepShape.uniform(
        model,
        prefill_seqs=np.concatenate([plan.seqs, zeros]),
        chunk=np.concatenate([plan.chunk, zeros]),
        past=np.concatenate([plan.past, zeros]),
        decode_seqs=np.concatenate([np.zeros(k), np.full(steps.size, float(batch))]),
        decode_context=np.concatenate([np.zeros(k), input_tokens + steps]),
    )
    table, costs, per_step = runtime_step_times(runtime, model, device, par, prec, shape, options)
    weights = np.concatenate([plan.repeats, np.ones(steps.size)])  # occurrences of each scenario
    prefill_s = float((per_step[:k] * plan.repeats).sum())
    ttft = _mean_ttft(plan, per_step[:k], batch)
    decode = per_step[k:]
    spec = speculation(transforms, model) if transforms else None
    tokens_per_round = 1.0
    if spec is not None and steps.size:
        decode = speculative_round_s(model, device, par, prec, options, spec, batch, input_tokens + steps)
        tokens_per_round = spec.tokens_per_round
        decode = decode / tokens_per_round  # per emitted token
        notes = notes + [f"speculative decoding: {tokens_per_round:.2f} tokens per round; TPOT is a round "
                         "(verify + drafts) per emitted token; the operator table and the power model show a "
                         "plain decode step"]
        base["notes"] = notes
    decode_total = float(decode.sum())
    decode_mean = float(decode.mean()) if decode.size else 0.0
    e2e = prefill_s + decode_total
    pipelined = par.pp  # batches in flight
    out_tps = batch * output_tokens / e2e * pipelined
    in_tps = batch * input_tokens / e2e * pipelined

    peak = device.peak_flops(prec.gemm_compute)
    prefill_flops = float(((table.flops[:, :k] * table.count[:, None]).sum(axis=0) * plan.repeats).sum())
    prefill_mfu = prefill_flops / (prefill_s * peak) if prefill_s > 0 else 0.0
    decode_bytes = (table.total_bytes[:, k:] * table.count[:, None]).sum(axis=0)
    decode_mbu = float((decode_bytes / (decode * device.memory_bandwidth_bytes_per_s)).mean()) if decode.size else 0.0
    if spec is not None:
        decode_mbu = float("nan")  # a round's bytes are not one decode step's: not reported

    busy = _busy_fraction(costs, weights[None, :])
    power = device.idle_w + (device.tdp_w - device.idle_w) * busy
    joules = power * par.devices * e2e / (batch * output_tokens * pipelined)
    usd = None
    if device.usd_per_hour is not None:
        usd = device.usd_per_hour * par.devices / (out_tps * 3600.0) * 1e6

    totals = costs.total_time_s
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(table.names):
        by_name.setdefault(name, []).append(i)
    summaries = []
    for name, rows in by_name.items():
        pre = float((totals[rows, :k] * plan.repeats).sum())
        dec_total = float(totals[rows, k:].sum())
        dec_mean = dec_total / max(decode.size, 1)
        row = max(rows, key=lambda r: totals[r].sum())
        summaries.append(OperatorSummary(
            name=name, prefill_s=pre, decode_step_s=dec_mean, share=(pre + dec_total) / e2e,
            prefill_bound=_dominant_bound(costs, row, slice(0, k)),
            decode_bound=_dominant_bound(costs, row, slice(k, None)) if decode.size else "-",
        ))
    summaries.sort(key=lambda s: -s.share)
    return Estimate(
        **base, fits=True, prefill_s=prefill_s, decode_step_s=decode_mean, decode_total_s=decode_total,
        ttft_s=ttft, tpot_s=decode_mean, e2e_s=e2e, output_tokens_per_s=out_tps, input_tokens_per_s=in_tps,
        prefill_mfu=prefill_mfu, decode_mbu=decode_mbu, power_w_per_device=power,
        joules_per_output_token=joules, usd_per_million_output_tokens=usd, operators=summaries[:top],
        tokens_per_round=tokens_per_round,
    )


def speculative_round_s(model: ModelConfig, device: Device, par: Parallelism, prec: Precision,
                        options: GraphOptions, spec: SpecPlan, batch, context) -> np.ndarray:
    """Time of one speculative round per scenario (``batch`` and ``context`` broadcast): the
    target verifies ``batch x V`` tokens after ``context - 1`` cached ones (logits for all of
    them), the draft runs ``draft_steps`` decode steps of ``batch x draft_tokens`` tokens, plus
    the fixed overhead (:mod:`infersim.perf.transforms.spec`)."""
    b, ctx = (np.asarray(x, dtype=np.float64) for x in np.broadcast_arrays(np.atleast_1d(batch),
                                                                           np.atleast_1d(context)))
    v = float(spec.verify_tokens)
    verify_shape = StepShape.uniform(model, prefill_seqs=b, chunk=v, past=ctx - 1.0)
    verify_shape = dataclasses.replace(verify_shape, extra_logit_tokens=verify_shape.prefill_seqs * (v - 1.0))
    _, verify = step_costs(model, device, par, prec, verify_shape, options)
    draft_options = dataclasses.replace(
        options, transforms=tuple(t for t in options.transforms if t.speculation(model) is None))
    drafted = b * spec.draft_tokens
    draft_shape = StepShape.uniform(spec.draft_model, decode_seqs=drafted, decode_context=ctx)
    _, draft = step_costs(spec.draft_model, device, par, prec, draft_shape, draft_options)
    draft_s = draft.step_time_s
    if spec.draft_fc:
        fc = OpBuilder(b.size)
        h = model.hidden_size
        ab = bytes_per_element(prec.activation)
        fc.gemm("draft.fc", drafted, h, 2 * h, weight_dtype_bytes=ab, act_dtype_bytes=ab, dtype=prec.activation)
        draft_s = draft_s + cost_ops(fc.build(), device).step_time_s
    return verify.step_time_s + spec.draft_steps * draft_s + spec.overhead_s
