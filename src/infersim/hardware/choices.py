"""Names the command line offers before any device is loaded (kept free of heavy imports)."""

#: serving engines whose own measured kernels a catalog device can be calibrated on, beside its
#: default profile (``profiles/<engine>/<device>.yaml``; ``NAME@vllm``): aiconfigurator-core's
#: framework names
ENGINE_KERNELS: tuple[str, ...] = ("vllm", "sglang")
#: efficiency models of catalog devices: their shipped profiles ("calibrated": the default ones,
#: fitted on TensorRT-LLM's kernels where measured), a profile fitted on one engine's own
#: kernels, or the spec sheet alone
EFFICIENCY_CHOICES: tuple[str, ...] = ("calibrated", *ENGINE_KERNELS, "spec")


def known_efficiency(value: str) -> str:
    """``value`` if it names an efficiency model, else ValueError (for file validators)."""
    if value not in EFFICIENCY_CHOICES:
        raise ValueError(f"unknown efficiency model '{value}'; expected one of {', '.join(EFFICIENCY_CHOICES)}")
    return value
