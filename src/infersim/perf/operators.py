"""Operators as a struct of arrays: one row per operator, one column per scenario.

A step's operator graph is built once with numpy arrays for its shape inputs
(token counts, context lengths), so one build covers many scenarios: the
operator table has shape ``(n_ops, n_scenarios)`` for every numeric field. The
roofline (:mod:`infersim.perf.roofline`) then costs all of it in a few vector
operations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class OpKind(IntEnum):
    GEMM = 0
    ATTENTION = 1
    ELEMENTWISE = 2
    COLLECTIVE = 3


class Collective(IntEnum):
    NONE = 0
    ALL_REDUCE = 1
    ALL_GATHER = 2
    REDUCE_SCATTER = 3
    ALL_TO_ALL = 4
    SEND_RECV = 5


COLLECTIVE_NAMES = {c: c.name.lower().replace("_", "-") for c in Collective}


#: per-scenario count columns with a zero default
_COUNT_COLUMNS = ("seqs", "query_tokens", "scores", "heads", "kv_heads", "experts")
#: every (n_ops, S) column
_SCENARIO_COLUMNS = frozenset({"flops", "weight_bytes", "act_bytes", "kv_bytes", "gemm_m", "gemm_n", "gemm_k",
                               "comm_bytes", *_COUNT_COLUMNS})


@dataclass
class OpTable:
    """Operators (rows) x scenarios (columns). All byte/FLOP counts are per device."""

    names: list[str]
    kind: np.ndarray  # (n_ops,) OpKind
    dtype: list[str]  # compute dtype per op
    count: np.ndarray  # (n_ops,) how many times the op runs per step (e.g. layers in the group)
    kernels: np.ndarray  # (n_ops,) kernel launches per occurrence
    flops: np.ndarray  # (n_ops, S)
    weight_bytes: np.ndarray  # (n_ops, S)
    act_bytes: np.ndarray  # (n_ops, S)
    kv_bytes: np.ndarray  # (n_ops, S)
    gemm_m: np.ndarray  # (n_ops, S) 0 for non-GEMM
    gemm_n: np.ndarray  # (n_ops, S)
    gemm_k: np.ndarray  # (n_ops, S)
    collective: np.ndarray  # (n_ops,) Collective
    comm_bytes: np.ndarray  # (n_ops, S) message size per device
    group_size: np.ndarray  # (n_ops,) devices in the collective
    # counts the efficiency model uses for per-sequence / per-expert costs (0 where not used;
    # None on construction = zeros, so tables built without them keep the plain model)
    seqs: np.ndarray | None = None  # (n_ops, S) sequences an attention op runs over
    query_tokens: np.ndarray | None = None  # (n_ops, S) query tokens of an attention op
    scores: np.ndarray | None = None  # (n_ops, S) attention scores: (query, key) pairs x query heads
    heads: np.ndarray | None = None  # (n_ops, S) query heads of an attention op on this device
    kv_heads: np.ndarray | None = None  # (n_ops, S) KV heads of an attention op on this device
    mla: np.ndarray | None = None  # (n_ops,) bool: MLA attention (own kernels; decode over one shared latent)
    experts: np.ndarray | None = None  # (n_ops, S) experts sharing a grouped (MoE) GEMM's rows

    def __post_init__(self) -> None:
        shape = np.shape(self.flops)
        for name in _COUNT_COLUMNS:
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(shape, dtype=np.float64))
        if self.mla is None:
            self.mla = np.zeros(len(self.names), dtype=bool)

    def take_ops(self, idx) -> OpTable:
        """The operator rows ``idx`` (a list of row indices), every column kept."""
        idx = list(idx)
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = [value[i] for i in idx] if isinstance(value, list) else value[idx]
        return OpTable(**out)

    def take_scenarios(self, keep) -> OpTable:
        """The scenarios (columns) selected by ``keep`` (a boolean mask or index array)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value[:, keep] if f.name in _SCENARIO_COLUMNS else value
        return OpTable(**out)

    @staticmethod
    def concat_scenarios(tables: list[OpTable]) -> OpTable:
        """Tables with the same operators side by side (scenarios concatenated); the per-op
        columns are the first table's."""
        first = tables[0]
        out = {}
        for f in dataclasses.fields(first):
            if f.name in _SCENARIO_COLUMNS:
                out[f.name] = np.concatenate([getattr(t, f.name) for t in tables], axis=1)
            else:
                out[f.name] = getattr(first, f.name)
        return OpTable(**out)

    @property
    def n_scenarios(self) -> int:
        return self.flops.shape[1]

    @property
    def total_bytes(self) -> np.ndarray:
        return self.weight_bytes + self.act_bytes + self.kv_bytes


