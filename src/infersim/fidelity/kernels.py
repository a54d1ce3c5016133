"""Measured kernels as operator tables of the cost model (built once, costed many times).

Each measurement row (one kernel call of the long format, see
:mod:`infersim.fidelity.measurements`) becomes the operator(s) the step graph of
:mod:`infersim.perf.graph` would emit for it, so fidelity scores the very formulas
``infersim estimate`` uses, not a second copy of them:

* ``gemm``: :meth:`OpBuilder.gemm` ``[m, k] x [k, n]``; the math dtype follows
  :attr:`Precision.gemm_compute` for weights in ``dtype`` and bf16 activations
  (fp8 / fp4 weights run fp8 / fp4 math, int8 / int4 weights are weight-only with
  bf16 math; the ``sq`` (SmoothQuant W8A8) variant runs int8 math). A quantized linear
  (fp8 / fp4 math on bf16 activations) also runs the pass that quantizes its input, a
  ``gemm.quantize_input`` row before the GEMM (:data:`~infersim.perf.roofline.QUANTIZE_INPUT`):
  aiconfigurator times TensorRT-LLM's ``Linear.forward`` on a bf16 input.
* ``attention_prefill`` / ``attention_decode`` / ``mla_prefill`` / ``mla_decode``: the
  ``attention.prefill`` / ``attention.decode`` row of a one-layer step graph with the
  row's heads and head size (fused FlashAttention-style kernel: FLOPs
  ``2 * pairs * heads * (qk + v)`` over causal pairs for prefill; bytes of Q/O plus the
  KV cache read and written in ``kv_dtype``), computed in the dtype the graph picks
  (:attr:`Precision.attention_compute`: fp8 with an fp8 KV cache). MLA uses
  DeepSeek-V3's dimensions (prefill expanded, decode absorbed over the latent).
  A ``window=N`` variant becomes a sliding-window layer; an ``unfused`` variant (what
  ``infersim profile`` measures with numpy) the graph's unfused logits / softmax /
  attend rows.
* ``moe``: the routed-expert rows of a one-layer MoE step graph (grouped gate/up
  GEMM, activation, down GEMM, combine; the router GEMM is not part of the measured
  kernel, see DATA.md), built with the routing the row was measured under
  (:mod:`infersim.perf.routing`): aiconfigurator's ``balanced`` routing gives every
  expert-parallel rank exactly its share and spreads the ``tokens x topk`` assignments over
  ``min(tokens x topk, experts)`` distinct experts (the graph's ``balanced`` model), its
  ``dist=power_law_<alpha>`` rows the busiest rank of its power-law draws (``power_law_<alpha>``);
  ``nongated`` rows use an ungated MLP.
* collectives: one :data:`OpKind.COLLECTIVE` row (all-reduce, all-gather,
  reduce-scatter, all-to-all, send/recv) over ``num_devices`` of ``message_bytes``.
* ``elementwise``: one pass reading and writing ``tokens x hidden`` elements of ``dtype``
  (one FLOP per element).

Rows with the same operator structure share one :class:`~infersim.perf.operators.OpTable`
(their scenarios side by side), so costing a whole measurement table is a handful of
vectorized :func:`~infersim.perf.roofline.cost_ops` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..dtypes import COMPUTE_FALLBACK, bytes_per_element
from ..errors import InfersimError
from ..hardware.device import Device
from ..models.config import ModelConfig
from ..perf.graph import GraphOptions, build_step_graph
from ..perf.operators import Collective, OpBuilder, OpKind, OpTable
from ..perf.parallel import Parallelism, Precision
from ..perf.roofline import QUANTIZE_INPUT, cost_ops
from ..perf.shape import StepShape

#: op -> family reported by ``infersim fidelity``
OP_FAMILY: dict[str, str] = {
    "gemm": "gemm",
    "attention_prefill": "attention",
    "attention_decode": "attention",
    "mla_prefill": "mla",
    "mla_decode": "mla",
    "moe": "moe",
    "allreduce": "collective",
    "allgather": "collective",
    "reducescatter": "collective",
    "alltoall": "collective",
    "p2p": "collective",
    "elementwise": "elementwise",
}
FAMILIES: tuple[str, ...] = ("gemm", "attention", "mla", "moe", "collective", "elementwise")

_COLLECTIVES = {
    "allreduce": Collective.ALL_REDUCE,
    "allgather": Collective.ALL_GATHER,
    "reducescatter": Collective.REDUCE_SCATTER,
    "alltoall": Collective.ALL_TO_ALL,
    "p2p": Collective.SEND_RECV,
}

#: DeepSeek-V3 MLA dimensions (the aiconfigurator MLA collectors hard-code these)
_MLA = dict(hidden_size=7168, mla_q_lora_rank=1536, mla_kv_lora_rank=512, mla_qk_nope_head_dim=128,
            mla_qk_rope_head_dim=64, v_head_dim=128)


def _column(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(col.to_numpy(), dtype=np.float64 if name == "latency_s" else np.int64)


def _known_dtype(d: str) -> bool:
    return d in COMPUTE_FALLBACK


_FLOAT_ACTIVATIONS = ("fp32", "tf32", "fp16", "bf16")


def _activation(dtype: str) -> str:
    """Activation dtype of a kernel measured in ``dtype``: itself for 16/32-bit floats, else bf16
    (quantized linears and attention take and return bf16 activations)."""
    return dtype if dtype in _FLOAT_ACTIVATIONS else "bf16"


#: GEMM compute dtypes whose measured linears quantize their activations in a kernel of their
#: own (TensorRT-LLM's fp8 and nvfp4 ``Linear``; int8 SmoothQuant rows are variants left out)
_QUANTIZED_INPUTS = ("fp8", "fp4")


def _gemm_compute(weight: str, variant: str) -> str:
    if "sq" in variant.split(","):
        return "int8"  # SmoothQuant W8A8
    if any(v in variant for v in ("_wo", "w4a16")):
        return "bf16"  # weight-only quantization: dequantize, bf16 math
    return Precision(weight=weight, activation=_activation(weight)).gemm_compute


def _window(variant: str) -> int | None:
    for part in variant.split(","):
        if part.startswith("window="):
            return int(part[len("window="):])
    return None


# ------------------------------------------------------------------ per-op builders
# Each takes the key of a group of rows and the group's columns (arrays), and returns
# an OpTable with one scenario per row (only the measured kernel's operators).


def _select(table: OpTable, keep: Callable[[str], bool]) -> OpTable:
    return table.take_ops([i for i, n in enumerate(table.names) if keep(n)])


def _gemm(key: tuple, c: dict[str, np.ndarray]) -> OpTable:
    dtype, variant = key
    dtype = dtype or "bf16"
    m, n, k = (c[x].astype(np.float64) for x in ("m", "n", "k"))
    b = OpBuilder(m.size)
    compute, act = _gemm_compute(dtype, variant), _activation(dtype)
    if compute in _QUANTIZED_INPUTS and act != compute:
        # a quantized linear quantizes its 16-bit input first (roofline.QUANTIZE_INPUT)
        b.add(QUANTIZE_INPUT, OpKind.ELEMENTWISE, dtype=compute, kernels=0.0,
              act_bytes=m * k * (bytes_per_element(act) + bytes_per_element(compute)))
    b.gemm("gemm", m, n, k, weight_dtype_bytes=bytes_per_element(dtype),
           act_dtype_bytes=bytes_per_element(act), dtype=compute)
    return b.build()


def _attention(key: tuple, c: dict[str, np.ndarray]) -> OpTable:
    op, heads, kv_heads, head_dim, dtype, kv_dtype, variant = key
    window = _window(variant)
    mla = op.startswith("mla")
    if mla:
        model = ModelConfig(name="kernel", model_type="deepseek_v3", num_layers=1, vocab_size=1,
                            num_attention_heads=heads, num_kv_heads=heads, head_dim=192, attention="mla",
                            intermediate_size=1, layer_windows=(window,) if window else (), **_MLA)
    else:
        model = ModelConfig(name="kernel", model_type="llama", hidden_size=heads * head_dim, num_layers=1,
                            vocab_size=1, num_attention_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim,
                            v_head_dim=head_dim, attention="gqa" if kv_heads < heads else "mha",
                            intermediate_size=1, layer_windows=(window,) if window else ())
    batch = c["batch"].astype(np.float64)
    if op.endswith("prefill"):
        shape = StepShape.uniform(model, prefill_seqs=batch, chunk=c["seq_len"], past=c["kv_len"] - c["seq_len"])
        row = "attention.prefill"
    else:
        shape = StepShape.uniform(model, decode_seqs=batch, decode_context=c["kv_len"])
        row = "attention.decode"
    act = _activation(dtype or "bf16")
    prec = Precision(weight=act, activation=act, kv_cache=kv_dtype or act)
    unfused = "unfused" in variant.split(",")
    graph = build_step_graph(model, Parallelism(), prec, shape,
                             GraphOptions(include_lm_head=False, attention_impl="unfused" if unfused else "fused"))
    if unfused:  # logits, softmax, attend: the score matrix goes through memory
        out = _select(graph, lambda name: name.split("[")[0] in _UNFUSED_ROWS)
    else:
        out = _select(graph, lambda name: name.split("[")[0] == row)
    # the graph's default rule (Precision.attention_compute): fp8 FMHA whenever the KV cache is
    # fp8; TensorRT-LLM's context kernels do the same on Hopper / Blackwell (bf16-attention rows
    # with an fp8 cache time like fp8 ones); a device whose context attention runs in the
    # activation dtype instead (EfficiencySpec.fp8_kv_context_math) is costed with
    # KernelSet.context_dtypes; a row measured in fp8 is fp8 whatever its cache
    compute = "fp8" if dtype == "fp8" else prec.attention_compute
    out.dtype = [compute if k == OpKind.ATTENTION else d for k, d in zip(out.kind, out.dtype)]
    return out


_UNFUSED_ROWS = ("attention.logits", "attention.softmax", "attention.attend")


def _moe(key: tuple, c: dict[str, np.ndarray]) -> OpTable:
    hidden, inter, topk, experts, tp, ep, dtype, variant = key
    tp, ep = max(int(tp), 1), max(int(ep), 1)
    gated = "nongated" not in variant.split(",")
    model = ModelConfig(name="kernel", model_type="mixtral", hidden_size=hidden, num_layers=1, vocab_size=1,
                        num_attention_heads=tp * ep, num_kv_heads=tp * ep, head_dim=64, v_head_dim=64,
                        attention="mha", intermediate_size=0, gated_mlp=gated, num_experts=experts,
                        num_experts_per_token=topk, moe_intermediate_size=inter)
    tokens = c["tokens"].astype(np.float64)
    # the routing the kernel was measured under: aiconfigurator's balanced rows (every rank its
    # exact share over min(tokens x topk, experts) distinct experts) or its power-law draws
    dist = [p[len("dist="):] for p in variant.split(",") if p.startswith("dist=")]
    routing = dist[0] if dist else "balanced"
    w = dtype if dtype else "bf16"
    prec = Precision(weight=w, activation="bf16")
    shape = StepShape.uniform(model, decode_seqs=tokens, decode_context=1)
    graph = build_step_graph(model, Parallelism(tp=tp * ep, ep=ep), prec, shape,
                             GraphOptions(include_lm_head=False, moe_routing=routing))
    out = _select(graph, lambda name: name.startswith(("moe.experts", "moe.combine")))
    compute = _gemm_compute(w, variant)
    out.dtype = [compute if kind == OpKind.GEMM else d for kind, d in zip(out.kind, out.dtype)]
    return out


def _collective(key: tuple, c: dict[str, np.ndarray]) -> OpTable:
    op, devices, dtype = key
    nbytes = c["message_bytes"].astype(np.float64)
    b = OpBuilder(nbytes.size)
    b.add(op, OpKind.COLLECTIVE, dtype=dtype or "bf16", collective=_COLLECTIVES[op], comm_bytes=nbytes,
          group_size=2 if op == "p2p" else int(devices))
    return b.build()


def _elementwise(key: tuple, c: dict[str, np.ndarray]) -> OpTable:
    (dtype,) = key
    elems = c["tokens"].astype(np.float64) * c["hidden"]
    b = OpBuilder(elems.size)
    b.add("elementwise", OpKind.ELEMENTWISE, dtype=dtype or "fp32", flops=elems,
          act_bytes=2.0 * elems * bytes_per_element(dtype or "fp32"))
    return b.build()


_ATTN_KEY = ("op", "num_heads", "num_kv_heads", "head_dim", "dtype", "kv_dtype", "variant")
_BUILDERS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "gemm": (("dtype", "variant"), _gemm),
    "attention_prefill": (_ATTN_KEY, _attention),
    "attention_decode": (_ATTN_KEY, _attention),
    "mla_prefill": (_ATTN_KEY, _attention),
    "mla_decode": (_ATTN_KEY, _attention),
    "moe": (("hidden", "inter", "topk", "num_experts", "tp", "ep", "dtype", "variant"), _moe),
    "allreduce": (("op", "num_devices", "dtype"), _collective),
    "allgather": (("op", "num_devices", "dtype"), _collective),
    "reducescatter": (("op", "num_devices", "dtype"), _collective),
    "alltoall": (("op", "num_devices", "dtype"), _collective),
    "p2p": (("op", "num_devices", "dtype"), _collective),
    "elementwise": (("dtype",), _elementwise),
}
_SHAPE_INPUTS = ("m", "n", "k", "batch", "seq_len", "kv_len", "tokens", "message_bytes", "hidden")


# ------------------------------------------------------------------ merged tables


def _signature(t: OpTable) -> tuple:
    return (tuple(t.names), tuple(int(k) for k in t.kind), tuple(t.dtype), tuple(t.count.tolist()),
            tuple(t.kernels.tolist()), tuple(int(c) for c in t.collective), tuple(t.group_size.tolist()),
            tuple(bool(x) for x in t.mla))


def _concat(tables: Sequence[OpTable]) -> OpTable:
    return OpTable.concat_scenarios(list(tables))


@dataclass
class KernelSet:
    """The operator tables of a measurement table's rows, ready to be costed on any device.

    ``groups``: (row indices, OpTable with one scenario per row, in that order).
    ``unsupported``: rows no builder handles (unknown dtype, unsupported variant);
    their prediction is NaN. ``context_dtypes`` (one per group, None for most): the
    activation dtype of context-attention rows over an fp8 KV cache, their compute dtype on a
    device with ``fp8_kv_context_math = "activation"``.
    """

    n_rows: int
    groups: list[tuple[np.ndarray, OpTable]] = field(default_factory=list)
    unsupported: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    context_dtypes: list[str | None] = field(default_factory=list)

    def tables_for(self, device: Device) -> list[tuple[np.ndarray, OpTable]]:
        """``groups`` as ``device`` runs them (context attention over an fp8 cache in the
        activation dtype where the device says so)."""
        if device.efficiency.attention.fp8_kv_context_math != "activation" or not any(self.context_dtypes):
            return self.groups
        out = []
        for (rows, table), alt in zip(self.groups, self.context_dtypes):
            if alt:
                table = dataclasses.replace(table, dtype=[alt if k == OpKind.ATTENTION else d
                                                          for k, d in zip(table.kind, table.dtype)])
            out.append((rows, table))
        return out

    def predict(self, device: Device) -> np.ndarray:
        """Predicted latency (seconds) of every row on ``device``; NaN where not predictable."""
        out = np.full(self.n_rows, np.nan)
        for rows, table in self.tables_for(device):
            try:
                costs = cost_ops(table, device, warm_cache=True)  # kernel microbenchmarks
            except InfersimError:
                continue  # the device has no peak for this dtype or any wider one
            out[rows] = costs.step_time_s
        return out

    def work(self) -> tuple[np.ndarray, np.ndarray]:
        """(FLOPs, bytes moved) of every row, summed over its operators (NaN where unsupported)."""
        flops = np.full(self.n_rows, np.nan)
        nbytes = np.full(self.n_rows, np.nan)
        for rows, table in self.groups:
            count = table.count[:, None]
            flops[rows] = (table.flops * count).sum(axis=0)
            nbytes[rows] = ((table.total_bytes + table.comm_bytes) * count).sum(axis=0)
        return flops, nbytes

    def subset(self, mask: np.ndarray) -> "KernelSet":
        """The kernels of the rows where ``mask`` is True, renumbered in row order."""
        mask = np.asarray(mask, dtype=bool)
        new_index = np.cumsum(mask) - 1
        groups, alts = [], []
        for g, (rows, table) in enumerate(self.groups):
            keep = mask[rows]
            if keep.any():
                groups.append((new_index[rows[keep]], _take_scenarios(table, keep)))
                alts.append(self.context_dtypes[g] if self.context_dtypes else None)
        unsupported = new_index[self.unsupported[mask[self.unsupported]]]
        return KernelSet(int(mask.sum()), groups, unsupported, alts)


def _take_scenarios(t: OpTable, keep: np.ndarray) -> OpTable:
    return t.take_scenarios(keep)


def build_kernels(table: pa.Table) -> KernelSet:
    """Operator tables for every row of a long-format measurement table."""
    n = table.num_rows
    ops = _column(table, "op")
    cols = {c: _column(table, c) for c in _SHAPE_INPUTS + ("num_heads", "num_kv_heads", "head_dim", "topk",
                                                          "num_experts", "tp", "ep", "num_devices", "inter")}
    for c in ("dtype", "kv_dtype", "variant", "op"):
        cols[c] = _column(table, c).astype(str) if n else np.zeros(0, dtype=str)
    by_signature: dict[tuple, list[tuple[np.ndarray, OpTable]]] = {}
    unsupported: list[np.ndarray] = []
    for op in np.unique(ops.astype(str)) if n else []:
        rows_op = np.flatnonzero(ops == op)
        if op not in _BUILDERS:
            unsupported.append(rows_op)
            continue
        key_cols, builder = _BUILDERS[op]
        keys = [cols[k][rows_op] for k in key_cols]
        ok = np.ones(rows_op.size, dtype=bool)
        for name in ("dtype", "kv_dtype"):
            if name in key_cols:
                vals = cols[name][rows_op]
                ok &= (vals == "") | np.isin(vals, list(COMPUTE_FALLBACK))
        if not ok.all():
            unsupported.append(rows_op[~ok])
        codes = [np.unique(k[ok], return_inverse=True) for k in keys]
        if not ok.any():
            continue
        combo = np.ravel_multi_index([inv.reshape(-1) for _, inv in codes], [len(u) for u, _ in codes])
        good = rows_op[ok]
        for value in np.unique(combo):
            sel = combo == value
            rows = good[sel]
            idx = np.unravel_index(value, [len(u) for u, _ in codes])
            key = tuple(_py(codes[j][0][idx[j]]) for j in range(len(key_cols)))
            group_cols = {c: cols[c][rows] for c in _SHAPE_INPUTS}
            op_table = builder(key, group_cols)
            by_signature.setdefault((_signature(op_table), _context_dtype(op, key, key_cols)), []).append(
                (rows, op_table))
    groups, alts = [], []
    for (_, alt), parts in by_signature.items():
        rows = np.concatenate([r for r, _ in parts])
        groups.append((rows, _concat([t for _, t in parts])))
        alts.append(alt)
    bad = np.concatenate(unsupported) if unsupported else np.zeros(0, dtype=np.int64)
    return KernelSet(n, groups, np.sort(bad), alts)


def _context_dtype(op: str, key: tuple, key_cols: Sequence[str]) -> str | None:
    """The activation dtype of a context-attention row over an fp8 KV cache (whose compute
    dtype depends on the device), else None."""
    if op not in ("attention_prefill", "mla_prefill"):
        return None
    values = dict(zip(key_cols, key))
    measured = values.get("dtype") or "bf16"
    if values.get("kv_dtype") != "fp8" or measured == "fp8":
        return None
    return _activation(measured)


def _py(value):
    return value.item() if hasattr(value, "item") else value


def predict(table: pa.Table, device: Device) -> np.ndarray:
    """Predicted latency in seconds of every row of ``table`` on ``device`` (NaN: not predictable)."""
    return build_kernels(table).predict(device)


def families(table: pa.Table) -> np.ndarray:
    """The op family (:data:`FAMILIES`) of every row."""
    ops = _column(table, "op").astype(str)
    return np.asarray([OP_FAMILY.get(o, o) for o in ops], dtype=object) if ops.size else np.zeros(0, dtype=object)
