"""Offline evaluation: python -m streamssm.eval kws ..."""
