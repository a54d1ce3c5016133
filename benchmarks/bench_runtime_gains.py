"""The runtime models against the engines' own published before/after gains (printed, never asserted).

Independent of the validation table: each engine's release post measured what one feature
gained, on a stated model, device and dataset; this script predicts the same two runs with
the registered runtime and its feature switched off, and prints both ratios side by side.

* vLLM 0.6.0 (blog "vLLM v0.6.0: 2.7x Throughput Improvement and 5x Latency Reduction",
  2024-09-05; Llama 3 70B on 4x H100, ShareGPT, 500 prompts of 202 input / 179 output tokens
  on average, every request at once):
  * multi-step scheduling (``--num-scheduler-steps 10``): "improves the throughput ... by 28%"
    -> 1.28x (``vllm-v0.6`` with ``scheduler_steps`` 10 vs 1);
  * asynchronous output processing: "improves the time-per-output-token ... by 8.7%" ->
    1 / (1 - 0.087) = 1.095x (``vllm-v0.6`` vs ``vllm-v0``, whose only difference at one
    scheduler step is that the output processing runs on the critical path).
* SGLang 0.4 (LMSYS blog "SGLang v0.4", 2024-12-04): the overlap scheduler, "1.1x increase in
  throughput" (``sglang`` vs ``sglang-v0.3``). The blog's case is Llama-3.2-3B (not in the
  catalog; its device is not stated) with ``bench_serving --dataset-name random --random-input
  4096 --random-output 2048 --num-prompts 500``; this runs Llama 3.1 8B on one H100 with lengths
  uniform on [1, 4096] / [1, 2048] (the random dataset with range ratio 0, as read here): an
  indication only.

vLLM lengths: lognormal, sigma 1.0 (an assumption), medians set so that the means are the
blog's 202 / 179 tokens before clipping to [4, 1024]. vLLM 0.6.0's default ``max_num_seqs``: 256.

Usage::

    python benchmarks/bench_runtime_gains.py
"""

from __future__ import annotations

import math
import time

from infersim.serving import offline_throughput

SIGMA = 1.0
SHAPE = {"isl": {"dist": "lognormal", "median": 202 / math.exp(SIGMA**2 / 2), "sigma": SIGMA, "min": 4, "max": 1024},
         "osl": {"dist": "lognormal", "median": 179 / math.exp(SIGMA**2 / 2), "sigma": SIGMA, "min": 4, "max": 1024}}


RANDOM_4096_2048 = {"isl": {"dist": "uniform", "min": 1, "max": 4096}, "osl": {"dist": "uniform", "min": 1, "max": 2048}}


def _tokens_per_s(model: str, tp: int, runtime: str, steps: int = 1) -> float:
    r = offline_throughput(model, "h100-sxm", tp=tp, runtime=runtime, requests=500, seed=0,
                           scheduler={"scheduler_steps": steps, "max_num_seqs": 256}, **SHAPE)
    return r.output_tokens_per_s


def _sglang_tokens_per_s(runtime: str) -> float:
    return offline_throughput("llama-3.1-8b", "h100-sxm", runtime=runtime, requests=500, seed=0,
                              **RANDOM_4096_2048).output_tokens_per_s


def main() -> None:
    t0 = time.perf_counter()
    v06_1, v06_10 = _tokens_per_s("llama-3.1-70b", 4, "vllm-v0.6", 1), _tokens_per_s("llama-3.1-70b", 4, "vllm-v0.6", 10)
    v0 = _tokens_per_s("llama-3.1-70b", 4, "vllm-v0")
    sg03, sg04 = _sglang_tokens_per_s("sglang-v0.3"), _sglang_tokens_per_s("sglang")
    rows = [("vLLM 0.6.0 multi-step (10 vs 1 steps), Llama 70B 4x H100", v06_10 / v06_1, 1.28),
            ("vLLM 0.6.0 async output processing, Llama 70B 4x H100", v06_1 / v0, 1 / (1 - 0.087)),
            ("SGLang 0.4 overlap scheduler, Llama 3.1 8B 1x H100, random 4096/2048", sg04 / sg03, 1.10)]
    print(f"{'feature':70s} {'predicted':>9s} {'published':>9s}")
    for name, predicted, published in rows:
        print(f"{name:70s} {predicted:8.3f}x {published:8.3f}x")
    print(f"\n{time.perf_counter() - t0:.1f} s wall")


if __name__ == "__main__":
    main()
