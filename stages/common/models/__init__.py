"""The teacher and student architectures, and their offline ImageNet weights."""
