"""PostgreSQL statements of the sandbox platform, as named constants.

Names follow the operations runbooks (tables, the ``experiment_performance_summary``
materialized view, ``idx_experiments_status_created``), so flows written against the
runbooks work against the sandbox unchanged. Bulk rows are generated server side with
``generate_series`` and ``random()`` after ``setseed()``, never sent row by row.
"""

FIND_DATABASE = "SELECT 1 FROM pg_database WHERE datname = %s"

# Every user-visible relation outside the system schemas: a database holding any of
# these and no marker table is somebody else's, and is never touched.
LIST_USER_TABLES = """
SELECT table_schema || '.' || table_name
FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
  AND table_schema NOT LIKE 'pg_toast%%'
  AND table_schema NOT LIKE 'pg_temp%%'
ORDER BY 1
"""

MARKER_EXISTS = "SELECT to_regclass('tradeops_sandbox') IS NOT NULL"

SESSION_SETTINGS = (
    "SET TIME ZONE 'UTC'",
    "SET LOCAL synchronous_commit = off",
    "SET LOCAL maintenance_work_mem = '512MB'",
    "SET LOCAL work_mem = '64MB'",
    # parallel plans would make the order of random() calls non-deterministic
    "SET LOCAL max_parallel_workers_per_gather = 0",
)

SET_SEED = "SELECT setseed(%s)"

DROP_SANDBOX_OBJECTS = (
    "DROP MATERIALIZED VIEW IF EXISTS experiment_performance_summary CASCADE",
    "DROP TABLE IF EXISTS statistical_results, positions, regime_history, trades, experiments, strategies,"
    " order_queue, tradeops_sandbox CASCADE",
)

CREATE_MARKER = """
CREATE TABLE tradeops_sandbox (
    created_at timestamptz NOT NULL,
    seed       bigint      NOT NULL,
    scale      text        NOT NULL
)
"""
INSERT_MARKER = "INSERT INTO tradeops_sandbox (created_at, seed, scale) VALUES (%s, %s, %s)"

CREATE_STRATEGIES = """
CREATE TABLE strategies (
    strategy_id integer     PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    description text        NOT NULL,
    owner       text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'paused', 'retired')),
    created_at  timestamptz NOT NULL
)
"""
INSERT_STRATEGIES = "INSERT INTO strategies (strategy_id, name, description, owner, status, created_at) VALUES %s"

CREATE_EXPERIMENTS = """
CREATE TABLE experiments (
    experiment_id          integer          PRIMARY KEY,
    experiment_name        text             NOT NULL UNIQUE,
    strategy_id            integer          NOT NULL REFERENCES strategies (strategy_id),
    status                 text             NOT NULL
                           CHECK (status IN ('draft', 'active', 'completed', 'rolled_back')),
    control_params         jsonb            NOT NULL,
    variant_params         jsonb            NOT NULL,
    split                  text             NOT NULL,
    capital_allocation_pct double precision NOT NULL,
    start_date             timestamptz,
    end_date               timestamptz,
    created_at             timestamptz      NOT NULL
)
"""
INSERT_EXPERIMENTS = """
INSERT INTO experiments (experiment_id, experiment_name, strategy_id, status, control_params, variant_params,
                         split, capital_allocation_pct, start_date, end_date, created_at)
VALUES %s
"""
EXPERIMENTS_TEMPLATE = "(%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s)"

# Partitioned by month on ts; the primary key must include the partition key.
CREATE_TRADES = """
CREATE TABLE trades (
    trade_id      bigint           NOT NULL,
    experiment_id integer          NOT NULL,
    strategy_id   integer          NOT NULL,
    grp           text             NOT NULL CHECK (grp IN ('control', 'variant')),
    symbol        text             NOT NULL,
    side          text             NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity      integer          NOT NULL,
    price         double precision NOT NULL,
    pnl           double precision NOT NULL,
    ts            timestamptz      NOT NULL,
    pre_pnl       double precision NOT NULL  -- the same slot's PnL before the experiment (CUPED covariate)
) PARTITION BY RANGE (ts)
"""
# Formatted with psycopg2.sql: {partition} and the two bounds as literals.
CREATE_TRADES_PARTITION = "CREATE TABLE {partition} PARTITION OF trades FOR VALUES FROM ({lower}) TO ({upper})"

