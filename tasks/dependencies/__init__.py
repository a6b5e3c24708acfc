"""Dependency updates (runbook 001 "Dependency Management"): scan, conservative plan, trial in a
scratch virtualenv, new pins on a branch, or a rollback naming the package that broke."""
