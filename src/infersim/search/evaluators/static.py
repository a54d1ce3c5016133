"""The static evaluator: the vectorized cost model over whole groups of configurations.

Configurations are grouped by everything that changes the operator graph (model,
device, tp/pp/ep, dtypes, memory utilization); each group is costed by one
:func:`~infersim.perf.batch_estimate.batch_estimate` over its distinct
``(max_batch, input, output, max_prefill_tokens)``.

What the metrics mean (each replica runs ``max_batch`` identical requests that
arrive together, the :func:`~infersim.perf.estimate.estimate` scenario):

* ``ttft_s`` is the mean over the batch's requests, ``ttft_p50/p90/p99_s`` the
  nearest-rank percentiles over them; every request of the batch decodes in
  the same steps, so ``tpot_p50/p90/p99_s`` all equal ``tpot_s``. The static
  model has no arrival process and no queueing: p99/p90 SLOs reduce to these
  deterministic values. The serving simulation gives real distributions.
* ``output_tokens_per_s`` is the capacity of all replicas at that batch;
  ``capacity_requests_per_s`` the request rate it sustains. With a workload rate
  ``rate_rps``, ``utilization = rate / capacity`` and the *served* token rate is
  ``min(rate, capacity) x output_tokens``; without one, served = capacity.
* ``usd_per_million_output_tokens`` is the price of all devices over the served
  token rate (equal to the estimate's at full load).
* ``goodput_tokens_per_s_per_device``: served output tokens/s per device when the
  point meets every SLO of the study (and ``utilization <= 1``), else 0. The
  simulation evaluator applies it request by request (:mod:`.simulation`).
* ``joules_per_output_token`` and ``power_w`` are at full load (the estimate's
  linear power model).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...errors import InfersimError
from ...hardware import get_device
from ...hardware.chip_knobs import CHIP_KNOBS, KEEP
from ...models import get_model
from ...perf.batch_estimate import DEFAULT_DECODE_NODES, batch_estimate
from ...perf.estimate import DEFAULT_MAX_PREFILL_TOKENS
from ...perf.graph import GraphOptions
from ...perf.routing import DEFAULT_ROUTING
from ...perf.memory import DEFAULT_MEMORY_UTILIZATION
from ...perf.parallel import Parallelism, Precision
from ...runtime import get_runtime
from ..scoring import OK, REJECTED
from ..space import Config
from ..transform_knobs import TRANSFORM_KNOBS, accuracy_delta, transforms_from_config
from .base import Columns, Evaluator, EvaluatorContext, check_option_keys, failure

#: deployment parameters and their defaults (None: the study must give it)
DEPLOYMENT_KNOBS: dict[str, object] = {
    "model": None, "device": None, "tp": 1, "pp": 1, "ep": 1, "replicas": 1, "max_batch": 16,
    "max_prefill_tokens": DEFAULT_MAX_PREFILL_TOKENS, "weight_dtype": "bf16", "activation_dtype": "bf16",
    "kv_dtype": "bf16", "input_tokens": None, "output_tokens": None,
    "memory_utilization": DEFAULT_MEMORY_UTILIZATION,
    **{knob: KEEP for knob in CHIP_KNOBS},  # accelerator-template fields (device: a template file)
}
DEPLOYMENT_KNOBS.update(TRANSFORM_KNOBS)  # transform.<key>[.<param>]: software techniques
INT_KNOBS = ("tp", "pp", "ep", "replicas", "max_batch", "max_prefill_tokens", "input_tokens", "output_tokens")

_GROUP_KEYS = ("model", "device", "tp", "pp", "ep", "weight_dtype", "activation_dtype", "kv_dtype",
               "memory_utilization", *TRANSFORM_KNOBS, *CHIP_KNOBS)

BASE_METRICS = (
    "devices", "ttft_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_s", "tpot_p50_s", "tpot_p90_s",
    "tpot_p99_s", "prefill_s", "e2e_s", "output_tokens_per_s", "output_tokens_per_s_per_device",
    "capacity_requests_per_s", "served_output_tokens_per_s", "goodput_tokens_per_s_per_device",
    "usd_per_hour", "usd_per_million_output_tokens", "joules_per_output_token", "power_w_per_device",
    "power_w", "weights_bytes_per_device", "kv_cache_bytes_per_device", "activation_bytes_per_device",
    "memory_headroom_bytes_per_device", "slo_met", "accuracy_delta",
    # accelerator templates only (NaN for catalog devices): the chip's own area, power and cost
    "chip_area_mm2", "chip_tdp_w", "chip_usd", "output_tokens_per_s_per_chip_usd", "output_tokens_per_s_per_chip_w",
)
MEMORY_METRICS = ("devices", "weights_bytes_per_device", "kv_cache_bytes_per_device",
                  "activation_bytes_per_device", "memory_headroom_bytes_per_device")


def resolve_knobs(config: Config, workload: dict) -> dict:
    """The configuration with every deployment knob filled in (defaults, then the workload's tokens)."""
    full = {**DEPLOYMENT_KNOBS, **config}
    if full["input_tokens"] is None:
        full["input_tokens"] = workload["input_tokens"]
    if full["output_tokens"] is None:
        full["output_tokens"] = workload["output_tokens"]
    return full


class StaticEvaluator(Evaluator):
    kind = "static"
    chunk_size = 4096

    def __init__(self, context: EvaluatorContext) -> None:
        super().__init__(context)
        opts = context.options
        self.options = GraphOptions(attention_impl=opts.get("attention", "fused"),
                                    moe_imbalance=float(opts.get("moe_imbalance", 1.0)),
                                    moe_routing=opts.get("moe_routing", DEFAULT_ROUTING))
        self.decode_nodes = int(opts.get("decode_nodes", DEFAULT_DECODE_NODES))
        self.rate = context.workload.get("rate_rps")
        self.slo = dict(context.slo)

    @classmethod
    def knobs(cls, context):
        return dict(DEPLOYMENT_KNOBS)

    @classmethod
    def metric_names(cls, context):
        names = list(BASE_METRICS)
        if context.workload.get("rate_rps") is not None:
            names.append("utilization")
        return names

    @classmethod
    def check(cls, context, origin) -> None:
        from ...errors import ConfigError

        opts = dict(context.options)
        check_option_keys(context, ("attention", "moe_imbalance", "moe_routing", "decode_nodes", "screen_slo_factor"), origin)
        if opts.get("attention", "fused") not in ("fused", "unfused"):
            raise ConfigError(origin, "evaluator.options.attention", "expected 'fused' or 'unfused'")
        nodes = opts.get("decode_nodes", DEFAULT_DECODE_NODES)
        if not isinstance(nodes, int) or nodes < 3 or nodes % 2 == 0:
            raise ConfigError(origin, "evaluator.options.decode_nodes", f"expected an odd integer >= 3, got {nodes}")

    # ----------------------------------------------------------------------------------------
    def evaluate(self, configs: list[Config]) -> Columns:
        workload = self.context.workload
        full = [resolve_knobs(c, workload) for c in configs]
        n = len(configs)
        groups: dict[tuple, list[int]] = {}
        for idx, c in enumerate(full):
            groups.setdefault(tuple(c[k] for k in _GROUP_KEYS), []).append(idx)
        status: list[str] = [OK] * n
        errors: list[str | None] = [None] * n
        metrics: dict[str, np.ndarray] = {}
        for key, idxs in groups.items():
            try:
                group_metrics, fits, needs = self._evaluate_group(dict(zip(_GROUP_KEYS, key)), [full[i] for i in idxs])
            except InfersimError as exc:
                for idx in idxs:
                    status[idx], errors[idx] = REJECTED, str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - recorded per point, the study goes on
                fail = failure(exc)
                for idx in idxs:
                    status[idx], errors[idx] = fail.status, fail.error
                continue
            rows = np.asarray(idxs)
            for name, values in group_metrics.items():
                if name not in metrics:
                    metrics[name] = np.full(n, np.nan)
                metrics[name][rows] = values
            need, usable = needs
            for j in np.flatnonzero(~fits).tolist():
                status[idxs[j]] = REJECTED
                errors[idxs[j]] = (f"does not fit in memory: needs {need[j] / 1e9:.1f} GB per device, "
                                   f"{usable / 1e9:.1f} GB usable")
            model = get_model(dict(zip(_GROUP_KEYS, key))["model"])
            for idx in idxs:  # a request longer than the model's context is not servable
                problem = model.context_problem(int(full[idx]["input_tokens"]) + int(full[idx]["output_tokens"]))
                if problem:
                    status[idx], errors[idx] = REJECTED, problem
        return Columns(status, errors, metrics)

    def _evaluate_group(self, g: dict, configs: list[dict]):
        """Metric arrays of one group, whether each point fits, and (needed bytes per point, usable bytes)."""
        from ...hardware.template.knobs import derive_design, is_template_file

        model = get_model(g["model"])
        chip = None
        knobs = tuple((k, g[k]) for k in CHIP_KNOBS if g[k] != KEEP)
        if is_template_file(str(g["device"])):
            device, chip = derive_design(str(g["device"]), knobs)  # infeasible: InfersimError, group rejected
        elif knobs:
            raise InfersimError(f"chip.* parameters need a device that is an accelerator template file, "
                                f"got '{g['device']}'")
        else:
            device = get_device(g["device"], efficiency=self.context.efficiency)
        par = Parallelism(tp=int(g["tp"]), pp=int(g["pp"]), ep=int(g["ep"]))
        par.validate(model)  # InfersimError -> every point of the group rejected with the reason
        prec = Precision(g["weight_dtype"], g["activation_dtype"], g["kv_dtype"])
        cols = np.array([[c["max_batch"], c["input_tokens"], c["output_tokens"], c["max_prefill_tokens"]]
                         for c in configs], dtype=np.int64)
        replicas = np.array([c["replicas"] for c in configs], dtype=np.float64)
        if (replicas < 1).any():
            raise InfersimError(f"replicas must be >= 1, got {int(replicas.min())}")
        uniq, inverse = np.unique(cols, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        transforms = transforms_from_config(g)
        options = dataclasses.replace(self.options, transforms=transforms) if transforms else self.options
        est = batch_estimate(model, device, par, prec, batch=uniq[:, 0], input_tokens=uniq[:, 1],
                             output_tokens=uniq[:, 2], max_prefill_tokens=uniq[:, 3], options=options,
                             memory_utilization=float(g["memory_utilization"]), decode_nodes=self.decode_nodes,
                             runtime=get_runtime(self.context.runtime))
        m = self._metrics(est, inverse, replicas, cols[:, 2].astype(np.float64), par.devices, device.usd_per_hour)
        m["accuracy_delta"] = np.full(len(configs), accuracy_delta(transforms))
        _chip_metrics(m, chip)
        fits = est.fits[inverse]
        for name in m:
            if name not in MEMORY_METRICS:
                m[name] = np.where(fits, m[name], np.nan)
        usable = est.usable_bytes
        need = usable - m["memory_headroom_bytes_per_device"]
        return m, fits, (need, usable)

    def _metrics(self, est, inv, replicas, output_tokens, devices_per_replica: int, price) -> dict[str, np.ndarray]:
        devices = replicas * devices_per_replica
        per_replica_tps = est.output_tokens_per_s[inv]
        capacity_tps = per_replica_tps * replicas
        capacity_rps = capacity_tps / output_tokens
        m: dict[str, np.ndarray] = {"devices": devices}
        for name in ("ttft_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "prefill_s", "e2e_s"):
            m[name] = getattr(est, name)[inv]
        tpot = est.tpot_s[inv]
        for name in ("tpot_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s"):
            m[name] = tpot
        m["output_tokens_per_s"] = capacity_tps
        m["output_tokens_per_s_per_device"] = capacity_tps / devices
        m["capacity_requests_per_s"] = capacity_rps
        slo_met = np.ones(inv.size, dtype=bool)
        if self.rate is not None:
            utilization = self.rate / capacity_rps
            m["utilization"] = utilization
            served = np.minimum(self.rate * output_tokens, capacity_tps)
            slo_met &= utilization <= 1.0
        else:
            served = capacity_tps
        for metric, bound in self.slo.items():
            if metric in m:
                slo_met &= m[metric] <= bound
        m["served_output_tokens_per_s"] = served
        m["slo_met"] = slo_met.astype(np.float64)
        m["goodput_tokens_per_s_per_device"] = np.where(slo_met, served / devices, 0.0)
        usd_per_hour = devices * (price if price is not None else math.nan)
        m["usd_per_hour"] = usd_per_hour
        m["usd_per_million_output_tokens"] = usd_per_hour / (served * 3600.0) * 1e6
        m["joules_per_output_token"] = est.joules_per_output_token[inv]
        power = est.power_w_per_device[inv]
        m["power_w_per_device"] = power
        m["power_w"] = power * devices
        m["weights_bytes_per_device"] = np.full(inv.size, est.weights_bytes)
        m["kv_cache_bytes_per_device"] = est.kv_cache_bytes[inv]
        m["activation_bytes_per_device"] = est.activation_bytes[inv]
        m["memory_headroom_bytes_per_device"] = est.headroom_bytes[inv]
        return m


def _chip_metrics(m: dict[str, np.ndarray], chip) -> None:
    """The chip's area, TDP and cost, and output tokens/s per device over its $ and W (NaN for catalog devices)."""
    n = m["devices"].size
    area, tdp, usd = (chip.die_area_mm2, chip.tdp_w, chip.total_usd) if chip is not None else (math.nan,) * 3
    m["chip_area_mm2"] = np.full(n, area)
    m["chip_tdp_w"] = np.full(n, tdp)
    m["chip_usd"] = np.full(n, usd)
    m["output_tokens_per_s_per_chip_usd"] = m["output_tokens_per_s_per_device"] / usd
    m["output_tokens_per_s_per_chip_w"] = m["output_tokens_per_s_per_device"] / tdp