# One experiment group. Uniforms are drawn in a fenced subquery (OFFSET 0) so each
# random() runs exactly once per row, in generate_series order; PnL is a normal
# mixture (Box-Muller) for fat tails; ts increases with trade_id inside the group. The pre-period
# PnL uses Box-Muller's second normal (the sine), so it needs no extra random() and leaves the
# stream, and every other column, as before.
INSERT_TRADE_BATCH = """
INSERT INTO trades (trade_id, experiment_id, strategy_id, grp, symbol, side, quantity, price, pnl, ts, pre_pnl)
SELECT %(base)s + g,
       %(experiment_id)s,
       %(strategy_id)s,
       %(grp)s,
       (%(symbols)s::text[])[1 + floor(u_sym * %(n_symbols)s)::int],
       CASE WHEN u_side < 0.5 THEN 'buy' ELSE 'sell' END,
       (1 + floor(u_qty * 50))::int * 10,
       round((20 + u_px * 480)::numeric, 2)::double precision,
       %(mean)s + %(sd)s * CASE WHEN u_mix < %(tail_prob)s THEN %(tail_mult)s ELSE 1 END
                  * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2),
       %(start)s::timestamptz + ((g - 1 + u_ts) * %(step_seconds)s) * interval '1 second',
       %(pre_mean)s + %(sd)s * CASE WHEN u_mix < %(tail_prob)s THEN %(tail_mult)s ELSE 1 END
                      * sqrt(-2 * ln(1 - u1)) * (%(rho)s * cos(2 * pi() * u2) + %(rho_rest)s * sin(2 * pi() * u2))
FROM (
    SELECT g, random() AS u1, random() AS u2, random() AS u_mix, random() AS u_sym,
           random() AS u_side, random() AS u_qty, random() AS u_px, random() AS u_ts
    FROM generate_series(1, %(n)s) AS g
    OFFSET 0
) AS u
"""

# Planted scenarios: shift a group so its sample mean is exactly the planned mean
# (numeric average, so the result does not depend on summation order).
RECENTER_TRADE_BATCH = """
UPDATE trades
SET pnl = pnl + (%(mean)s - (SELECT avg(pnl::numeric) FROM trades
                              WHERE experiment_id = %(experiment_id)s AND grp = %(grp)s)::double precision)
WHERE experiment_id = %(experiment_id)s AND grp = %(grp)s
"""

CREATE_REGIME_HISTORY = """
CREATE TABLE regime_history (
    ts         timestamptz      PRIMARY KEY,
    regime     text             NOT NULL CHECK (regime IN ('bull', 'bear', 'sideways', 'high_volatility')),
    confidence double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1)
)
"""
INSERT_REGIME_HISTORY = "INSERT INTO regime_history (ts, regime, confidence) VALUES %s"

# The platform's order queue: processed_at stays NULL while an order waits (the deep health check
# grades how many wait and for how long).
CREATE_ORDER_QUEUE = """
CREATE TABLE order_queue (
    queue_id     bigint      PRIMARY KEY,
    order_ref    text        NOT NULL,
    enqueued_at  timestamptz NOT NULL,
    processed_at timestamptz
)
"""
INSERT_ORDER_QUEUE = "INSERT INTO order_queue (queue_id, order_ref, enqueued_at, processed_at) VALUES %s"

CREATE_POSITIONS = """
CREATE TABLE positions (
    position_id      bigint           PRIMARY KEY,
    strategy_id      integer          NOT NULL REFERENCES strategies (strategy_id),
    symbol           text             NOT NULL,
    quantity         integer          NOT NULL,
    avg_price        double precision NOT NULL,
    market_value     double precision NOT NULL,
    unrealized_pnl   double precision NOT NULL,
    opened_at        timestamptz      NOT NULL,
    updated_at       timestamptz      NOT NULL,
    legacy_desk_code text             NOT NULL  -- kept for an old report nobody runs
)
"""
INSERT_POSITIONS = """
INSERT INTO positions (position_id, strategy_id, symbol, quantity, avg_price, market_value, unrealized_pnl,
                       opened_at, updated_at, legacy_desk_code)
SELECT g,
       1 + floor(u_strat * %(n_strategies)s)::int,
       (%(symbols)s::text[])[1 + floor(u_sym * %(n_symbols)s)::int],
       qty,
       px,
       round((qty * px * (1 + (u_move - 0.5) * 0.1))::numeric, 2)::double precision,
       round((qty * px * (u_move - 0.5) * 0.1)::numeric, 2)::double precision,
       %(now)s::timestamptz - (u_age * %(max_age_days)s) * interval '1 day',
       %(now)s::timestamptz - (u_upd * 3600) * interval '1 second',
       'DESK-' || lpad((1 + floor(u_desk * 40))::int::text, 3, '0')
FROM (
    SELECT g, random() AS u_strat, random() AS u_sym,
           ((floor(random() * 200)::int - 100) * 10) AS qty,
           round((20 + random() * 480)::numeric, 2)::double precision AS px,
           random() AS u_move, random() AS u_age, random() AS u_upd, random() AS u_desk
    FROM generate_series(1, %(n)s) AS g
    OFFSET 0
) AS u
"""

