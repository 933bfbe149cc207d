"""Code shared by the stage scripts: importable and unit-tested, no side effects on import."""
