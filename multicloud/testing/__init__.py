"""Test support: a stateful in-memory provider and the provider contract suite."""

from multicloud.testing.memory import MemoryCloud, MemoryProvider

__all__ = ["MemoryCloud", "MemoryProvider"]
