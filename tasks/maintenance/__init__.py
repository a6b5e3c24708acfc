"""Weekly PostgreSQL maintenance: the read-only health report lives in `checks` (one module per
concern, PgHero style) and `report`; its limits, as data, in `thresholds`.

Nothing is imported here, so importing one submodule never drags in the others.
"""
