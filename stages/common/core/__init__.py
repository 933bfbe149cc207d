"""What every stage needs before any domain code: params, errors, hashing, progress, the command
line and the folders a stage replaces whole."""
