"""What the tests share: small data, the C app's build, git and DVC in a throw-away repository,
the import graph, the conformance corpus, and scripts the tests start in fresh processes."""
