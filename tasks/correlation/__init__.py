"""The strategy return correlation matrix (issue 19, runbook 001 "Correlation Matrix Updates"):
``returns`` turns the trades of a 30-day window into hourly returns per strategy, ``matrix``
computes and validates the matrix (symmetric, unit diagonal, in [-1, 1], positive semi-definite,
100 points per pair, drift against the live matrix), ``versions`` keeps every promoted matrix as a
commit of a git repository (the live one at HEAD, rollback to the one before)."""
