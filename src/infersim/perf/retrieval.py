"""Cost models of the non-LLM stages of a RAG pipeline: vector search and KV-cache retrieval.

* **Vector search** (IVF-PQ / ScaNN-style approximate nearest neighbours; Jegou et al.,
  "Product quantization for nearest neighbor search", TPAMI 2011; RAGO, Jiang et al.,
  ISCA 2025, models retrieval the same way): a query scans a fraction of the database's
  compressed codes, so ``bytes_scanned = vectors x fraction_probed x code_bytes`` and
  the scan runs at a per-core rate (PQ look-up-table distance computations stream codes
  at roughly memory speed per core). ``time = bytes / (rate_per_core x cores) +
  overhead``, with a batch of queries sharing nothing but the cores.
* **KV-cache retrieval from a storage hierarchy** (HERMES-style multi-tier KV stores;
  LMCache / Mooncake): a prefix's KV is found in level ``i`` (HBM, host DRAM, local SSD,
  remote store) with probability ``hit_i``, costing ``latency_i + bytes / bandwidth_i``;
  a miss at every level falls back to recomputing the prefix (``recompute_s``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ivf_pq_bytes_scanned(num_vectors, fraction_probed, code_bytes: float):
    """Bytes of PQ codes one query scans."""
    return np.asarray(num_vectors, dtype=np.float64) * np.asarray(fraction_probed, dtype=np.float64) * code_bytes


def vector_search_time_s(num_queries, num_vectors, fraction_probed, code_bytes: float, *,
                         scan_bytes_per_s_per_core: float, cores: int, overhead_s: float = 0.0):
    """Time for ``num_queries`` queries on a server with ``cores`` cores."""
    per_query = ivf_pq_bytes_scanned(num_vectors, fraction_probed, code_bytes)
    return np.asarray(num_queries, dtype=np.float64) * per_query / (scan_bytes_per_s_per_core * cores) + overhead_s


@dataclass(frozen=True)
class StorageLevel:
    name: str
    hit_rate: float  # probability the KV is found here (given it was not found above)
    latency_s: float
    bandwidth_bytes_per_s: float


def kv_retrieval_time_s(n_bytes, levels: list[StorageLevel], recompute_s) -> np.ndarray:
    """Expected time to obtain ``n_bytes`` of KV through the hierarchy, recomputing on a full miss.

    ``hit_rate`` of each level is conditional on missing every level above it, so the
    probability of being served by level ``i`` is ``hit_i x prod_{j<i} (1 - hit_j)``.
    """
    b = np.asarray(n_bytes, dtype=np.float64)
    remaining = 1.0
    expected = np.zeros_like(b)
    for level in levels:
        served = remaining * level.hit_rate
        expected = expected + served * (level.latency_s + b / level.bandwidth_bytes_per_s)
        remaining *= 1.0 - level.hit_rate
    return expected + remaining * np.asarray(recompute_s, dtype=np.float64)
