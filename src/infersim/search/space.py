"""The search space: named parameters (categorical, integer, float, log-scaled, conditional).

A *configuration* is a plain ``dict`` from every parameter name to a value
(``str``, ``int``, ``float`` or ``bool``). Parameters are ordered: a
conditional parameter (``when``) depends on parameters before it, or on an
attribute of the configuration's model (``model.is_moe``) looked up through the
``lookup`` function the study supplies. An inactive parameter takes its
``default``, so every configuration has every key and two configurations that
differ only in inactive parameters are the same point.

Grid points: every value of a categorical; every ``step`` of an integer range,
or for a log-scaled one the doublings ``low, 2 low, 4 low, ...`` and ``high``;
``grid_points`` evenly (log-evenly) spaced values of a float range.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

Value = str | int | float | bool
Config = dict[str, Value]
#: resolves a condition key such as "model.is_moe" for a (partial) configuration
Lookup = Callable[[str, Config], Value]


@dataclass(frozen=True)
class Condition:
    """Active when every ``key`` has one of its ``values`` (key: a parameter or ``model.<attr>``)."""

    clauses: tuple[tuple[str, tuple[Value, ...]], ...]

    def holds(self, config: Config, lookup: Lookup | None) -> bool:
        for key, allowed in self.clauses:
            value = config[key] if key in config else (lookup(key, config) if lookup else None)
            if value not in allowed:
                return False
        return True


@dataclass(frozen=True)
class Param:
    name: str
    when: Condition | None = field(default=None, kw_only=True)
    default: Value | None = field(default=None, kw_only=True)

    def grid(self) -> list[Value]:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Value:
        raise NotImplementedError

    @property
    def is_fixed(self) -> bool:
        return False


@dataclass(frozen=True)
class Categorical(Param):
    values: tuple[Value, ...] = ()

    def grid(self) -> list[Value]:
        return list(self.values)

    def sample(self, rng: np.random.Generator) -> Value:
        return self.values[int(rng.integers(len(self.values)))]

    @property
    def is_fixed(self) -> bool:
        return len(self.values) == 1 and self.when is None


@dataclass(frozen=True)
class IntRange(Param):
    low: int = 0
    high: int = 0
    step: int = 1
    log: bool = False

    def grid(self) -> list[Value]:
        if not self.log:
            return list(range(self.low, self.high + 1, self.step))
        out, v = [], self.low
        while v < self.high:
            out.append(v)
            v *= 2
        return out + [self.high]

    def sample(self, rng: np.random.Generator) -> Value:
        if self.log:
            # log-uniform over [low - 0.5, high + 0.5], rounded (each integer gets its log-width)
            lo, hi = math.log(self.low - 0.5 if self.low > 1 else 0.5), math.log(self.high + 0.5)
            v = int(round(math.exp(rng.uniform(lo, hi))))
            return min(max(v, self.low), self.high)
        n = (self.high - self.low) // self.step + 1
        return self.low + self.step * int(rng.integers(n))


@dataclass(frozen=True)
class FloatRange(Param):
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    grid_points: int = 5

    def grid(self) -> list[Value]:
        space = np.geomspace if self.log else np.linspace
        return [float(v) for v in space(self.low, self.high, self.grid_points)]

    def sample(self, rng: np.random.Generator) -> Value:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]
    lookup: Lookup | None = field(default=None, compare=False)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def varying(self) -> list[str]:
        """Parameters that can take more than one value."""
        return [p.name for p in self.params if not p.is_fixed]

    def is_active(self, param: Param, partial: Config) -> bool:
        return param.when is None or param.when.holds(partial, self.lookup)

    def grid(self) -> Iterator[Config]:
        """Every grid point once, in a fixed order (later parameters vary fastest)."""
        params = self.params
        if all(p.when is None for p in params):
            names = [p.name for p in params]
            for values in itertools.product(*(p.grid() for p in params)):
                yield dict(zip(names, values))
            return

        def walk(k: int, partial: Config) -> Iterator[Config]:
            if k == len(params):
                yield dict(partial)
                return
            p = params[k]
            values = p.grid() if self.is_active(p, partial) else [p.default]
            for v in values:
                partial[p.name] = v
                yield from walk(k + 1, partial)
            partial.pop(p.name, None)

        yield from walk(0, {})

    def grid_size(self) -> int:
        """Number of grid points (walks the conditional structure; cheap for unconditional spaces)."""
        if all(p.when is None for p in self.params):
            return math.prod(len(p.grid()) for p in self.params)
        return sum(1 for _ in self.grid())

    def sample(self, rng: np.random.Generator) -> Config:
        config: Config = {}
        for p in self.params:
            config[p.name] = p.sample(rng) if self.is_active(p, config) else p.default
        return config


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical_json(config: Config) -> str:
    """The configuration as compact JSON with sorted keys (stable across runs and machines)."""
    return _CANONICAL.encode(config)


def point_key(namespace: str, config_json: str) -> str:
    """Stable identity of a point: hash of the study's namespace and the canonical configuration."""
    return hashlib.blake2b(f"{namespace}\n{config_json}".encode(), digest_size=16).hexdigest()
