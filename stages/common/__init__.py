"""Code shared by the stage scripts and the tools, by domain. Importable and unit-tested, no side
effects on import. docs/code_map.md says which stage uses what.

The domains are layers, in the order data flows: a module imports from its own layer and the ones
before it, never from a later one (tests/stages/test_import_layers.py checks every import, lazy ones
included). ``scoring`` (metrics, threshold search) sits low because training, quantisation,
deployment and evaluation all score decisions the same way; ``benchmarking`` sits on top because
it builds pieces of every other layer from synthetic data.
"""

LAYERS = ("core", "scoring", "data", "models", "training", "quantization", "deployment",
          "evaluation", "benchmarking")
