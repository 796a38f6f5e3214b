"""Regenerating tables, plots, verdicts and READMEs from stored results, without
retraining: `ablate report`.

Reads the store only; never imports the training code or Lightning, so it stays fast
and works on a machine that has only the results.
"""
