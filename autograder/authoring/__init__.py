"""Course staff's proofs of a rubric: broken variants that must lose their items, full-size verification."""
