"""What sequential compression needs of a model: its linear layers by (layer, name), read and replaced."""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class LayeredWeights:
    """Mixin for a model whose ``weights`` dict names layer ``i``'s linear ``name`` ``{prefix}{i}.{name}.weight``
    (PyTorch layout ``(out, in)``); ``linears`` lists ``(name, input it reads)`` in forward order."""

    prefix: ClassVar[str]
    linears: ClassVar[tuple[tuple[str, str], ...]]
    weights: dict[str, np.ndarray]

    def linear_key(self, layer: int, name: str) -> str:
        return f"{self.prefix}{layer}.{name}"

    def linear(self, layer: int, name: str) -> np.ndarray:
        return self.weights[self.linear_key(layer, name) + ".weight"]

    def with_linear(self, layer: int, name: str, weight: np.ndarray) -> None:
        self.weights[self.linear_key(layer, name) + ".weight"] = weight.astype(np.float32)
