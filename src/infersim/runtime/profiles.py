"""The registered runtimes: ``none`` (kernels only), ``trtllm``, ``vllm``, ``vllm-v0``, ``vllm-v0.6``, ``sglang``,
``sglang-v0.3``.

Every number carries its source in the class's ``sources``. Host times measured for one
engine version are marked as such: engines change quickly, and ``infersim validate``
decides which profile matches published throughputs best.

Host time measured by Vidur (Agrawal et al., "Vidur: A Large-Scale Simulation Framework for
LLM Inference", MLSys 2024; ``data/profiling/a100/cpu_overheads.csv`` of microsoft/vidur,
vLLM on A100, Llama-2-7B, TP1, medians in ms), per batch size ``b``:

============  =========  ==============  ============  =====================
``b``         schedule   prepare inputs  sampler e2e   process model outputs
============  =========  ==============  ============  =====================
8             0.16513    0.29317         0.88781       0.62438
64            0.95218    1.16300         1.37026       4.10826
============  =========  ==============  ============  =====================

A line through the two batch sizes gives ``fixed + per_seq * b``:

* all four (vLLM v0: everything on the engine's critical path): per_seq = (7.59370 -
  1.97049) / 56 = 0.100414 ms, fixed = 1.97049 - 8 * 0.100414 = 1.16718 ms;
* schedule + prepare inputs only (vLLM V1 moves output processing and detokenization to a
  separate process, and samples on the GPU): per_seq = (2.11518 - 0.45830) / 56 = 0.029587 ms,
  fixed = 0.45830 - 8 * 0.029587 = 0.22160 ms;
* sampler alone: per_seq = (1.37026 - 0.88781) / 56 = 0.0086152 ms, fixed = 0.88781 - 8 *
  0.0086152 = 0.81889 ms;
* process model outputs alone: per_seq = (4.10826 - 0.62438) / 56 = 0.062212 ms, fixed =
  0.62438 - 8 * 0.062212 = 0.12668 ms.

The three parts add up to the four-phase line (0.22160 + 0.81889 + 0.12668 = 1.16717 ms,
0.029587 + 0.0086152 + 0.062212 = 0.100414 ms per sequence).

SGLang before its overlap scheduler (0.3.x), as measured by the WukLab study "Can Scheduling
Overhead Dominate LLM Inference Performance?" (Srivatsa et al., 2024-09-10; SGLang at commit
3694f8f, its defaults, 300 requests at once, A100, Nsight Systems): the median per-iteration
scheduling time (CPU, not overlapped) next to the model forward time, read off the bars of its
figure ``static/images/scheduling_overhead/SGLang_A100.svg`` (WukLab/wuklab_sysml; the bars'
percentages printed in the figure check the reading):

===========  ====================  =====================  =====================  ==========
model, TP    1024:64               1024:1024              ShareGPT               LooGLE
===========  ====================  =====================  =====================  ==========
1.3B, 1      40.20 / 3.13 ms       19.48 / 4.29 ms        16.90 / 3.55 ms        -
8B, 1        46.73 / 1.91 ms       42.09 / 2.70 ms        29.91 / 2.16 ms        55.00 / 1.87
70B, 4       139.80 / 5.30 ms      127.50 / 2.30 ms       128.40 / 4.20 ms       -
===========  ====================  =====================  =====================  ==========

(forward / schedule per iteration). Their median, 2.915 ms, is the ``sglang-v0.3`` host time per
step (the study's text: "scheduling overhead never was more than 3ms").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from .base import Runtime, SchedulerDefaults, register

GIB = 2**30
MB = 10**6


def _vllm_graph_sizes(largest: int) -> tuple[int, ...]:
    """vLLM's capture list for one ``cuda_graph_sizes`` value: [1, 2, 4] + every multiple of 8 up to it."""
    return tuple([1, 2, 4] + list(range(8, largest + 1, 8)))


@register
@dataclass(frozen=True)
class KernelsOnly(Runtime):
    """The kernels and nothing else (the model before runtimes existed)."""

    name = "none"
    title = "kernels only (no engine overheads, no graph padding)"
    sources = {"scheduler defaults": "infersim's own (vLLM v0-style continuous batching, "
                                     "gpu_memory_utilization 0.9, max_num_seqs 256, block 16)"}


