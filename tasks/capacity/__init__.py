"""Capacity planning (issue 19, runbooks 002 "Capacity Planning", 004 quarterly review).

``sizes`` measures what grows (databases and their largest tables, disks, git repositories,
backup sets) and records it in the ops store at every health-check and backup run; ``forecast``
fits a robust trend per series (Theil-Sen with its interval) and says when a disk reaches 80% and
90%; ``report`` turns that into the report's tables and runbook 002's recommendations.
"""
