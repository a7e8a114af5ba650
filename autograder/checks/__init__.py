"""Check helpers shared by every assignment: what a check calls to inspect and measure a
student's network through the kernel channel, each giving its verdict as ``CheckFailed``
with a reason a student can act on.

- ``layers``: a network against a declared layer table (types, sizes, strides, output
  shapes, parameter counts), read from the model's own forward pass;
- ``training``: optimisers (type, settings, which parameters they update), predictions of
  a model on inputs the kernel holds or is given, and "trained further" (a copy of the
  student's model trained on by the grader barely improves when training had converged).
"""
