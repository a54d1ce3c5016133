"""Names the command line offers before any device is loaded (kept free of heavy imports)."""

#: kernel sets a catalog device can be calibrated on beside its default profile
#: (``profiles/<set>/<device>.yaml``; ``NAME@vllm``): a serving engine's own measured kernels
#: (aiconfigurator-core's framework names), or one release of an engine (``trtllm-1.0``:
#: TensorRT-LLM 1.0, the release MLPerf Inference v5.1's NVIDIA harness ran); where each set's
#: tables come from: :mod:`infersim.fidelity.kernel_sets`. Each set's serving engine (aiconfigurator's
#: framework name, a validation row's ``engine``)
KERNEL_SET_ENGINES: dict[str, str] = {"vllm": "vllm", "sglang": "sglang", "trtllm-1.0": "trtllm"}
ENGINE_KERNELS: tuple[str, ...] = tuple(KERNEL_SET_ENGINES)
#: efficiency models of catalog devices: their shipped profiles ("calibrated": the default ones,
#: fitted on TensorRT-LLM's kernels where measured), a profile fitted on one engine's own
#: kernels, or the spec sheet alone
EFFICIENCY_CHOICES: tuple[str, ...] = ("calibrated", *ENGINE_KERNELS, "spec")


def known_efficiency(value: str) -> str:
    """``value`` if it names an efficiency model, else ValueError (for file validators)."""
    if value not in EFFICIENCY_CHOICES:
        raise ValueError(f"unknown efficiency model '{value}'; expected one of {', '.join(EFFICIENCY_CHOICES)}")
    return value


def known_kernel_set(value: str) -> str:
    """``value`` if it names a kernel set of ``ENGINE_KERNELS``, else ValueError (for file validators)."""
    if value not in ENGINE_KERNELS:
        raise ValueError(f"unknown kernel set '{value}'; expected one of {', '.join(ENGINE_KERNELS)}")
    return value
