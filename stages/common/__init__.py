"""Code shared by the stage scripts, by domain, in the order data flows: core (params, layout,
errors), data, models, training, quantization, deployment, evaluation. Importable and
unit-tested, no side effects on import. README "Code map" says which stage uses what."""
