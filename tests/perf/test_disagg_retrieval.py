import numpy as np
import pytest

from infersim.models import get_model
from infersim.perf.disagg import afd_dispatch_bytes, afd_layer_time_s, kv_transfer_bytes, kv_transfer_time_s
from infersim.perf.retrieval import (StorageLevel, ivf_pq_bytes_scanned, kv_retrieval_time_s,
                                     vector_search_time_s)


def test_kv_transfer_bytes_hand_computation():
    # Llama-3.1-8B: 32 layers x 8 kv heads x 128 x (K,V) x 2 bytes = 131072 B per token
    assert kv_transfer_bytes(get_model("llama-3.1-8b"), "bf16", 2048)[0] == 2048 * 131072
    # DeepSeek-V3 MLA latent in fp8: (512 + 64) x 61 layers x 1 byte per token
    assert kv_transfer_bytes(get_model("deepseek-v3"), "fp8", 1000)[0] == 1000 * 576 * 61
    # Gemma-2-9B: 21 sliding (window 4096) + 21 global layers, 8 kv heads x 256, bf16
    per_layer = 2 * 8 * 256 * 2
    assert kv_transfer_bytes(get_model("gemma-2-9b"), "bf16", 8192)[0] == 21 * per_layer * (4096 + 8192)


def test_kv_transfer_time_whole_and_layerwise():
    b, bw, lat = 1e9, 50e9, 10e-6
    assert kv_transfer_time_s(b, bw, lat) == pytest.approx(lat + 0.02)
    # prefill of 100 ms over 10 layers hides all but the last layer's share
    assert kv_transfer_time_s(b, bw, lat, layers=10, overlap_with_s=0.1) == pytest.approx(lat + 0.002)
    # a slow link: 1 GB at 5 GB/s = 200 ms, 90 ms of it hidden behind the prefill
    assert kv_transfer_time_s(b, 5e9, lat, layers=10, overlap_with_s=0.1) == pytest.approx(lat + 0.2 - 0.09)


def test_afd_dispatch_bytes_and_pipeline():
    # 256 tokens, top-8, hidden 7168, bf16: 256 * 8 * 7168 * 2 bytes each way
    assert afd_dispatch_bytes(256, 8, 7168, "bf16") == 256 * 8 * 7168 * 2
    # per micro-batch: attention 1, experts 2, comm 0.5 (a round trip of 3.5)
    # one micro-batch: stages run back to back, layer after layer
    assert afd_layer_time_s(1.0, 2.0, 0.5, 1) == pytest.approx(3.5)
    assert afd_layer_time_s(1.0, 2.0, 0.5, 1, layers=10) == pytest.approx(35.0)
    # one layer of 4 micro-batches: fill + drain of a 3-stage pipeline, 3.5 + 3 x 2
    assert afd_layer_time_s(1.0, 2.0, 0.5, 4) == pytest.approx(3.5 + 3 * 2.0)
    # 10 layers, 4 micro-batches: the expert group is busy 4 x 2 = 8 per layer (> the 3.5 round
    # trip), so 9 layers of 8 and a last one of 9.5: the pipeline never drains between layers
    assert afd_layer_time_s(1.0, 2.0, 0.5, 4, layers=10) == pytest.approx(9 * 8.0 + 9.5)
    # 2 micro-batches: 2 x 2 = 4 > 3.5, still expert-bound
    assert afd_layer_time_s(1.0, 2.0, 0.5, 2, layers=10) == pytest.approx(9 * 4.0 + 3.5 + 2.0)
    # a long round trip (attention 3, comm 3, experts 1): 2 micro-batches cannot hide it (2 x 3 < 7)
    assert afd_layer_time_s(3.0, 1.0, 3.0, 2, layers=5) == pytest.approx(4 * 7.0 + 7.0 + 3.0)
    # no MoE layers: nothing to pipeline
    assert afd_layer_time_s(1.0, 2.0, 0.5, 4, layers=0) == 0.0


def test_vector_search_hand_computation():
    # 64e9 vectors, 0.1% probed, 32-byte PQ codes: 2.048e9 bytes per query
    assert ivf_pq_bytes_scanned(64e9, 1e-3, 32) == pytest.approx(2.048e9)
    t = vector_search_time_s(4, 64e9, 1e-3, 32, scan_bytes_per_s_per_core=2e9, cores=64, overhead_s=1e-3)
    assert t == pytest.approx(4 * 2.048e9 / (2e9 * 64) + 1e-3)


def test_kv_retrieval_expectation_and_limits():
    levels = [StorageLevel("dram", 0.5, 1e-5, 100e9), StorageLevel("ssd", 0.5, 1e-4, 5e9)]
    b = 1e9
    expected = 0.5 * (1e-5 + 0.01) + 0.25 * (1e-4 + 0.2) + 0.25 * 3.0
    assert kv_retrieval_time_s(b, levels, 3.0) == pytest.approx(expected)
    always = [StorageLevel("hbm", 1.0, 0.0, 1e12)]
    assert kv_retrieval_time_s(b, always, 99.0) == pytest.approx(1e-3)
    assert kv_retrieval_time_s(np.array([b]), [], 2.0)[0] == 2.0