@register
@dataclass(frozen=True)
class VLLM(Runtime):
    """vLLM V1 engine (``LLM`` class offline, ``vllm serve`` online)."""

    name = "vllm"
    title = "vLLM (V1 engine)"
    sources = {
        "host_fixed_s, host_per_seq_s": "schedule + prepare-inputs medians measured by Vidur (MLSys 2024) on "
                                        "vLLM, A100, Llama-2-7B TP1, line through batch 8 and 64 (see module "
                                        "docstring); output processing and detokenization run in a separate "
                                        "process in V1 (vLLM blog 'vLLM V1: A Major Upgrade', 2025-01-27)",
        "overlap": "False: async scheduling is off by default (vllm/config/scheduler.py async_scheduling=False)",
        "graph_sizes": "cuda_graph_sizes default [min(max_num_seqs * 2, 512)] -> [1, 2, 4] + range(8, 513, 8) "
                       "(vllm/config/scheduler.py, v0.10)",
        "graph_padding": "decode batches pad to the next captured size (vllm/v1/worker/gpu_model_runner.py)",
        "memory_utilization": "gpu_memory_utilization = 0.9 of the whole device (vllm/config/cache.py)",
        "block_size": "16 on CUDA (vllm/config/cache.py)",
        "policy": "chunked: 'V1 always uses chunked prefills' (vllm/engine/arg_utils.py)",
        "max_num_batched_tokens, max_num_seqs": "EngineArgs.get_batch_defaults (vllm/engine/arg_utils.py): "
                                                "devices with >= 70 GiB other than A100: LLM class 16384 tokens, "
                                                "server 8192, 1024 sequences; others: 8192 / 2048 tokens, 256 "
                                                "sequences",
    }

    defaults: ClassVar[SchedulerDefaults] = SchedulerDefaults(
        policy="chunked", max_num_seqs=256, max_num_batched_tokens=8192, block_size=16, memory_utilization=0.90)

    host_fixed_s: float = 0.22160e-3
    host_per_seq_s: float = 0.029587e-3
    graph_sizes: tuple[int, ...] = _vllm_graph_sizes(512)
    graph_padding: bool = True

    def scheduler_defaults(self, device_memory_bytes: float, device_name: str, tp: int,
                           offline: bool, max_model_len: int | None = None) -> SchedulerDefaults:
        if device_memory_bytes >= 70 * GIB and "a100" not in device_name.lower():
            return replace(self.defaults, max_num_batched_tokens=16384 if offline else 8192, max_num_seqs=1024)
        return replace(self.defaults, max_num_batched_tokens=8192 if offline else 2048)


@register
@dataclass(frozen=True)
class VLLMv0(Runtime):
    """vLLM's V0 engine, as Vidur profiled it: every host phase on the critical path."""

    name = "vllm-v0"
    title = "vLLM V0 engine (host phases as profiled by Vidur)"
    sources = {
        "host_fixed_s, host_per_seq_s": "schedule + prepare inputs + sampler + process model outputs medians "
                                        "measured by Vidur (MLSys 2024), vLLM on A100, Llama-2-7B TP1, line "
                                        "through batch 8 and 64 (see module docstring)",
        "graph_sizes": "_BATCH_SIZES_TO_CAPTURE = [1, 2, 4] + [8 * i for i in range(1, 33)] "
                       "(vllm/worker/model_runner.py, v0.6), padded",
        "scheduler defaults": "gpu_memory_utilization 0.9, max_num_seqs 256, block 16, chunked prefill off "
                              "(vllm/engine/arg_utils.py, v0.6), so max_num_batched_tokens = max(max_model_len, "
                              "2048) with max_model_len the model's context (vllm/config.py SchedulerConfig)",
    }

    host_fixed_s: float = 1.16718e-3
    host_per_seq_s: float = 0.100414e-3
    graph_sizes: tuple[int, ...] = _vllm_graph_sizes(256)
    graph_padding: bool = True

    def scheduler_defaults(self, device_memory_bytes: float, device_name: str, tp: int,
                           offline: bool, max_model_len: int | None = None) -> SchedulerDefaults:
        """Without chunked prefill vLLM V0 batches up to ``max(max_model_len, 2048)`` tokens a step
        (vllm/config.py ``SchedulerConfig``, v0.6), so a prompt of any served length runs whole."""
        if max_model_len is None:
            return self.defaults
        return replace(self.defaults, max_num_batched_tokens=max(max_model_len, 2048))


