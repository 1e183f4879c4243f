"""Benchmarks (`make bench`): they print figures next to their ceilings; never part of the tests."""
