"""User tools beside the pipeline: the seed's command line, predict, the letterbox and PPM helpers,
presets, the benchmarks and the hard benchmark's data. Run them as ``python -m tools.<name>`` or
``python tools/<name>.py``. The DVC stages are in ``stages/``."""