@register
@dataclass(frozen=True)
class VLLMv06(VLLMv0):
    """vLLM's V0 engine from 0.6.0 on: the asynchronous output processor and multi-step scheduling."""

    name = "vllm-v0.6"
    title = "vLLM V0 engine, 0.6.0 and later (async output processing, multi-step scheduling)"
    sources = {
        **VLLMv0.sources,
        "schedule_fixed_s, schedule_per_seq_s": "schedule + prepare-inputs medians measured by Vidur (see module "
                                                "docstring), once per scheduler call: multi-step scheduling "
                                                "(--num-scheduler-steps n, vLLM 0.6.0, 2024-09-04) schedules and "
                                                "prepares inputs once for n decode steps (vLLM blog 'vLLM v0.6.0: "
                                                "2.7x Throughput Improvement and 5x Latency Reduction', 2024-09-05)",
        "host_fixed_s, host_per_seq_s": "sampler medians measured by Vidur, on every step",
        "async_fixed_s, async_per_seq_s": "process-model-outputs medians measured by Vidur, overlapped with the "
                                          "next step's GPU work by the asynchronous output processor (vLLM PR "
                                          "#7049, on by default from 0.6.0: disable_async_output_proc=False)",
        "scheduler_steps": "1 (vLLM's default num_scheduler_steps); a scenario's scheduler.scheduler_steps "
                           "sets the submission's value",
    }

    host_fixed_s: float = 0.81889e-3
    host_per_seq_s: float = 0.0086152e-3
    schedule_fixed_s: float = 0.22160e-3
    schedule_per_seq_s: float = 0.029587e-3
    async_fixed_s: float = 0.12668e-3
    async_per_seq_s: float = 0.062212e-3


#: SGLang's mem_fraction_static by TP size (python/sglang/srt/server_args.py, v0.4.x __post_init__)
SGLANG_MEM_FRACTION = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))


@register
@dataclass(frozen=True)
class SGLang(Runtime):
    """SGLang (``sglang.launch_server`` / ``sglang.bench_offline_throughput``)."""

    name = "sglang"
    title = "SGLang"
    sources = {
        "overlap": "zero-overhead batch scheduler, on by default since v0.4: CPU scheduling runs one batch "
                   "ahead of the GPU (LMSYS blog 'SGLang v0.4', 2024-12-04; after NanoFlow)",
        "host_fixed_s, host_per_seq_s": "0: hidden by the overlap scheduler (the WukLab study 'Can Scheduling "
                                        "Overhead Dominate LLM Inference Performance?', 2024-09-10, measured "
                                        "SGLang's scheduling at no more than 3 ms per iteration, an upper "
                                        "bound rather than a value)",
        "graph_sizes": "[1, 2, 4, 8] + range(16, 161, 8), plus range(160, 257, 8) above 96 GiB "
                       "(python/sglang/srt/model_executor/cuda_graph_runner.py get_batch_sizes_to_capture, "
                       "v0.4.x); padded unless --disable-cuda-graph-padding",
        "memory_utilization": "mem_fraction_static by TP size: 0.88 (1), 0.87 (2), 0.85 (4), 0.81 (8), 0.79 "
                              "(16), for weights and the KV pool together (server_args.py, v0.4.x)",
        "max_num_batched_tokens": "chunked_prefill_size 8192, 2048 below 25 GB (server_args.py)",
        "max_num_seqs": "max_running_requests: clamp(kv_tokens / context_len * 512, 2048, 4096) "
                        "(model_runner.py); 2048 here, the KV pool binds first",
        "block_size": "page_size 1 (server_args.py)",
        "policy": "chunked: SGLang splits prompts longer than chunked_prefill_size; it runs prefill batches "
                  "without decodes by default (enable_mixed_chunk=False), where this scheduler mixes them "
                  "(Sarathi-Serve), the nearest policy here that chunks long prompts",
    }

    defaults: ClassVar[SchedulerDefaults] = SchedulerDefaults(
        policy="chunked", max_num_seqs=2048, max_num_batched_tokens=8192, block_size=1, memory_utilization=0.88)

    overlap: bool = True
    graph_sizes: tuple[int, ...] = tuple([1, 2, 4, 8] + list(range(16, 161, 8)))
    graph_padding: bool = True

    def for_device(self, device_memory_bytes: float) -> Runtime:
        if device_memory_bytes > 96 * GIB and self.graph_sizes[-1] < 256:
            return replace(self, graph_sizes=self.graph_sizes + tuple(range(168, 257, 8)))
        return self

    def scheduler_defaults(self, device_memory_bytes: float, device_name: str, tp: int,
                           offline: bool, max_model_len: int | None = None) -> SchedulerDefaults:
        fraction = next(f for lo, f in SGLANG_MEM_FRACTION if tp >= lo)
        tokens = 2048 if device_memory_bytes < 25_000 * MB else 8192
        return replace(self.defaults, max_num_batched_tokens=tokens, memory_utilization=fraction)

    def kv_capacity_bytes(self, memory_bytes: float, weights_bytes: float, activation_bytes: float,
                          fraction: float) -> float:
        """``mem_fraction_static`` covers weights and the KV pool; activations use the rest."""
        return fraction * memory_bytes - weights_bytes


