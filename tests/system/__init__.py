"""System tests: whole processes, process faults, SQS outages, the fault proxy, the soak and
the benchmarks; slow. Run with ``python -m pytest tests/system``."""
