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

from dataclasses import dataclass, field

import numpy as np

from ..errors import InfersimError
from ..hardware.device import Device
from ..models.config import ModelConfig
from .graph import GraphOptions, build_step_graph
from .memory import DEFAULT_MEMORY_UTILIZATION, MemoryBreakdown, memory_breakdown
from .operators import OpTable
from .parallel import Parallelism, Precision
from .roofline import BOUND_NAMES, Bound, OpCosts, cost_ops
from .shape import StepShape


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

    @property
    def devices(self) -> int:
        return self.parallel.devices

    def to_dict(self) -> dict:
        m = self.memory
        out = {
            "model": self.model, "hardware": self.device,
            "parallel": {"tp": self.parallel.tp, "pp": self.parallel.pp, "ep": self.parallel.ep,
                         "devices": self.devices},
            "precision": {"weight": self.precision.weight, "activation": self.precision.activation,
                          "kv_cache": self.precision.kv_cache},
            "batch": self.batch, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "fits": self.fits,
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
            })
        return out


def step_costs(model: ModelConfig, device: Device, par: Parallelism, prec: Precision, shape: StepShape,
               options: GraphOptions = GraphOptions()) -> tuple[OpTable, OpCosts]:
    """Build and cost the step graph for every scenario in ``shape``."""
    table = build_step_graph(model, par, prec, shape, options)
    return table, cost_ops(table, device)


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


def estimate(model: ModelConfig, device: Device, par: Parallelism = Parallelism(),
             prec: Precision = Precision(), *, batch: int = 16, input_tokens: int = 1024,
             output_tokens: int = 256, options: GraphOptions = GraphOptions(),
             memory_utilization: float = DEFAULT_MEMORY_UTILIZATION, top: int = 8) -> Estimate:
    """Prefill + decode of ``batch`` requests of ``input_tokens`` in / ``output_tokens`` out."""
    for name, value, lo in (("--batch", batch, 1), ("--input", input_tokens, 1), ("--output", output_tokens, 1)):
        if value < lo:
            raise InfersimError(f"{name} must be >= {lo}, got {value}")
    par.validate(model)
    context = input_tokens + output_tokens
    mem = memory_breakdown(model, device, par, prec, batch=batch, context=context,
                           prefill_tokens=batch * input_tokens, attention_impl=options.attention_impl,
                           memory_utilization=memory_utilization)
    base = dict(model=model.name, device=device.name, parallel=par, precision=prec, batch=batch,
                input_tokens=input_tokens, output_tokens=output_tokens, memory=mem)
    if not mem.fits:
        return Estimate(**base, fits=False)

    # scenario 0: prefill; scenarios 1..: decode steps at context input + s
    steps = np.arange(1, output_tokens, dtype=np.float64)
    n = 1 + steps.size
    prefill_seqs = np.zeros(n)
    prefill_seqs[0] = batch
    decode_seqs = np.full(n, float(batch))
    decode_seqs[0] = 0.0
    decode_context = np.concatenate([[0.0], input_tokens + steps])
    shape = StepShape.uniform(model, prefill_seqs=prefill_seqs, chunk=input_tokens, past=0,
                              decode_seqs=decode_seqs, decode_context=decode_context)
    table, costs = step_costs(model, device, par, prec, shape, options)
    per_step = costs.step_time_s
    prefill_s = float(per_step[0])
    decode = per_step[1:]
    decode_total = float(decode.sum())
    decode_mean = float(decode.mean()) if decode.size else 0.0
    e2e = prefill_s + decode_total
    pipelined = par.pp  # batches in flight
    out_tps = batch * output_tokens / e2e * pipelined
    in_tps = batch * input_tokens / e2e * pipelined

    peak = device.peak_flops(prec.gemm_compute)
    prefill_flops = float((table.flops[:, 0] * table.count).sum())
    prefill_mfu = prefill_flops / (prefill_s * peak) if prefill_s > 0 else 0.0
    decode_bytes = (table.total_bytes[:, 1:] * table.count[:, None]).sum(axis=0)
    decode_mbu = float((decode_bytes / (decode * device.memory_bandwidth_bytes_per_s)).mean()) if decode.size else 0.0

    busy = _busy_fraction(costs, np.ones((1, n)))
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
        pre = float(totals[rows, 0].sum())
        dec_total = float(totals[rows, 1:].sum())
        dec_mean = dec_total / max(decode.size, 1)
        row = max(rows, key=lambda r: totals[r].sum())
        summaries.append(OperatorSummary(
            name=name, prefill_s=pre, decode_step_s=dec_mean, share=(pre + dec_total) / e2e,
            prefill_bound=_dominant_bound(costs, row, slice(0, 1)),
            decode_bound=_dominant_bound(costs, row, slice(1, None)) if decode.size else "-",
        ))
    summaries.sort(key=lambda s: -s.share)
    return Estimate(
        **base, fits=True, prefill_s=prefill_s, decode_step_s=decode_mean, decode_total_s=decode_total,
        ttft_s=prefill_s, tpot_s=decode_mean, e2e_s=e2e, output_tokens_per_s=out_tps, input_tokens_per_s=in_tps,
        prefill_mfu=prefill_mfu, decode_mbu=decode_mbu, power_w_per_device=power,
        joules_per_output_token=joules, usd_per_million_output_tokens=usd, operators=summaries[:top],
    )