@dataclass
class OpBuilder:
    """Collects operators row by row; ``build`` broadcasts them into an :class:`OpTable`."""

    n_scenarios: int
    rows: list[dict] = field(default_factory=list)

    def add(
        self,
        name: str,
        kind: OpKind,
        *,
        count: float = 1.0,
        dtype: str = "bf16",
        kernels: float = 1.0,
        flops=0.0,
        weight_bytes=0.0,
        act_bytes=0.0,
        kv_bytes=0.0,
        gemm_mnk=(0.0, 0.0, 0.0),
        collective: Collective = Collective.NONE,
        comm_bytes=0.0,
        group_size: int = 1,
        seqs=0.0,
        query_tokens=0.0,
        scores=0.0,
        heads=0.0,
        kv_heads=0.0,
        mla: bool = False,
        experts=0.0,
    ) -> None:
        self.rows.append(
            dict(
                name=name,
                kind=kind,
                count=count,
                dtype=dtype,
                kernels=kernels,
                flops=flops,
                weight_bytes=weight_bytes,
                act_bytes=act_bytes,
                kv_bytes=kv_bytes,
                m=gemm_mnk[0],
                n=gemm_mnk[1],
                k=gemm_mnk[2],
                collective=collective,
                comm_bytes=comm_bytes,
                group_size=group_size,
                seqs=seqs,
                query_tokens=query_tokens,
                scores=scores,
                heads=heads,
                kv_heads=kv_heads,
                mla=mla,
                experts=experts,
            )
        )

    def gemm(self, name: str, m, n, k, *, weight_dtype_bytes: float, act_dtype_bytes: float,
             dtype: str, count: float = 1.0, weights_read=None, experts=0.0) -> None:
        """A linear layer ``[m, k] x [k, n]``: 2mnk FLOPs, reads the weight once (if ``m > 0``).

        ``weights_read`` overrides the weight elements read (MoE experts read only the
        experts that received tokens). ``experts``: a grouped GEMM whose ``m`` rows are
        split over this many experts (each expert's rows form their own tiles).
        """
        weight_elems = n * k if weights_read is None else weights_read
        # a GEMM with no rows does not run and reads nothing
        weight_elems = np.where(np.asarray(m) > 0, weight_elems, 0.0)
        self.add(
            name, OpKind.GEMM, count=count, dtype=dtype,
            flops=2.0 * m * n * k,
            weight_bytes=weight_elems * weight_dtype_bytes,
            act_bytes=(m * k + m * n) * act_dtype_bytes,
            gemm_mnk=(m, n, k),
            experts=experts,
        )

    def build(self) -> OpTable:
        s = self.n_scenarios
        r = self.rows

        def column(key: str) -> np.ndarray:
            out = np.empty((len(r), s), dtype=np.float64)
            for i, row in enumerate(r):
                out[i] = row[key]
            return out

        return OpTable(
            names=[row["name"] for row in r],
            kind=np.array([int(row["kind"]) for row in r], dtype=np.int8),
            dtype=[row["dtype"] for row in r],
            count=np.array([row["count"] for row in r], dtype=np.float64),
            kernels=np.array([row["kernels"] for row in r], dtype=np.float64),
            flops=column("flops"),
            weight_bytes=column("weight_bytes"),
            act_bytes=column("act_bytes"),
            kv_bytes=column("kv_bytes"),
            gemm_m=column("m"),
            gemm_n=column("n"),
            gemm_k=column("k"),
            collective=np.array([int(row["collective"]) for row in r], dtype=np.int8),
            comm_bytes=column("comm_bytes"),
            group_size=np.array([row["group_size"] for row in r], dtype=np.float64),
            seqs=column("seqs"),
            query_tokens=column("query_tokens"),
            scores=column("scores"),
            heads=column("heads"),
            kv_heads=column("kv_heads"),
            mla=np.array([bool(row["mla"]) for row in r], dtype=bool),
            experts=column("experts"),
        )
