"""The load-aware static evaluator (``evaluator: loaded``): latencies of an iteration-level scheduler
under a Poisson load, in closed form over whole grids (:mod:`infersim.serving.loaded`).

Serving architecture is a parameter, ``mode``:

* ``aggregated``: ``replicas`` replicas of ``tp x pp`` devices running chunked prefill
  (Sarathi-Serve) with ``max_batch`` sequences and ``max_prefill_tokens`` tokens per step;
* ``disaggregated``: ``prefill_workers`` prefill replicas of ``prefill_tp x prefill_pp`` devices
  (whole prompts, ``prefill_max_tokens`` per step) and ``decode_workers`` decode replicas of
  ``tp x pp`` devices (``max_batch`` sequences); each request's KV cache moves over ``kv_link``
  (``scale_out`` or ``scale_up``, the device's own links) in
  :func:`~infersim.perf.disagg.kv_transfer_time_s` = latency + bytes / (bandwidth x links), with
  ``links = min(devices per prefill replica, devices per decode replica)`` as the pipeline simulator
  counts them;
* ``afd`` (MoE models only): prefill workers as above, decode on ``decode_workers``
  attention-FFN disaggregated instances of ``afd_attention_gpus`` attention GPUs (``tp`` per rank)
  and ``afd_ffn_gpus`` expert GPUs, ``afd_micro_batches`` micro-batches
  (:class:`~infersim.serving.pipeline.afd.AFDStepTimeModel`).

Each pool is treated on its own: its servers (replicas x ``pp`` engines, a replica's engines
stepping through shared pipeline stages, :mod:`infersim.serving.loaded`) share the arrivals
evenly, round robin as the simulator's default router does (each server's gaps are Erlang, less
variable than Poisson, :func:`~infersim.serving.loaded.md1_mean_wait_s`); a pool's capacity under the SLOs is its servers times one server's highest rate meeting
them. Disaggregated capacity is the smaller of the two pools' (the bottleneck side).

Step times include the study's serving runtime (``runtime:``; host time per step and CUDA-graph
padding of decode steps, :func:`~infersim.perf.estimate.runtime_step_times`), except AFD decode
instances (kernels only).

Metrics (per configuration):

* ``slo_capacity_requests_per_s``: the highest request rate meeting every latency SLO of the
  study (``ttft[_pXX]_s``, ``tpot[_pXX]_s``; 0 when none); ``capacity_requests_per_s``: the highest
  sustainable rate without SLOs; ``goodput_tokens_per_s_per_device`` = SLO capacity x output tokens
  / devices; ``output_tokens_per_s_per_device`` the same without SLOs;
* ``ttft_s``, ``ttft_p50/p90/p99_s``, ``tpot_s`` (= its p50/p90/p99: the stationary TPOT),
  ``tokens_per_s_per_user`` (= 1 / TPOT), ``decode_batch`` (stationary, per server),
  ``prefill_utilization``, ``kv_transfer_s``: at the study's ``rate_rps`` when it has one, else at
  the SLO capacity (at the highest sustainable rate when no rate meets the SLOs);
  ``utilization`` = rate / SLO capacity with a rate;
* ``ttft_floor_s``, ``tpot_floor_s``: the TTFT (at the study's TTFT percentile) and TPOT at the
  lowest load (how close a point that misses the SLOs comes);
* ``devices``, ``usd_per_hour``, ``usd_per_million_output_tokens`` (at the same rate), ``slo_met``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError, InfersimError
from ...hardware import get_device
from ...models import get_model
from ...perf.disagg import kv_transfer_bytes, kv_transfer_time_s
from ...perf.graph import GraphOptions
from ...perf.routing import DEFAULT_ROUTING
from ...perf.parallel import Parallelism, Precision
from ...runtime import get_runtime
from ...serving.loaded import (
    LoadCurve,
    batch_grid,
    colocated_curve,
    decode_curve,
    prefill_curve,
    server_kv_tokens,
)
from ..scoring import OK, REJECTED
from ..space import Config
from .base import Columns, Evaluator, check_option_keys, failure
from .static import DEPLOYMENT_KNOBS, resolve_knobs

MODES = ("aggregated", "disaggregated", "afd")
KV_LINKS = ("scale_out", "scale_up")
#: knobs of this evaluator besides the deployment knobs (tp/pp/ep/max_batch: the decode pool's)
LOADED_KNOBS: dict[str, object] = {
    "mode": "aggregated", "prefill_tp": 1, "prefill_pp": 1, "prefill_ep": 1, "prefill_workers": 1,
    "decode_workers": 1, "prefill_max_tokens": 8192, "kv_link": "scale_out",
    "afd_attention_gpus": 8, "afd_ffn_gpus": 8, "afd_micro_batches": 2,
    "dp_attention": False, "prefill_dp_attention": False,
}
BOOL_KNOBS = ("dp_attention", "prefill_dp_attention")
INT_KNOBS = ("prefill_tp", "prefill_pp", "prefill_ep", "prefill_workers", "decode_workers", "prefill_max_tokens",
             "afd_attention_gpus", "afd_ffn_gpus", "afd_micro_batches")
METRICS = ("devices", "slo_capacity_requests_per_s", "capacity_requests_per_s", "goodput_tokens_per_s_per_device",
           "output_tokens_per_s_per_device", "served_output_tokens_per_s", "ttft_s", "ttft_p50_s", "ttft_p90_s",
           "ttft_p99_s", "tpot_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "tokens_per_s_per_user",
           "decode_batch", "prefill_utilization", "kv_transfer_s", "ttft_floor_s", "tpot_floor_s", "usd_per_hour", "usd_per_million_output_tokens",
           "slo_met")
OPTIONS = ("attention", "moe_imbalance", "moe_routing", "screen_slo_factor")


def slo_quantile(metric: str) -> tuple[str, float | None] | None:
    """``("ttft", 0.9)`` for ``ttft_p90_s``, ``("tpot", None)`` for ``tpot_s`` (the mean); None otherwise."""
    for lat in ("ttft", "tpot"):
        if metric == f"{lat}_s":
            return lat, None
        if metric.startswith(f"{lat}_p") and metric.endswith("_s"):
            try:
                q = float(metric[len(lat) + 2:-2]) / 100.0
            except ValueError:
                return None
            return (lat, q) if 0 < q < 1 else None
    return None


@dataclass(frozen=True)
class _Pool:
    """One pool's servers: role (colocated | prefill | decode | afd), layout and batch caps."""

    role: str
    model: str
    device: str
    tp: int
    pp: int
    ep: int
    dtypes: tuple[str, str, str]
    input_tokens: int
    output_tokens: int
    token_budget: int
    max_batch: int
    memory_utilization: float
    afd: tuple[int, int, int] = (0, 0, 0)  # attention gpus, ffn gpus, micro-batches
    dp_attention: bool = False  # MoE: data-parallel attention over the tp devices, experts over ep = tp

    @property
    def devices_per_replica(self) -> int:
        return self.afd[0] + self.afd[1] if self.role == "afd" else self.tp * self.pp

    @property
    def servers_per_replica(self) -> int:
        return 1 if self.role == "afd" else self.pp


