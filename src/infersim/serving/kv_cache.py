"""Paged KV cache of one replica: block accounting, watermark, prefix caching with hit counts.

Follows vLLM's PagedAttention block manager (Kwon et al., "Efficient Memory Management
for Large Language Model Serving with PagedAttention", SOSP 2023): the cache is
``total_blocks`` blocks of ``block_size`` tokens; a request holds
``ceil(kv_tokens / block_size)`` blocks; admitting a request must leave
``watermark_blocks`` free (vLLM's ``watermark``, default 1% of the blocks), while
decode appends may use the last free block.

Only counts are kept (which block holds what does not change any time or metric).

Prefix caching (vLLM's automatic prefix caching) is modeled per shared-prefix group:
group ``g`` has ``cached[g]`` full blocks of its shared prefix resident. A request of
the group reuses ``min(cached[g], (prompt - 1) // block_size)`` blocks (at least one
prompt token is always computed, as in vLLM) and references the group while it runs.
When the last request referencing a group leaves, the group's blocks stay resident but
become *evictable*: they count as available and are reclaimed least-recently-released
first when an allocation needs them (vLLM's LRU evictor). A request that computed the
prefix itself donates its prefix blocks to the group when its prefill completes.
"""

from __future__ import annotations

from collections import OrderedDict

from ..errors import InfersimError


class KVCache:
    """Block counts of one replica's KV cache. Invariant: ``used + free + evictable == total_blocks``."""

    __slots__ = ("total_blocks", "block_size", "watermark_blocks", "free", "prefix_caching", "cached",
                 "refs", "lru", "evictable", "hit_tokens", "lookup_tokens", "evicted_blocks")

    def __init__(self, total_blocks: int, block_size: int, watermark: float = 0.01,
                 prefix_caching: bool = False) -> None:
        if total_blocks < 1:
            raise InfersimError(f"the KV cache has no room ({total_blocks} blocks)")
        self.total_blocks = int(total_blocks)
        self.block_size = int(block_size)
        self.watermark_blocks = int(watermark * total_blocks)
        self.free = self.total_blocks
        self.prefix_caching = prefix_caching
        self.cached: dict[int, int] = {}  # group -> resident full prefix blocks
        self.refs: dict[int, int] = {}  # group -> running requests referencing its blocks
        self.lru: OrderedDict[int, None] = OrderedDict()  # unreferenced groups with resident blocks, oldest first
        self.evictable = 0
        self.hit_tokens = 0
        self.lookup_tokens = 0
        self.evicted_blocks = 0

    @property
    def used(self) -> int:
        """Blocks held by requests (including referenced shared prefix blocks)."""
        return self.total_blocks - self.free - self.evictable

    @property
    def available(self) -> int:
        """Blocks an allocation can get: free ones plus evictable cached prefix blocks."""
        return self.free + self.evictable

    def can_admit(self, blocks: int) -> bool:
        """Whether a new request needing ``blocks`` may be admitted (keeps the watermark free)."""
        return self.free + self.evictable - blocks >= self.watermark_blocks

    def allocate(self, blocks: int) -> None:
        if blocks > self.free:
            self._evict(blocks - self.free)
        self.free -= blocks

    def release(self, blocks: int) -> None:
        self.free += blocks

    def _evict(self, blocks: int) -> None:
        while blocks > 0:
            if not self.lru:
                raise AssertionError("KV cache over-allocated")  # callers check availability first
            g = next(iter(self.lru))
            take = min(self.cached[g], blocks)
            self.cached[g] -= take  # the group's tail blocks go first: what stays is still a prefix
            self.evictable -= take
            self.free += take
            self.evicted_blocks += take
            blocks -= take
            if self.cached[g] == 0:
                del self.lru[g]

    # ----- prefix groups ----------------------------------------------------------------------
    def lookup(self, group: int, prompt_tokens: int) -> int:
        """Cached prefix blocks a new request of ``group`` with ``prompt_tokens`` can reuse."""
        if not self.prefix_caching or group < 0:
            return 0
        return min(self.cached.get(group, 0), (prompt_tokens - 1) // self.block_size)

    def pin_cost(self, group: int, hit_blocks: int) -> int:
        """Evictable blocks that referencing ``group`` would take out of the available pool."""
        if hit_blocks <= 0 or self.refs.get(group, 0) > 0:
            return 0
        return self.cached.get(group, 0)

    def acquire(self, group: int, hit_blocks: int, prompt_tokens: int) -> None:
        """A request of ``group`` is admitted reusing ``hit_blocks`` (counts the hit)."""
        if not self.prefix_caching or group < 0:
            return
        self.lookup_tokens += prompt_tokens
        if hit_blocks <= 0:
            return
        self.hit_tokens += hit_blocks * self.block_size
        self._ref(group)

    def _ref(self, group: int) -> None:
        n = self.refs.get(group, 0)
        if n == 0 and group in self.lru:
            del self.lru[group]
            self.evictable -= self.cached[group]
        self.refs[group] = n + 1

    def unref(self, group: int) -> None:
        """A request that referenced ``group``'s blocks leaves the replica."""
        n = self.refs[group] - 1
        self.refs[group] = n
        if n == 0 and self.cached.get(group, 0) > 0:
            self.lru[group] = None
            self.evictable += self.cached[group]

    def donate(self, group: int, shared_blocks: int, prefix_blocks: int) -> int:
        """A request that references ``shared_blocks`` of ``group`` finished computing the group's
        ``prefix_blocks`` full prefix blocks: they become the group's cached blocks. Returns the
        request's new shared block count."""
        if not self.prefix_caching or group < 0 or prefix_blocks <= 0:
            return shared_blocks
        cached = self.cached.get(group, 0)
        if cached >= prefix_blocks or shared_blocks != cached:
            return shared_blocks  # someone else already cached (more of) it; keep private copies
        if shared_blocks == 0:
            self._ref(group)
        self.cached[group] = prefix_blocks  # ownership moves from the request to the group
        return prefix_blocks
