"""Fast step time for the serving simulator: exact, cached, a few microseconds per call.

A simulator asks for the time of millions of steps, each a different mix of
prefill chunks and decodes. Building and costing the operator graph per step
(:func:`~infersim.perf.estimate.step_costs`) takes ~1 ms; this model gives the
same answer in microseconds by splitting the operators by what they depend on:

* **token rows** (norms, projections, MLP/MoE, all-reduces, embedding): a function
  of the step's total token count ``T`` only. Costed once, vectorized, for every
  ``T`` up to a bound (grown on demand) and looked up.
* **logit rows** (LM head, logits all-gather): a function of the number of
  sequences that produce logits. Also tabulated.
* **attention rows** (attention kernels, and MLA's prefill-only and decode-only
  projections): their FLOPs and bytes are *linear* in six features of the batch
  (prefill tokens, causal pairs, rectangular pairs, prefill KV tokens, decode
  sequences, decode pairs, per window). The coefficients are read off the graph
  by building it on the unit basis, then each step evaluates the roofline of
  those few rows in plain Python floats. The per-thread-block attention terms
  (:func:`~infersim.perf.roofline.block_terms`: query tiles per sequence, decode blocks,
  softmax, parallelism) use the same coefficients for sequences, query tokens and scores,
  plus the step's prefill sequence count.

``StepTimeModel.step_time_s`` equals the full graph's step time to floating
point (tests check it on random batches).
"""

from __future__ import annotations

import math

import numpy as np

from ..dtypes import DTYPE_BYTES
from ..hardware.device import Device
from ..models.config import ModelConfig
from .array_mapping import attention_unfused_bytes_scalar, gemm_reread_bytes_scalar
from .efficiency import tiled_gemm_utilization_scalar
from .graph import GraphOptions, build_step_graph, options_for_device
from .operators import OpKind
from .parallel import Parallelism, Precision
from .roofline import attention_head_dim, cost_ops, decode_units
from .shape import AttentionLoad, StepShape, causal_pairs, window_cap
from .transforms import prepare as prepare_transforms

_ATTENTION_PREFIXES = ("attention.", "mla.kv_b_proj", "mla.q_absorb", "mla.v_absorb")
_LOGIT_ROWS = ("lm_head", "allgather.logits")
_FEATURES = ("prefill_tokens", "prefill_pairs", "prefill_rect_pairs", "prefill_kv_read_tokens",
             "decode_seqs", "decode_pairs")


def row_class(name: str) -> str:
    """How a step-graph row scales: ``attention`` (linear in the step's attention features, incl.
    MLA's prefill-only and decode-only projections), ``logits`` or ``tokens`` (tabulated by count)."""
    if name.startswith(_ATTENTION_PREFIXES):
        return "attention"
    if name in _LOGIT_ROWS:
        return "logits"
    return "tokens"