class LoadedEvaluator(Evaluator):
    kind = "loaded"
    chunk_size = 1 << 16

    def __init__(self, context) -> None:
        super().__init__(context)
        opts = context.options
        self.options = GraphOptions(attention_impl=opts.get("attention", "fused"),
                                    moe_imbalance=float(opts.get("moe_imbalance", 1.0)),
                                    moe_routing=opts.get("moe_routing", DEFAULT_ROUTING))
        self.rate = context.workload.get("rate_rps")
        self.slo = dict(context.slo)
        self._curves: dict = {}  # pool -> LoadCurve or the reason it cannot run; also summaries, devices

    @classmethod
    def knobs(cls, context):
        return {**DEPLOYMENT_KNOBS, **LOADED_KNOBS}

    @classmethod
    def metric_names(cls, context):
        names = list(METRICS)
        if context.workload.get("rate_rps") is not None:
            names.append("utilization")
        return names

    @classmethod
    def check(cls, context, origin) -> None:
        check_option_keys(context, OPTIONS, origin)
        for metric in context.slo:
            if metric.startswith(("ttft", "tpot")) and slo_quantile(metric) is None:
                raise ConfigError(origin, f"slo.{metric}", "expected ttft_s, tpot_s or a percentile such as ttft_p90_s")

    @classmethod
    def check_params(cls, context, params, origin) -> None:
        from ..space import Categorical

        by_name = {p.name: p for p in params}
        for name, allowed in (("mode", MODES), ("kv_link", KV_LINKS)):
            p = by_name.get(name)
            if p is None:
                continue
            values = p.grid() if isinstance(p, Categorical) else []
            if not isinstance(p, Categorical):
                raise ConfigError(origin, f"space.{name}", "must be a value or a list of names")
            for v in values:
                if v not in allowed:
                    raise ConfigError(origin, f"space.{name}", f"unknown {name} '{v}'; expected one of "
                                      + ", ".join(allowed))
        for name in BOOL_KNOBS:
            p = by_name.get(name)
            if p is not None and any(not isinstance(v, bool) for v in p.grid()):
                raise ConfigError(origin, f"space.{name}", "expected true or false")
        for name in INT_KNOBS:
            p = by_name.get(name)
            if p is not None:
                for v in p.grid():
                    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                        raise ConfigError(origin, f"space.{name}", f"expected integers >= 1, got {v!r}")
        mode = by_name.get("mode")
        model = by_name.get("model")
        if mode is not None and model is not None and "afd" in mode.grid():
            dense = [m for m in model.grid() if not get_model(str(m)).is_moe]
            if dense and len(dense) == len(model.grid()):
                raise ConfigError(origin, "space.mode", f"'afd' (attention-FFN disaggregation) needs a MoE model; "
                                  f"{', '.join(map(str, dense))} is dense")

    # ----------------------------------------------------------------------------------------
    def _pools(self, c: dict) -> tuple[_Pool, _Pool | None]:
        dtypes = (c["weight_dtype"], c["activation_dtype"], c["kv_dtype"])
        common = dict(model=c["model"], device=c["device"], dtypes=dtypes, input_tokens=int(c["input_tokens"]),
                      output_tokens=int(c["output_tokens"]), memory_utilization=float(c["memory_utilization"]))
        mode = c["mode"]
        if mode not in MODES:
            raise InfersimError(f"unknown mode '{mode}'; expected one of {', '.join(MODES)}")
        if mode == "aggregated":
            return _Pool("colocated", tp=c["tp"], pp=c["pp"], ep=c["ep"], token_budget=c["max_prefill_tokens"],
                         max_batch=c["max_batch"], dp_attention=bool(c["dp_attention"]), **common), None
        prefill = _Pool("prefill", tp=c["prefill_tp"], pp=c["prefill_pp"], ep=c["prefill_ep"],
                        token_budget=c["prefill_max_tokens"], max_batch=c["max_batch"],
                        dp_attention=bool(c["prefill_dp_attention"]), **common)
        if mode == "afd":
            decode = _Pool("afd", tp=c["tp"], pp=1, ep=1, token_budget=c["max_prefill_tokens"],
                           max_batch=c["max_batch"],
                           afd=(c["afd_attention_gpus"], c["afd_ffn_gpus"], c["afd_micro_batches"]), **common)
        else:
            decode = _Pool("decode", tp=c["tp"], pp=c["pp"], ep=c["ep"], token_budget=c["max_prefill_tokens"],
                           max_batch=c["max_batch"], dp_attention=bool(c["dp_attention"]), **common)
        return prefill, decode

    def _curve(self, pool: _Pool) -> LoadCurve:
        """The pool's operating curve (one server), cached; raises InfersimError when it cannot run."""
        if pool not in self._curves:
            try:
                self._curves[pool] = _build_curves([pool], self.options, self.context.runtime)[0]
            except InfersimError as exc:
                self._curves[pool] = str(exc)
        got = self._curves[pool]
        if isinstance(got, str):
            raise InfersimError(got)
        return got

    def _prime(self, pools: list[_Pool]) -> None:
        """Build the curves of many pools at once (one graph per layout)."""
        todo = list(dict.fromkeys(p for p in pools if p not in self._curves))
        groups: dict[tuple, list[_Pool]] = {}
        for p in todo:
            groups.setdefault((p.role, p.model, p.device, p.tp, p.pp, p.ep, p.dtypes, p.afd, p.dp_attention),
                              []).append(p)
        for members in groups.values():
            try:
                for p, curve in zip(members, _build_curves(members, self.options, self.context.runtime)):
                    self._curves[p] = curve
            except InfersimError as exc:
                for p in members:
                    self._curves[p] = str(exc)

    def evaluate(self, configs: list[Config]) -> Columns:
        full = [{**LOADED_KNOBS, **resolve_knobs(c, self.context.workload)} for c in configs]
        n = len(full)
        status: list[str] = [OK] * n
        errors: list[str | None] = [None] * n
        metrics = {name: np.full(n, np.nan) for name in self.metric_names(self.context)}
        pools: list[tuple[_Pool, _Pool | None] | None] = []
        for idx, c in enumerate(full):
            try:
                pools.append(self._pools(c))
            except InfersimError as exc:
                pools.append(None)
                status[idx], errors[idx] = REJECTED, str(exc)
        self._prime([p for pair in pools if pair for p in pair if p is not None])
        wanted = []
        for c, pair in zip(full, pools):
            if pair is None:
                continue
            first, second = pair
            if second is None:
                wanted.append((first, c["replicas"] * first.servers_per_replica))
            else:
                wanted.append((first, c["prefill_workers"] * first.servers_per_replica))
                wanted.append((second, c["decode_workers"] * second.servers_per_replica))
        self._prime_summaries(wanted)
        for idx, (c, pair) in enumerate(zip(full, pools)):
            if pair is None:
                continue
            try:
                values = self._point(c, *pair)
            except InfersimError as exc:
                status[idx], errors[idx] = REJECTED, str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - recorded per point
                fail = failure(exc)
                status[idx], errors[idx] = fail.status, fail.error
                continue
            for name, v in values.items():
                if name in metrics:
                    metrics[name][idx] = v
        return Columns(status, errors, metrics)

    # ----------------------------------------------------------------------------------------
    def _bounds(self, lat: str) -> list[tuple[float | None, float]]:
        out = []
        for metric, bound in self.slo.items():
            parsed = slo_quantile(metric)
            if parsed is not None and parsed[0] == lat:
                out.append((parsed[1], float(bound)))
        return out

    def _summary(self, pool: _Pool, servers: int) -> "_Summary":
        """The pool's curve reduced for ``servers`` servers: colocated servers are ``pp`` engines per
        replica behind a round-robin router (:func:`arrival_scv`); a prefill pool's servers share a
        least-outstanding router (:func:`~infersim.serving.queueing.pooled_prefill_ttft_s`)."""
        key = ("summary", pool, servers)
        if key not in self._curves:
            self._curve(pool)  # raises the reason a pool cannot run
            self._prime_summaries([(pool, servers)])
        return self._curves[key]

    def _prime_summaries(self, wanted: list[tuple[_Pool, int]]) -> None:
        """Summaries of many (pool, servers) at once: their TTFT quantiles in one stacked array per
        column count (the mixture quantile is a bisection: one pass for all rows)."""
        todo = [(p, n) for p, n in dict.fromkeys(wanted) if ("summary", p, n) not in self._curves
                and not isinstance(self._curves.get(p), str)]
        by_cols: dict[int, list] = {}
        for p, n in todo:
            curve = self._curve(p)
            by_cols.setdefault(curve.rate_rps.shape[1], []).append((p, n, curve))
        bounds = self._bounds("ttft")
        quantiles = list(dict.fromkeys([None, 0.5, 0.9, 0.99, *(q for q, _ in bounds)]))
        for rows in by_cols.values():
            stacked = LoadCurve(*(np.concatenate(x) for x in zip(*(_fields(c) for _, _, c in rows))))
            scv = np.array([arrival_scv(n // p.servers_per_replica, p.servers_per_replica) for p, n, _ in rows])
            servers = np.array([n for _, n, _ in rows], dtype=np.float64)[:, None]  # a prefill pool's size
            ttft = stacked.ttft(quantiles, scv[:, None], servers)
            for j, (p, n, curve) in enumerate(rows):
                self._curves[("summary", p, n)] = _Summary.of(curve, {q: v[j] for q, v in ttft.items()}, bounds)

    def _tpot_capacity(self, pool: _Pool, servers: int, extra_s: float) -> float:
        """One server's highest rate whose TPOT (+ ``extra_s`` per token) meets the TPOT SLOs (and, for a
        colocated server, whose TTFT meets the TTFT SLOs)."""
        key = ("tpot", pool, servers, extra_s)
        if key not in self._curves:
            s = self._summary(pool, servers)
            ok = s.ttft_ok if pool.role == "colocated" else s.valid
            for _, bound in self._bounds("tpot"):
                ok = ok & (s.tpot + extra_s <= bound)
            self._curves[key] = float(s.rate[ok].max()) if ok.any() else 0.0
        return self._curves[key]

    def _device(self, name: str):
        key = ("device", name)
        if key not in self._curves:
            self._curves[key] = get_device(name)
        return self._curves[key]

    def _point(self, c: dict, first: _Pool, second: _Pool | None) -> dict[str, float]:
        o = int(c["output_tokens"])
        per_token = 1.0 / max(o - 1, 1)
        if second is None:
            servers = c["replicas"] * first.servers_per_replica
            s = self._summary(first, servers)
            devices = c["replicas"] * first.devices_per_replica
            cap = s.max_rate * servers
            slo_cap = self._tpot_capacity(first, servers, 0.0) * servers
            xfer = 0.0
            pools = [(s, servers, "both")]
        else:
            p_servers = c["prefill_workers"] * first.servers_per_replica
            d_servers = c["decode_workers"] * second.servers_per_replica
            pre, dec = self._summary(first, p_servers), self._summary(second, d_servers)
            devices = c["prefill_workers"] * first.devices_per_replica + c["decode_workers"] * second.devices_per_replica
            xfer = self._transfer_s(c, first, second)
            cap = min(pre.max_rate * p_servers, dec.max_rate * d_servers)
            slo_cap = min(pre.ttft_max_rate * p_servers,
                          self._tpot_capacity(second, d_servers, xfer * per_token) * d_servers)
            pools = [(pre, p_servers, "ttft"), (dec, d_servers, "tpot")]
        rate = self.rate if self.rate is not None else (slo_cap if slo_cap > 0 else cap)
        m: dict[str, float] = {"devices": float(devices), "capacity_requests_per_s": cap,
                               "slo_capacity_requests_per_s": slo_cap,
                               "goodput_tokens_per_s_per_device": slo_cap * o / devices,
                               "output_tokens_per_s_per_device": cap * o / devices, "kv_transfer_s": xfer}
        for s, servers, which in pools:
            r = rate / servers
            if which in ("both", "ttft"):
                m["ttft_floor_s"] = s.ttft_floor
                for name, values in s.ttft.items():
                    m[name] = s.at(r, values)
                m["prefill_utilization"] = s.at(r, s.rho)
            if which in ("both", "tpot"):
                m["tpot_floor_s"] = s.tpot_floor + xfer * per_token
                tpot = s.at(r, s.tpot) + xfer * per_token
                for name in ("tpot_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s"):
                    m[name] = tpot
                m["tokens_per_s_per_user"] = 1.0 / tpot
                m["decode_batch"] = r * (o - 1) * (tpot - xfer * per_token)  # Little's law
        sustained = rate <= cap * (1 + 1e-9)
        served = min(rate, cap)
        m["served_output_tokens_per_s"] = served * o
        device = self._device(c["device"])
        price = device.usd_per_hour if device.usd_per_hour is not None else math.nan
        m["usd_per_hour"] = price * devices
        m["usd_per_million_output_tokens"] = price * devices / (served * o * 3600.0) * 1e6 if served > 0 else math.nan
        met = sustained and all(np.isfinite(m.get(k, np.nan)) and m[k] <= b for k, b in self.slo.items() if k in m)
        if self.rate is not None:
            m["utilization"] = self.rate / slo_cap if slo_cap > 0 else math.inf
            met = met and self.rate <= slo_cap * (1 + 1e-9)
        else:
            met = slo_cap > 0
        m["slo_met"] = float(met)
        return m

    def _transfer_s(self, c: dict, prefill: _Pool, decode: _Pool) -> float:
        key = ("xfer", c["model"], c["device"], c["kv_link"], c["kv_dtype"], int(c["input_tokens"]),
               prefill.devices_per_replica, decode.devices_per_replica)
        if key in self._curves:
            return self._curves[key]
        model = get_model(c["model"])
        device = self._device(c["device"])
        link = getattr(device, c["kv_link"], None) if c["kv_link"] in KV_LINKS else None
        if link is None:
            raise InfersimError(f"unknown kv_link '{c['kv_link']}'; expected one of {', '.join(KV_LINKS)}")
        links = min(prefill.devices_per_replica, decode.devices_per_replica)
        n_bytes = kv_transfer_bytes(model, c["kv_dtype"], int(c["input_tokens"]))
        self._curves[key] = float(kv_transfer_time_s(n_bytes, link.bandwidth_bytes_per_s * links, link.latency_s)[0])
        return self._curves[key]


@dataclass
class _Summary:
    """One server's curve reduced to what a configuration reads: the increasing envelope of its
    valid columns (rates and the values there), its capacities and its lowest-load latencies."""

    rate: np.ndarray
    ttft: dict[str, np.ndarray]
    tpot: np.ndarray
    batch: np.ndarray
    rho: np.ndarray
    valid: np.ndarray
    ttft_ok: np.ndarray
    max_rate: float
    ttft_max_rate: float
    ttft_floor: float
    tpot_floor: float

    @classmethod
    def of(cls, curve: LoadCurve, ttft: dict, ttft_bounds: list) -> "_Summary":
        """From a one-point curve and its TTFT rows ``ttft[q]`` (``q`` None: the mean; 0.5, 0.9, 0.99 and
        every SLO quantile)."""
        row = np.where(curve.valid[0], curve.rate_rps[0], -np.inf)
        run = np.maximum.accumulate(row)
        keep = np.isfinite(row) & (row >= run)
        keep[1:] &= row[1:] > run[:-1]
        named = {"ttft_s": ttft[None], **{f"ttft_p{q}_s": ttft[q / 100.0] for q in (50, 90, 99)}}
        ok = curve.valid[0].copy()
        for q, bound in ttft_bounds:
            ok &= ttft[q] <= bound
        first = int(np.argmax(curve.valid[0])) if curve.valid[0].any() else None
        q_floor = ttft_bounds[0][0] if ttft_bounds else 0.5
        rate = curve.rate_rps[0]
        return cls(rate=rate[keep], ttft={k: v[keep] for k, v in named.items()}, tpot=curve.tpot_s[0][keep],
                   batch=curve.batch[0][keep], rho=curve.rho[0][keep], valid=np.ones(int(keep.sum()), dtype=bool),
                   ttft_ok=ok[keep],
                   max_rate=float(rate[curve.valid[0]].max()) if curve.valid[0].any() else 0.0,
                   ttft_max_rate=float(rate[ok].max()) if ok.any() else 0.0,
                   ttft_floor=float(ttft[q_floor][first]) if first is not None else math.nan,
                   tpot_floor=float(curve.tpot_s[0, first]) if first is not None else math.nan)

    def at(self, rate: float, values: np.ndarray) -> float:
        """``values`` interpolated at ``rate`` (NaN above the last column)."""
        if not self.rate.size or rate > self.rate[-1] * (1 + 1e-9):
            return math.nan
        return float(np.interp(rate, self.rate, values))


def arrival_scv(replicas: int, engines_per_replica: int) -> float:
    """Squared coefficient of variation (SCV) of the arrival gaps the static model gives one engine of
    an aggregated deployment, as the simulator routes requests. Round robin over replicas turns the
    Poisson stream into Erlang-``replicas`` gaps (SCV ``1 / replicas``). Within a replica the ``pp``
    engines take each request by least outstanding requests (vLLM's virtual engines): with counts
    balanced that alternates like round robin over all ``replicas x pp`` engines (SCV ``1 / n``); with
    the counts perturbed by decode completions it is a random 1-in-``pp`` split (SCV
    ``1 / n + 1 - 1 / pp``). The gaps measured in the simulator are close to the random split (SCV
    0.74-1.03 for PP2 and PP4), but the router also steers away from engines with a queued prompt,
    which gaps alone do not express: the model takes the midpoint ``1 / n + (1 - 1 / pp) / 2``, an
    empirical choice checked against the simulator for PP2 and PP4 at 50-80 % load
    (``benchmarks/bench_plan.py --agreement``)."""
    p = max(int(engines_per_replica), 1)
    return 1.0 / (max(int(replicas), 1) * p) + 0.5 * (1.0 - 1.0 / p)


def _build_curves(pools: list[_Pool], options: GraphOptions, runtime_name: str | None = None) -> list:
    """The operating curves of pools that share role, model, device, layout and dtypes (a string in
    place of a curve: why that pool cannot run)."""
    p0 = pools[0]
    model = get_model(p0.model)
    device = get_device(p0.device)  # (cached by the catalog)
    prec = Precision(*p0.dtypes)
    arr = {k: np.array([getattr(p, k) for p in pools], dtype=np.float64)
           for k in ("input_tokens", "output_tokens", "token_budget", "max_batch", "memory_utilization")}
    if p0.role == "afd":  # pools of one group share the layout: one step model for all
        return _afd_curves(pools, model, device, prec, options)  # (kernels only: no runtime terms)
    runtime = get_runtime(runtime_name).for_device(device.memory_bytes)
    par = Parallelism(tp=p0.tp, pp=p0.pp, ep=p0.ep, dp_attention=p0.dp_attention)
    par.validate(model)
    budget = arr["token_budget"] if p0.role != "decode" else np.minimum(arr["token_budget"], arr["max_batch"])
    kv = np.array([float(server_kv_tokens(model, device, par, prec, token_budget=b, max_batch=s,
                                          memory_utilization=u))
                   for b, s, u in zip(budget, arr["max_batch"], arr["memory_utilization"])])
    need = arr["input_tokens"] + arr["output_tokens"]
    if (kv < need).all():
        raise InfersimError(f"{model.name} does not fit on {device.name} with tp={par.tp} pp={par.pp} "
                            f"({'/'.join(p0.dtypes)}): no room for the KV cache of one request")
    if p0.role == "colocated":
        curves = colocated_curve(model, device, par, prec, options, input_tokens=arr["input_tokens"],
                                 output_tokens=arr["output_tokens"], token_budget=arr["token_budget"],
                                 max_batch=arr["max_batch"], kv_tokens=kv, runtime=runtime)
    elif p0.role == "decode":
        curves = decode_curve(model, device, par, prec, options, input_tokens=arr["input_tokens"],
                              output_tokens=arr["output_tokens"], max_batch=arr["max_batch"], kv_tokens=kv,
                              runtime=runtime)
    else:
        curves = prefill_curve(model, device, par, prec, options, input_tokens=arr["input_tokens"],
                               token_budget=arr["token_budget"], runtime=runtime)
        fits = (kv >= arr["input_tokens"])[:, None]
        curves = LoadCurve(*(x & fits if x.dtype == bool else np.where(fits, x, np.nan) for x in _fields(curves)))
    return [LoadCurve(*(x[j:j + 1] for x in _fields(curves))) for j in range(len(pools))]


def _fields(curve: LoadCurve) -> tuple:
    zeros = np.zeros_like(curve.service_s)
    return (curve.rate_rps, curve.batch, curve.tpot_s, curve.service_s, curve.rho, curve.residual_s, curve.valid,
            zeros if curve.shared_extra_s is None else curve.shared_extra_s,
            zeros if curve.before_last_s is None else curve.before_last_s,
            np.full_like(zeros, np.nan) if curve.queue_service_s is None else curve.queue_service_s)


def _afd_curves(pools: list[_Pool], model, device, prec: Precision, options: GraphOptions) -> list:
    """Decode curves of AFD instances of one layout (the step model is per call; one per stationary batch),
    or the reason a pool's memory does not hold it."""
    from ...serving.pipeline.afd import AFDLayout, AFDStepTimeModel, afd_memory, check_memory

    if not model.is_moe:
        raise InfersimError(f"mode 'afd' (attention-FFN disaggregation) needs a MoE model; {model.name} is dense")
    attn_gpus, ffn_gpus, micro = pools[0].afd
    layout = AFDLayout(attn_gpus, pools[0].tp, ffn_gpus, micro)
    link = device.scale_out
    stm = AFDStepTimeModel(model, device, device, layout, prec, link.bandwidth_bytes_per_s, link.latency_s, options)
    times: dict[tuple[int, float], float] = {}
    out = []
    for pool in pools:
        mem = afd_memory(model, device, device, layout, prec, pool.max_batch, pool.max_batch, pool.memory_utilization)
        try:
            check_memory(mem, layout, model)
        except InfersimError as exc:  # this batch cap's activations do not fit; smaller caps may
            out.append(str(exc))
            continue
        kv_tokens = mem.attention_kv_capacity / stm.kv_bytes_per_token() * layout.ranks
        i, o = pool.input_tokens, pool.output_tokens
        ctx = i + o / 2.0
        b_max = min(pool.max_batch, kv_tokens / ctx)
        b = batch_grid(np.array([b_max]))[0]
        t_d = np.empty(b.size)
        for j, x in enumerate(b):
            n = max(int(round(x)), 1)
            if (n, ctx) not in times:
                times[(n, ctx)] = stm.step_time_s(0, 0, n, {w: (0.0, 0.0, 0.0, n * ctx) for w in stm.windows})
            t_d[j] = times[(n, ctx)]
        rate = b / ((o - 1.0) * t_d)
        zeros = np.zeros(b.size)
        valid = np.full(b.size, b_max >= 1.0)
        out.append(LoadCurve(rate[None], b[None], t_d[None], zeros[None], zeros[None], zeros[None], valid[None]))
    return out
