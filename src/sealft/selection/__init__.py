"""Ranking the fine-tuning data: the SEAL selector and its bilevel trainer, the baselines'
rankings, and the method table of `seal run`."""
