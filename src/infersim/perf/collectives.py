"""Alpha-beta cost of collectives (vectorized over message sizes and group sizes).

The alpha-beta (Hockney) model: sending ``n`` bytes costs ``alpha + n / beta``.
Algorithm costs follow Thakur, Rabenseifner & Gropp, "Optimization of Collective
Communication Operations in MPICH" (IJHPCA 2005), with ``p`` devices, per-device
message ``n`` bytes, per-step latency ``a`` and per-device link bandwidth ``B``:

* ring all-reduce:      ``2(p-1) a + 2 (p-1)/p * n / B``
* tree all-reduce:      ``2 ceil(log2 p) a + 2 n / B`` (pipelined double binary
  tree as in NCCL 2.4+, Sanders et al. 2009: full bandwidth per tree, log latency)
* all-gather / reduce-scatter (ring): ``(p-1) a + (p-1)/p * n / B`` where ``n`` is the
  full (gathered) buffer
* all-to-all (pairwise exchange): ``(p-1) a + (p-1)/p * n / B`` where ``n`` is what
  each device sends in total, including its own share
* send/recv:            ``a + n / B``

All-reduce picks the cheaper of ring and tree per message, as NCCL's tuner does.
A group larger than the scale-up domain runs hierarchically (intra-domain
reduce-scatter, inter-domain all-reduce of ``n/d`` over the scale-out link,
intra-domain all-gather), the standard two-level scheme (NCCL, Horovod).

The scale-up bandwidth is scaled by the device's per-group-size factor
(``EfficiencySpec.collective_group_factor``): on PCIe servers the GPUs of a larger group
share switch uplinks, host bridges and the inter-socket link, so each reaches less of its
own link. A hierarchical collective takes the factor of its intra-domain group.
"""

from __future__ import annotations

import numpy as np

from ..hardware.device import Device, Link
from .operators import Collective


def ring_all_reduce_s(n_bytes, p, alpha_s, bandwidth):
    p = np.asarray(p, dtype=np.float64)
    return np.where(p > 1, 2.0 * (p - 1) * alpha_s + 2.0 * (p - 1) / p * n_bytes / bandwidth, 0.0)


def tree_all_reduce_s(n_bytes, p, alpha_s, bandwidth):
    p = np.asarray(p, dtype=np.float64)
    steps = np.ceil(np.log2(np.maximum(p, 1.0)))
    return np.where(p > 1, 2.0 * steps * alpha_s + 2.0 * n_bytes / bandwidth, 0.0)


def all_reduce_s(n_bytes, p, alpha_s, bandwidth):
    """min(ring, tree): NCCL's choice between its two all-reduce algorithms."""
    return np.minimum(ring_all_reduce_s(n_bytes, p, alpha_s, bandwidth),
                      tree_all_reduce_s(n_bytes, p, alpha_s, bandwidth))


def all_gather_s(n_bytes, p, alpha_s, bandwidth):
    """Ring all-gather of a buffer of ``n_bytes`` total (each device holds ``n/p``)."""
    p = np.asarray(p, dtype=np.float64)
    return np.where(p > 1, (p - 1) * alpha_s + (p - 1) / p * n_bytes / bandwidth, 0.0)


reduce_scatter_s = all_gather_s  # same traffic pattern in reverse (Thakur et al. 2005)


def all_to_all_s(n_bytes, p, alpha_s, bandwidth):
    """Pairwise-exchange all-to-all; ``n_bytes`` is what one device sends in total."""
    p = np.asarray(p, dtype=np.float64)
    return np.where(p > 1, (p - 1) * alpha_s + (p - 1) / p * n_bytes / bandwidth, 0.0)


def send_recv_s(n_bytes, alpha_s, bandwidth):
    return alpha_s + np.asarray(n_bytes, dtype=np.float64) / bandwidth


def _flat(kind: int, n, p, link: Link, fraction: float):
    a, bw = link.latency_s, link.bandwidth_bytes_per_s * fraction
    if kind == Collective.ALL_REDUCE:
        return all_reduce_s(n, p, a, bw)
    if kind in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER):
        return all_gather_s(n, p, a, bw)
    if kind == Collective.ALL_TO_ALL:
        return all_to_all_s(n, p, a, bw)
    if kind == Collective.SEND_RECV:
        return send_recv_s(n, a, bw)
    return np.zeros_like(np.asarray(n, dtype=np.float64))


def collective_time_s(kind: int, n_bytes, group_size: int, device: Device, cross_domain: bool = False):
    """Time of one collective of ``kind`` over ``group_size`` devices of ``device``.

    Within the scale-up domain the scale-up link is used; a larger group (or a
    ``cross_domain`` send/recv, e.g. between pipeline stages on different nodes) goes
    hierarchical over the scale-out link.
    """
    n = np.asarray(n_bytes, dtype=np.float64)
    eff = device.efficiency
    frac = eff.collectives.bandwidth_fraction
    up, out = device.scale_up, device.scale_out
    if kind == Collective.SEND_RECV:
        if cross_domain:
            return _flat(kind, n, 2, out, frac)
        return _flat(kind, n, 2, up, frac * eff.collective_group_factor(2))
    p = int(group_size)
    if p <= 1:
        return np.zeros_like(n)
    d = up.domain_size
    if p <= d:
        return _flat(kind, n, p, up, frac * eff.collective_group_factor(p))
    out_frac = frac
    frac = frac * eff.collective_group_factor(d)
    # hierarchical: d devices per domain, p/d domains
    inter = max(p // d, 1)
    if kind == Collective.ALL_REDUCE:
        return (_flat(Collective.REDUCE_SCATTER, n, d, up, frac)
                + _flat(Collective.ALL_REDUCE, n / d, inter, out, out_frac)
                + _flat(Collective.ALL_GATHER, n, d, up, frac))
    if kind in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER):
        return _flat(kind, n / inter, d, up, frac) + _flat(kind, n, inter, out, out_frac)
    # all-to-all: of the n bytes a device sends, (d-1)/p stay in its domain and
    # (p-d)/p leave it over the scale-out link; the two run concurrently.
    inside = (d - 1) * up.latency_s + n * (d - 1) / p / (up.bandwidth_bytes_per_s * frac)
    outside = (p - d) * out.latency_s + n * (p - d) / p / (out.bandwidth_bytes_per_s * out_frac)
    return np.maximum(inside, outside)