class StepTimeModel:
    """Step time of one replica for any batch: ``step_time_s(...)`` in a few microseconds."""

    def __init__(self, model: ModelConfig, device: Device, par: Parallelism = Parallelism(),
                 prec: Precision = Precision(), options: GraphOptions = GraphOptions(),
                 initial_max_tokens: int = 8192) -> None:
        par.validate(model)
        if options.transforms:
            model, prec = prepare_transforms(model, prec, options.transforms)
        options = options_for_device(options, device)
        self.model, self.device, self.par, self.prec, self.options = model, device, par, prec, options
        self.windows: list[int | None] = sorted({g.window for g in model.layer_groups()},
                                                key=lambda w: (w is None, w or 0))
        probe = build_step_graph(model, par, prec, StepShape.uniform(model, decode_seqs=1, decode_context=1),
                                 options)
        self._classes = np.array([row_class(n) for n in probe.names])
        self._token_table = np.zeros((3, 0))  # rows: time_s, flops, bytes; column = token count
        self._logit_table = np.zeros((3, 0))
        self._grow_tokens(initial_max_tokens)
        self._grow_logits(1024)
        self._build_attention_rows()

    # ----- tabulated rows -------------------------------------------------------------------
    def _table(self, n: int, which: str) -> np.ndarray:
        x = np.arange(n, dtype=np.float64)
        if which == "tokens":
            shape = StepShape.uniform(self.model, prefill_seqs=np.zeros(n), decode_seqs=x, decode_context=0)
            # logits and attention rows are excluded below, so decode-only shapes isolate token rows
        else:
            shape = StepShape.uniform(self.model, decode_seqs=x, decode_context=0)
        table = build_step_graph(self.model, self.par, self.prec, shape, self.options)
        costs = cost_ops(table, self.device)
        mask = self._classes == which
        count = table.count[mask][:, None]
        return np.stack([costs.total_time_s[mask].sum(axis=0), (table.flops[mask] * count).sum(axis=0),
                         (table.total_bytes[mask] * count).sum(axis=0)])

    def _grow_tokens(self, n: int) -> None:
        size = max(n + 1, 2 * self._token_table.shape[-1])
        self._token_table = self._table(size, "tokens")

    def _grow_logits(self, n: int) -> None:
        size = max(n + 1, 2 * self._logit_table.shape[-1])
        self._logit_table = self._table(size, "logits")

    # ----- attention rows: linear coefficients + scalar roofline ----------------------------
    def _build_attention_rows(self) -> None:
        n_basis = len(self.windows) * len(_FEATURES)
        zero = np.zeros(n_basis)
        attention = {}
        col = 0
        basis_cols = {}
        for w in self.windows:
            fields = {f: zero.copy() for f in _FEATURES}
            for f in _FEATURES:
                fields[f][col] = 1.0
                basis_cols[(w, f)] = col
                col += 1
            attention[w] = fields
        # prefill_tokens / decode_seqs are shared across windows: take the first window's basis columns
        first = self.windows[0]
        prefill_tokens = attention[first]["prefill_tokens"]
        decode_seqs = attention[first]["decode_seqs"]
        loads = {w: AttentionLoad(prefill_pairs=f["prefill_pairs"], prefill_rect_pairs=f["prefill_rect_pairs"],
                                  prefill_kv_read_tokens=f["prefill_kv_read_tokens"], decode_pairs=f["decode_pairs"])
                 for w, f in attention.items()}
        shape = StepShape(prefill_tokens=prefill_tokens, prefill_seqs=np.zeros(n_basis), decode_seqs=decode_seqs,
                          attention=loads)
        table = build_step_graph(self.model, self.par, self.prec, shape, self.options)
        # the coefficient of prefill_seqs (not a feature: only the per-thread-block terms use it)
        seq_shape = StepShape(prefill_tokens=np.zeros(1), prefill_seqs=np.ones(1), decode_seqs=np.zeros(1),
                              attention={w: AttentionLoad(*(np.zeros(1),) * 4) for w in self.windows})
        seq_table = build_step_graph(self.model, self.par, self.prec, seq_shape, self.options)
        rows = []
        dev = self.device
        for i in np.flatnonzero(self._classes == "attention"):
            # MLA rows run their own kernels: the device's mla_overrides apply (as in roofline.cost_ops)
            eff = dev.efficiency.for_mla() if table.mla[i] else dev.efficiency
            kind = OpKind(int(table.kind[i]))
            peak = dev.peak_flops("fp32") if kind == OpKind.ELEMENTWISE else dev.peak_flops(table.dtype[i])
            # coefficients per (window, feature); shared features come from the first window's columns
            def coeffs(arr):
                out = []
                for w in self.windows:
                    for f in _FEATURES:
                        if f in ("prefill_tokens", "decode_seqs") and w != first:
                            out.append(0.0)
                        else:
                            out.append(float(arr[i, basis_cols[(w, f)]]))
                return out
            # weights are read once whenever the kernel runs: a constant, not a linear term
            is_attn = kind == OpKind.ATTENTION
            # fused-attention terms and per-launch cost: as roofline.cost_ops / op_overheads_s
            attn_mem, attn_query, attn_over = eff.attention_terms(table.names[i].startswith("attention.decode"),
                                                                 table.dtype[i])
            if kind == OpKind.GEMM:
                per_launch_us = eff.gemm_overhead_us(table.dtype[i])
                if eff.moe.overhead_us is not None and table.names[i].startswith("moe.experts"):
                    per_launch_us = eff.moe.overhead_us
            elif is_attn and attn_over is not None:
                per_launch_us = attn_over
            else:
                per_launch_us = eff.core.kernel_overhead_us
            rows.append(dict(
                flops=coeffs(table.flops), bytes=coeffs(table.act_bytes + table.kv_bytes),
                act=coeffs(table.act_bytes),
                weight_bytes=float(table.weight_bytes[i].max()), m=coeffs(table.gemm_m),
                n=float(table.gemm_n[i].max()), k=float(table.gemm_k[i].max()),
                is_gemm=kind == OpKind.GEMM, peak=peak,
                cmax=(eff.core.compute_max_fraction if kind == OpKind.ELEMENTWISE
                      else eff.gemm_fraction(table.dtype[i], grouped=table.names[i].startswith("moe.experts"))
                      if kind == OpKind.GEMM
                      else eff.attention_row_fraction(table.dtype[i], float(attention_head_dim(table, i).max()),
                                                      decode=table.names[i].startswith("attention.decode"),
                                                      mla=bool(table.mla[i])) if is_attn
                      else eff.compute_fraction(table.dtype[i])),
                chalf=(eff.attention.half_flops if is_attn and eff.attention.half_flops is not None
                       else eff.core.compute_half_flops),
                mmax=attn_mem if is_attn and attn_mem is not None else eff.core.memory_max_fraction,
                query_bw=dev.memory_bandwidth_bytes_per_s * attn_query if is_attn and attn_query is not None else 0.0,
                tiles=[(float(a), float(b)) for a, b in (eff.tiles_for(table.dtype[i]) if eff.gemm.tiles else [])],
                k_half=eff.gemm.k_half,
                gemv_max_m=eff.gemm.gemv_max_m, gemm_mmax=eff.gemm.memory_max_fraction,
                ramp=kind != OpKind.ELEMENTWISE,
                count=float(table.count[i]), kernels=float(table.kernels[i]),
                overhead_s=float(table.kernels[i]) * per_launch_us * 1e-6,
            ))
            if kind == OpKind.GEMM and eff.gemm.tiles and eff.gemm.split_k > 1:
                rows[-1]["split_k"] = eff.gemm.split_k  # only then: the plain rows keep their keys
            if kind == OpKind.GEMM and eff.gemm.tiles and eff.gemm.tile_intensity_half > 0:
                rows[-1]["tile_half"] = eff.gemm.tile_intensity_half  # likewise
            if dev.spec.array is not None and kind in (OpKind.GEMM, OpKind.ATTENTION):
                # template devices: re-reads and unfused attention (array_mapping), per step
                rows[-1]["array"] = dict(scores=coeffs(table.scores), query_tokens=coeffs(table.query_tokens),
                                         heads=float(table.heads[i].max()), bpe=DTYPE_BYTES[table.dtype[i]],
                                         experts=float(table.experts[i].max()))
            if is_attn and eff.block_terms and (np.any(table.seqs[i] != 0) or seq_table.seqs[i, 0] != 0):
                # per-thread-block terms (roofline.block_terms); only rows that have them carry the key
                rows[-1]["blocks"] = self._block_row(table, seq_table, i, eff, coeffs)
        self._attention_rows = rows
        eff = dev.efficiency
        self._eff = (eff.core.compute_half_flops, eff.core.memory_max_fraction,
                     eff.core.memory_half_bytes, eff.core.kernel_overhead_us * 1e-6, eff.gemm.tile_m, eff.gemm.tile_n,
                     max(dev.compute_units, 1), dev.memory_bandwidth_bytes_per_s)

    def _block_row(self, table, seq_table, i: int, eff, coeffs) -> dict:
        """Coefficients and constants of one attention row's per-thread-block terms."""
        dev = self.device
        decode = table.names[i].startswith("attention.decode")
        heads, kv_heads = float(table.heads[i].max()), float(table.kv_heads[i].max())
        per_unit, per_head = decode_units(heads, kv_heads, bool(table.mla[i]), eff)
        per_head = bool(per_head)
        kernel = eff.decode_kernel(table.dtype[i], per_head)
        cta_us = kernel.cta_us if decode else eff.attention.cta_us
        return dict(
            decode=decode, seqs=coeffs(table.seqs), seqs_prefill=float(seq_table.seqs[i, 0]),
            query_tokens=coeffs(table.query_tokens), scores=coeffs(table.scores), kv=coeffs(table.kv_bytes),
            softmax_rate=(eff.attention.softmax_fraction * dev.peak_flops("fp32")
                          if eff.attention.softmax_fraction is not None else 0.0),
            heads=heads, tile=float(eff.attention.query_tile or 128), per_unit=float(per_unit),
            kv_reread=(heads / kv_heads - 1.0) if (decode and per_head and kv_heads > 0) else 0.0,
            cta_s=(cta_us or 0.0) * 1e-6 / float(max(dev.compute_units, 1)),
            launch_s=kernel.launch_us * 1e-6 if decode else 0.0,
            reread_ratio=kernel.reread_ratio if decode else None,
            half=kernel.half if decode else eff.attention.parallel_half, sharpness=kernel.sharpness if decode else 1.0,
        )

    @staticmethod
    def _scalar_blocks(b: dict, features: list[float], prefill_seqs: float) -> tuple[float, float, float, float]:
        """(block seconds, softmax seconds, extra KV bytes, parallelism ramp) of one row, as
        :func:`~infersim.perf.roofline.block_terms`."""
        seqs = sum(c * x for c, x in zip(b["seqs"], features)) + b["seqs_prefill"] * prefill_seqs
        softmax = 0.0
        if b["softmax_rate"] > 0:
            softmax = sum(c * x for c, x in zip(b["scores"], features)) / b["softmax_rate"]
        if seqs <= 0:
            return 0.0, softmax, 0.0, 1.0
        if not b["decode"]:
            q = sum(c * x for c, x in zip(b["query_tokens"], features))
            blocks = seqs * b["heads"] * math.ceil(q / seqs / b["tile"] - 1e-9)
            ramp = blocks / (blocks + b["half"]) if b["half"] is not None and blocks > 0 else 1.0
            return blocks * b["cta_s"], softmax, 0.0, ramp
        blocks = seqs * b["per_unit"]
        extra = sum(c * x for c, x in zip(b["kv"], features)) * b["kv_reread"] if b["kv_reread"] else 0.0
        ramp = 1.0
        if b["half"] is not None and blocks > 0:  # roofline.parallel_share
            p = b["sharpness"]
            ramp = blocks / (blocks + b["half"]) if p == 1.0 else (1.0 + (b["half"] / blocks) ** p) ** (-1.0 / p)
        return blocks * b["cta_s"] + b["launch_s"], softmax, extra, ramp

    def _array_extra_bytes(self, row: dict, features: list[float], flops: float) -> float:
        """:func:`~infersim.perf.array_mapping.array_extra_bytes` of one row of this step."""
        a, array = row["array"], self.device.spec.array
        if row["is_gemm"]:
            m = sum(c * x for c, x in zip(row["m"], features))
            n, k, bpe = row["n"], row["k"], a["bpe"]
            b_bytes = row["weight_bytes"] if row["weight_bytes"] > 0 else k * n * bpe
            return gemm_reread_bytes_scalar(m, n, k, m * k * bpe, b_bytes, array.onchip_sram_bytes, bpe, a["experts"])
        scores = sum(c * x for c, x in zip(a["scores"], features))
        if scores <= 0:
            return 0.0
        queries = sum(c * x for c, x in zip(a["query_tokens"], features))
        return attention_unfused_bytes_scalar(scores, a["heads"], queries, flops / (4.0 * scores), a["bpe"], array)

    def _scalar_row_time(self, row: dict, features: list[float], prefill_seqs: float = 0.0) -> float:
        """The roofline of :func:`~infersim.perf.roofline.cost_ops` for one row, in plain floats."""
        flops = sum(c * x for c, x in zip(row["flops"], features))
        nbytes = sum(c * x for c, x in zip(row["bytes"], features))
        if flops <= 0 and nbytes <= 0:
            return 0.0
        nbytes += row["weight_bytes"]
        if "array" in row:
            nbytes += self._array_extra_bytes(row, features, flops)
        block_s = softmax = cached = 0.0
        ramp = 1.0
        if "blocks" in row:
            b = row["blocks"]
            block_s, softmax, extra, ramp = self._scalar_blocks(b, features, prefill_seqs)
            # roofline.cost_ops: a decode block loads its queries once (the ramp slows its KV
            # stream only); per-query-head re-reads from DRAM or at their cache rate
            once = sum(c * x for c, x in zip(row["act"], features)) if b["decode"] else 0.0
            if b["reread_ratio"] is not None:
                cached, extra = extra / ramp, 0.0
            flops, nbytes = flops / ramp, (nbytes - once + extra) / ramp + once
        _, _, mhalf, _, tm, tn, units, bw = self._eff
        cmax, chalf, mmax = row["cmax"], row["chalf"], row["mmax"]
        m = sum(c * x for c, x in zip(row["m"], features)) if row["is_gemm"] else 0.0
        if row["is_gemm"] and row["gemm_mmax"] is not None and m > row["gemv_max_m"]:
            mmax = row["gemm_mmax"]
        compute = 0.0
        if flops > 0:
            e = cmax * flops / (flops + chalf) if (chalf > 0 and row["ramp"]) else cmax
            if row["is_gemm"]:
                n = row["n"]
                if row["tiles"] and (row.get("split_k", 1) > 1 or "tile_half" in row):
                    e *= tiled_gemm_utilization_scalar(m, n, row["k"], row["tiles"], units, row["k_half"],
                                                       row["gemv_max_m"], 0.0, row.get("split_k", 1),
                                                       row.get("tile_half", 0.0))
                elif row["tiles"]:  # efficiency.tiled_gemm_utilization
                    util = 1.0
                    if m > 0 and n > 0 and m > row["gemv_max_m"]:
                        util = 0.0
                        for a, b in row["tiles"]:
                            waves = math.ceil(math.ceil(m / a) * math.ceil(n / b) / units)
                            util = max(util, (m * n) / (max(waves, 1) * (units * a * b)))
                        k, k_half = row["k"], row["k_half"]
                        if k_half > 0 and k > 0:
                            util *= k / (k + k_half)
                    e *= util
                else:
                    tiles = math.ceil(m / tm) * math.ceil(n / tn)
                    if tiles > units:  # efficiency.wave_utilization (split-K below one wave)
                        e *= tiles / (math.ceil(tiles / units) * units)
            compute = flops / (row["peak"] * e)
        compute += softmax / ramp
        memory = 0.0
        if nbytes > 0:
            e = mmax * nbytes / (nbytes + mhalf) if mhalf > 0 else mmax
            memory = nbytes / (bw * e)
        if cached > 0:
            memory += cached / (row["blocks"]["reread_ratio"] * bw * mmax)
        if row["query_bw"] > 0:
            memory_q = sum(c * x for c, x in zip(row["act"], features)) / row["query_bw"]
        else:
            memory_q = 0.0
        return (max(compute, memory) + memory_q + row["overhead_s"] + block_s) * row["count"]

    # ----- public ----------------------------------------------------------------------------
    def step_time_s(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int,
                    loads: dict[int | None, tuple[float, float, float, float]], extra_logits: int = 0) -> float:
        """Time of one step.

        ``loads[window] = (prefill_pairs, prefill_rect_pairs, prefill_kv_read_tokens, decode_pairs)``
        for every window in :attr:`windows` (see :mod:`infersim.perf.shape` for the definitions;
        :meth:`loads_for` computes them from per-request lists). ``extra_logits``: tokens beyond
        each sequence's last whose logits are computed (speculative verification).
        """
        tokens = int(prefill_tokens + decode_seqs)
        if tokens == 0:
            return 0.0
        if tokens >= self._token_table.shape[1]:
            self._grow_tokens(tokens)
        logits = int(prefill_seqs + decode_seqs) + extra_logits
        if logits >= self._logit_table.shape[1]:
            self._grow_logits(logits)
        features = self._features(prefill_tokens, decode_seqs, loads)
        attn = sum(self._scalar_row_time(row, features, prefill_seqs) for row in self._attention_rows)
        return float(self._token_table[0, tokens] + self._logit_table[0, logits]) + attn

    def _features(self, prefill_tokens, decode_seqs, loads) -> list[float]:
        features = []
        for w in self.windows:
            p, r, k, d = loads[w]
            features.extend((prefill_tokens, p, r, k, decode_seqs, d))
        return features

    def step_work(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int,
                  loads: dict[int | None, tuple[float, float, float, float]],
                  extra_logits: int = 0) -> tuple[float, float]:
        """(FLOPs, bytes moved) of one step on one device, for MFU / bandwidth utilization."""
        tokens = int(prefill_tokens + decode_seqs)
        logits = int(prefill_seqs + decode_seqs) + extra_logits
        if tokens >= self._token_table.shape[1]:
            self._grow_tokens(tokens)
        if logits >= self._logit_table.shape[1]:
            self._grow_logits(logits)
        features = self._features(prefill_tokens, decode_seqs, loads)
        flops = self._token_table[1, tokens] + self._logit_table[1, logits]
        nbytes = self._token_table[2, tokens] + self._logit_table[2, logits]
        for row in self._attention_rows:
            row_flops = sum(c * x for c, x in zip(row["flops"], features))
            row_bytes = sum(c * x for c, x in zip(row["bytes"], features))
            if row_flops > 0 or row_bytes > 0:
                row_bytes += row["weight_bytes"]
            flops += row["count"] * row_flops
            nbytes += row["count"] * row_bytes
        return float(flops), float(nbytes)

    def loads_for(self, chunks, pasts, decode_contexts) -> dict[int | None, tuple[float, float, float, float]]:
        """Attention loads from per-request arrays (prefill chunk sizes, their cached prefixes,
        decode contexts including the new token)."""
        c = np.asarray(chunks, dtype=np.float64)
        p = np.asarray(pasts, dtype=np.float64)
        d = np.asarray(decode_contexts, dtype=np.float64)
        out = {}
        for w in self.windows:
            out[w] = (float(causal_pairs(c, p, w).sum()), float((c * window_cap(p + c, w)).sum()),
                      float(window_cap(p + c, w).sum()), float(window_cap(d, w).sum()))
        return out

    def step_time_for(self, chunks, pasts, decode_contexts) -> float:
        """Convenience: step time from per-request arrays."""
        c = np.asarray(chunks)
        return self.step_time_s(int(c.sum()), int(c.size), int(np.asarray(decode_contexts).size),
                                self.loads_for(chunks, pasts, decode_contexts))

    def kv_bytes_per_token(self) -> float:
        """KV bytes a token adds on one device (all layers of the most loaded stage)."""
        from .memory import kv_bytes_per_token_per_device

        return float(kv_bytes_per_token_per_device(self.model, self.par, self.prec).sum())