@register
@dataclass(frozen=True)
class SGLangV03(SGLang):
    """SGLang 0.3.x: the same engine before the overlap scheduler, its CPU work on the critical path."""

    name = "sglang-v0.3"
    title = "SGLang 0.3 (no overlap scheduler)"
    sources = {
        **SGLang.sources,
        "overlap": "False: the overlap (zero-overhead) scheduler arrived in v0.4 (LMSYS blog 'SGLang v0.4', "
                   "2024-12-04, which runs the old scheduler with --disable-overlap and reports 1.1x throughput "
                   "from the overlap, i.e. about a tenth of a step of host time hidden)",
        "host_fixed_s, host_per_seq_s": "2.915 ms per step, no per-sequence term: the median of the ten "
                                        "per-iteration scheduling times the WukLab study measured for SGLang "
                                        "(commit 3694f8f, Sept. 2024, default 10 decode steps per scheduler "
                                        "call, A100; Llama 1.3B / 8B TP1 / 70B TP4, four workloads; 1.87 to "
                                        "5.30 ms; see module docstring); the study gives no batch sizes, so "
                                        "no per-sequence slope",
        "graph_sizes": "[1, 2, 4] + [8 * i for i in range(1, 21)] = up to 160 on every device, padded "
                       "(python/sglang/srt/model_executor/cuda_graph_runner.py, 0.3.x)",
        "scheduler defaults": "as the sglang profile (v0.4's server_args.py): mem_fraction_static by TP size, "
                              "chunked_prefill_size 8192, max_running_requests 2048, page size 1; not re-read "
                              "from the 0.3.0 sources",
    }

    host_fixed_s: float = 2.915e-3
    overlap: bool = False
    graph_sizes: tuple[int, ...] = tuple([1, 2, 4] + list(range(8, 161, 8)))

    def for_device(self, device_memory_bytes: float) -> Runtime:
        return self  # 0.3.x captured the same sizes on every device


def _trtllm_graph_sizes(largest: int = 128) -> tuple[int, ...]:
    """TensorRT-LLM's generated CUDA-graph batch sizes without padding: 1..31, 32, 64, 128, then
    powers of two up to ``largest``."""
    sizes = set(range(1, 32)) | {32, 64, 128} | {2**i for i in range(8, 20) if 2**i <= largest}
    return tuple(sorted(s for s in sizes if s <= largest))


@register
@dataclass(frozen=True)
class TensorRTLLM(Runtime):
    """TensorRT-LLM's PyTorch-backend executor (``trtllm-bench``, ``trtllm-serve``, LLM API defaults)."""

    name = "trtllm"
    title = "TensorRT-LLM (PyTorch backend)"
    sources = {
        "overlap": "overlap scheduler, enabled by default (TensorRT-LLM docs, features/overlap-scheduler: "
                   "'CPU work (step n) and GPU computation (step n+1) run concurrently')",
        "host_fixed_s, host_per_seq_s": "0: hidden by the overlap scheduler (same docs page)",
        "graph_sizes": "CudaGraphConfig max_batch_size 128 -> 1..31, 32, 64, 128 "
                       "(tensorrt_llm/llmapi/llm_args.py _generate_cuda_graph_batch_sizes)",
        "graph_padding": "False: CudaGraphConfig.enable_padding defaults to False (llm_args.py); a batch "
                         "size that was not captured runs eagerly at its own size",
        "memory_utilization": "KvCacheConfig.free_gpu_memory_fraction = 0.9 of the memory left after "
                              "weights and activations (llm_args.py)",
        "max_num_seqs, max_num_batched_tokens": "max_batch_size 2048, max_num_tokens 8192 "
                                                "(tensorrt_llm/builder.py BuildConfig / llm_args.py)",
        "block_size": "tokens_per_block 32 (llm_args.py KvCacheConfig)",
        "policy": "inflight: in-flight batching puts context and generation requests in one iteration, "
                  "whole prompts only (enable_chunked_prefill defaults to False, llm_args.py)",
    }

    defaults: ClassVar[SchedulerDefaults] = SchedulerDefaults(
        policy="inflight", max_num_seqs=2048, max_num_batched_tokens=8192, block_size=32, memory_utilization=0.90)

    overlap: bool = True
    graph_sizes: tuple[int, ...] = _trtllm_graph_sizes(128)
    graph_padding: bool = False

    def kv_capacity_bytes(self, memory_bytes: float, weights_bytes: float, activation_bytes: float,
                          fraction: float) -> float:
        """``free_gpu_memory_fraction`` of what weights and activations leave free."""
        return fraction * (memory_bytes - weights_bytes - activation_bytes)
