"""Strategy A/B experiments (issue 6): the statistics engine and the decision matrix.

``statistics`` holds pure functions over per-trade PnL; ``decision`` turns their result into
promote / rollback / no-difference / extend. Neither imports Prefect: task wrappers live elsewhere.
"""
