"""Strategy A/B experiments (issues 6 and 17): the statistics engine and the decision matrix.

``statistics`` holds pure functions over per-trade PnL; ``decision`` turns their result into
promote / rollback / no-difference / inconclusive (terminal) or extend (until the experiment's
budget). Neither imports Prefect: task wrappers live elsewhere.
"""
