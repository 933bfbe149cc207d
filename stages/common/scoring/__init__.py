"""Scoring decisions: the multi-label metrics and the decision-threshold search. Plain numpy
under every layer that scores (training's callbacks and teacher check, quantisation's fidelity,
deployment's thresholds, evaluation)."""
