"""Training: the device and strategy runtime, phases and resume, the distillation loss and the
one driver that runs the teacher, student and QAT recipes."""
