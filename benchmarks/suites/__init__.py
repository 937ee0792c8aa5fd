"""Benchmark suites: one module per op family, each defining ``cases(quick) -> list[Case]``."""
