"""The performance benchmarks of the pipeline's hot paths (the top layer: they build pieces of
every other domain from synthetic data, and nothing imports them)."""
