"""The teacher and student architectures, the student with fake quantisation for QAT, and their
offline ImageNet weights."""
