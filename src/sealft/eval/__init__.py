"""Evaluation: prompt sets, batched generation, the refusal detector, held-out loss and
the pairwise judge, brought together by `Evaluator`."""
