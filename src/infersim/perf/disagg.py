"""Static cost pieces of disaggregated serving: KV-cache transfer and attention-FFN split.

* **KV transfer** (prefill/decode disaggregation, DistServe: Zhong et al., OSDI 2024;
  Splitwise: Patel et al., ISCA 2024): after prefill the request's KV cache moves to a
  decode instance. Bytes = prompt tokens x KV bytes per token (all layers, the model's
  KV layout and the KV dtype). Sent at once it costs ``alpha + bytes / B``. Sent layer
  by layer while the prefill is still computing (Splitwise's layer-wise transfer),
  layer ``i``'s KV leaves while layer ``i+1`` computes, so only what the link cannot
  hide behind the remaining compute is exposed: ``alpha + max(bytes/B - prefill *
  (L-1)/L, 0) + bytes/(B L)`` (the last layer's share can never overlap).
* **Attention-FFN disaggregation** (AFD, e.g. MegaScale-Infer, Zhu et al. 2025; Step-3's
  AFD design study): attention and KV cache live on one GPU group, the MoE experts on
  another. Per layer a micro-batched ping-pong: attention -> dispatch (all-to-all, each
  token's hidden state to its top-k experts) -> experts -> combine (the same bytes
  back). With ``m`` micro-batches carried across layers (MegaScale-Infer's ping-pong) the
  slowest of the three stages (attention, communication, experts) sets each layer's pace
  once ``m`` is large enough to hide a micro-batch's round trip. See :func:`afd_layer_time_s`.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import bytes_per_element
from ..models.config import ModelConfig
from ..models.params import kv_cache_bytes, kv_cache_bytes_per_token


def kv_transfer_bytes(model: ModelConfig, kv_dtype: str, tokens) -> np.ndarray:
    """Bytes of the KV cache of ``tokens`` prompt tokens, all layers (sliding layers capped)."""
    per_element = bytes_per_element(kv_dtype)
    t = np.atleast_1d(np.asarray(tokens, dtype=np.float64))
    if not model.layer_windows:
        return t * kv_cache_bytes_per_token(model, per_element)
    return np.array([kv_cache_bytes(model, int(n), per_element) for n in t])


def kv_transfer_time_s(n_bytes, bandwidth_bytes_per_s: float, latency_s: float, *, layers: int = 1,
                       overlap_with_s=0.0) -> np.ndarray:
    """Exposed time to move ``n_bytes`` of KV cache; with ``layers > 1`` and ``overlap_with_s`` the
    prefill compute time, transfer is layer-wise and overlapped (see module docstring)."""
    b = np.asarray(n_bytes, dtype=np.float64)
    wire = b / bandwidth_bytes_per_s
    if layers <= 1:
        return latency_s + wire
    hidden = np.asarray(overlap_with_s, dtype=np.float64) * (layers - 1) / layers
    return latency_s + np.maximum(wire - hidden, wire / layers)


def afd_dispatch_bytes(tokens, top_k: int, hidden: int, act_dtype: str) -> np.ndarray:
    """Bytes one direction of the attention->FFN all-to-all carries for ``tokens`` tokens (per layer):
    every token's hidden vector goes to each of its ``top_k`` experts."""
    return np.asarray(tokens, dtype=np.float64) * top_k * hidden * bytes_per_element(act_dtype)


def afd_layer_time_s(attention_s, experts_s, comm_s, micro_batches: int, layers: int = 1) -> np.ndarray:
    """``layers`` MoE layers of the attention -> dispatch -> experts -> combine ping-pong.

    ``attention_s``, ``experts_s`` are the times of one micro-batch on its group and ``comm_s``
    its dispatch + combine time (per layer). MegaScale-Infer's ping-pong pipeline (Zhu et al.
    2025, section 4) carries the ``m`` micro-batches from layer to layer without draining: each
    group serves ``m`` micro-batches per layer, and a micro-batch's own round trip
    (``a + c + e``) must end before its next layer starts, so a layer's steady-state cycle is
    ``T = max(m * max(a, c, e), a + c + e)``; the first ``layers - 1`` layers take ``T`` each and
    the last one fills and drains the 3-stage pipeline: ``a + c + e + (m - 1) * max(a, c, e)``.
    With one micro-batch nothing overlaps (``layers * (a + c + e)``); with enough of them
    (``m * max >= a + c + e``, the paper's condition) the slowest group sets the pace, which is
    what balancing the attention:FFN ratio trades.
    """
    m = max(int(micro_batches), 1)
    stages = np.stack(np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (attention_s, comm_s, experts_s))))
    total, slowest = stages.sum(axis=0), stages.max(axis=0)
    if layers <= 0:
        return np.zeros_like(total)
    cycle = np.maximum(m * slowest, total)
    return (int(layers) - 1) * cycle + total + (m - 1) * slowest
