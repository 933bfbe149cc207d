"""Measuring a run: multi-label metrics, the INT8 evaluation on test, the visual report and the
performance benchmarks."""