CREATE_STATISTICAL_RESULTS = """
CREATE TABLE statistical_results (
    result_id                integer          PRIMARY KEY,
    experiment_id            integer          NOT NULL REFERENCES experiments (experiment_id),
    p_value                  double precision NOT NULL,
    statistical_significance double precision NOT NULL,
    effect_size              double precision NOT NULL,
    business_impact_score    double precision NOT NULL,
    computed_at              timestamptz      NOT NULL
)
"""
INSERT_STATISTICAL_RESULTS = """
INSERT INTO statistical_results (result_id, experiment_id, p_value, statistical_significance, effect_size,
                                 business_impact_score, computed_at)
VALUES %s
"""

# Built after the load: faster than maintaining them row by row.
CREATE_INDEXES = (
    "ALTER TABLE trades ADD PRIMARY KEY (trade_id, ts)",
    "ALTER TABLE trades ADD CONSTRAINT trades_experiment_fk"
    " FOREIGN KEY (experiment_id) REFERENCES experiments (experiment_id)",
    # the runbook's index for "active experiments, newest first"
    "CREATE INDEX idx_experiments_status_created ON experiments (status, created_at DESC)",
    "CREATE INDEX idx_trades_experiment_ts ON trades (experiment_id, ts)",
    # planted: a duplicate, idx_trades_experiment is a prefix of idx_trades_experiment_ts
    "CREATE INDEX idx_trades_experiment ON trades (experiment_id)",
    "CREATE INDEX idx_positions_strategy ON positions (strategy_id)",
    # planted: never used, no query filters or sorts on legacy_desk_code
    "CREATE INDEX idx_positions_unused ON positions (legacy_desk_code)",
    "CREATE INDEX idx_statistical_results_experiment ON statistical_results (experiment_id)",
)

CREATE_PERFORMANCE_SUMMARY = """
CREATE MATERIALIZED VIEW experiment_performance_summary AS
SELECT e.experiment_id,
       e.experiment_name,
       e.strategy_id,
       e.status,
       t.grp,
       count(*)                              AS trade_count,
       avg(t.pnl)                            AS mean_pnl,
       stddev_samp(t.pnl)                    AS stddev_pnl,
       sum(t.pnl)                            AS total_pnl,
       avg(CASE WHEN t.pnl > 0 THEN 1.0 ELSE 0.0 END) AS win_rate,
       min(t.ts)                             AS first_trade_at,
       max(t.ts)                             AS last_trade_at
FROM experiments e
JOIN trades t ON t.experiment_id = e.experiment_id
GROUP BY e.experiment_id, e.experiment_name, e.strategy_id, e.status, t.grp
"""
# REFRESH MATERIALIZED VIEW CONCURRENTLY needs a unique index on the view.
CREATE_PERFORMANCE_SUMMARY_INDEX = (
    "CREATE UNIQUE INDEX experiment_performance_summary_pk ON experiment_performance_summary (experiment_id, grp)"
)

# Only the sandbox's own relations: other tables in the database are not ours to touch.
ANALYZE = (
    "ANALYZE strategies, experiments, trades, regime_history, positions, statistical_results,"
    " experiment_performance_summary, order_queue, tradeops_sandbox"
)

# A typical day's read workload, run with sequential scans disabled so every index
# except the planted unused one shows idx_scan > 0 in pg_stat_user_indexes.
WARM_UP_QUERIES = (
    "SET enable_seqscan = off",
    "SET enable_bitmapscan = off",
    "SELECT experiment_id FROM experiments WHERE status = 'active' ORDER BY created_at DESC LIMIT 20",
    "SELECT * FROM experiments WHERE experiment_id = 1",
    "SELECT * FROM strategies WHERE strategy_id = 1",
    "SELECT * FROM strategies WHERE name = 'momentum_alpha'",
    "SELECT * FROM experiments WHERE experiment_name = 'momentum_alpha-clear-winner'",
    # no ts bound and no matching rows: every partition's index is scanned
    "SELECT min(ts), max(ts) FROM trades WHERE experiment_id = 0",
    "SELECT count(*) FROM trades WHERE experiment_id = 1",
    "SELECT count(*) FROM trades WHERE trade_id = 1",
    "SELECT count(*) FROM positions WHERE strategy_id = 1",
    "SELECT * FROM positions WHERE position_id = 1",
    "SELECT * FROM regime_history ORDER BY ts DESC LIMIT 1",
    "SELECT * FROM order_queue WHERE queue_id = 1",
    "SELECT * FROM statistical_results WHERE experiment_id = 6",
    "SELECT * FROM statistical_results WHERE result_id = 1",
    "SELECT * FROM experiment_performance_summary WHERE experiment_id = 1 AND grp = 'control'",
    "RESET enable_seqscan",
    "RESET enable_bitmapscan",
)
