"""Request routing across replicas.

A router sees each replica as it is at the arrival time: the requests routed to it
and not yet completed, and its KV-cache load. Ties go to the lowest replica index.

* ``round_robin``: the i-th request goes to replica ``i mod R``.
* ``least_outstanding``: the replica with the fewest outstanding requests (queued or
  running), the "least outstanding requests" policy of common load balancers
  (e.g. Envoy's LEAST_REQUEST, AWS ALB).
* ``least_kv``: the replica with the lowest KV load, ``(blocks in use + blocks the
  queued prompts will need) / total blocks``, as in KV-aware LLM routers (e.g. the
  llm-d / vLLM production-stack KV-load scorers); ties by outstanding requests.

Inside a replica with pipeline parallelism, a request goes to the virtual engine
with the fewest outstanding requests (vLLM's virtual-engine assignment).
"""

from __future__ import annotations

from .replica import Replica


class Router:
    def __init__(self, policy: str, replicas: list[list[Replica]]) -> None:
        self.policy = policy
        self.replicas = replicas  # replica -> its engines (pp virtual engines)
        self._next = 0

    def _outstanding(self, engines: list[Replica], t: float) -> int:
        return sum(e.outstanding_at(t) for e in engines)

    def _kv_load(self, engines: list[Replica], t: float) -> float:
        return sum(e.kv_load_at(t) for e in engines) / len(engines)

    def pick_replica(self, t: float) -> int:
        n = len(self.replicas)
        if n == 1:
            return 0
        if self.policy == "round_robin":
            i = self._next
            self._next = (i + 1) % n
            return i
        if self.policy == "least_outstanding":
            return min(range(n), key=lambda i: (self._outstanding(self.replicas[i], t), i))
        return min(range(n), key=lambda i: (self._kv_load(self.replicas[i], t),
                                            self._outstanding(self.replicas[i], t), i))

    def route(self, t: float) -> Replica:
        engines = self.replicas[self.pick_replica(t)]
        if len(engines) == 1:
            return engines[0]
        return min(engines, key=lambda e: (e.outstanding_at(t), e.index))
