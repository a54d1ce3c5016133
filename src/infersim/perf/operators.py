"""Operators as a struct of arrays: one row per operator, one column per scenario.

A step's operator graph is built once with numpy arrays for its shape inputs
(token counts, context lengths), so one build covers many scenarios: the
operator table has shape ``(n_ops, n_scenarios)`` for every numeric field. The
roofline (:mod:`infersim.perf.roofline`) then costs all of it in a few vector
operations.
"""

from __future__ import annotations

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
            )
        )

    def gemm(self, name: str, m, n, k, *, weight_dtype_bytes: float, act_dtype_bytes: float,
             dtype: str, count: float = 1.0, weights_read=None) -> None:
        """A linear layer ``[m, k] x [k, n]``: 2mnk FLOPs, reads the weight once (if ``m > 0``).

        ``weights_read`` overrides the weight elements read (MoE experts read only the
        experts that received tokens).
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
        )
