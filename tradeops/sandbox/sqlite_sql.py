"""SQLite statements of the sandbox platform, as named constants.

Same table, column and index names as on PostgreSQL so flows can use one set of
queries. Differences forced by SQLite: JSON is TEXT, timestamps are TEXT in UTC
(``YYYY-MM-DD HH:MM:SS.ffffff``, the format SQLAlchemy uses), ``trades`` is not
partitioned, and ``experiment_performance_summary`` is a plain view (SQLite has no
materialized views).
"""

PRAGMAS = (
    "PRAGMA journal_mode = OFF",  # built in a scratch file, moved into place when done
    "PRAGMA synchronous = OFF",
    "PRAGMA foreign_keys = ON",
)

CREATE_TABLES = (
    """
    CREATE TABLE tradeops_sandbox (
        created_at TEXT    NOT NULL,
        seed       INTEGER NOT NULL,
        scale      TEXT    NOT NULL
    )
    """,
    """
    CREATE TABLE strategies (
        strategy_id INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL UNIQUE,
        description TEXT    NOT NULL,
        owner       TEXT    NOT NULL,
        status      TEXT    NOT NULL CHECK (status IN ('active', 'paused', 'retired')),
        created_at  TEXT    NOT NULL
    )
    """,
    """
    CREATE TABLE experiments (
        experiment_id          INTEGER PRIMARY KEY,
        experiment_name        TEXT    NOT NULL UNIQUE,
        strategy_id            INTEGER NOT NULL REFERENCES strategies (strategy_id),
        status                 TEXT    NOT NULL
                               CHECK (status IN ('draft', 'active', 'completed', 'rolled_back')),
        control_params         TEXT    NOT NULL,
        variant_params         TEXT    NOT NULL,
        split                  TEXT    NOT NULL,
        capital_allocation_pct REAL    NOT NULL,
        start_date             TEXT,
        end_date               TEXT,
        created_at             TEXT    NOT NULL
    )
    """,
    """
    CREATE TABLE trades (
        trade_id      INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
        strategy_id   INTEGER NOT NULL,
        grp           TEXT    NOT NULL CHECK (grp IN ('control', 'variant')),
        symbol        TEXT    NOT NULL,
        side          TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
        quantity      INTEGER NOT NULL,
        price         REAL    NOT NULL,
        pnl           REAL    NOT NULL,
        ts            TEXT    NOT NULL,
        pre_pnl       REAL    NOT NULL
    )
    """,
    """
    CREATE TABLE regime_history (
        ts         TEXT PRIMARY KEY,
        regime     TEXT NOT NULL CHECK (regime IN ('bull', 'bear', 'sideways', 'high_volatility')),
        confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1)
    )
    """,
    """
    CREATE TABLE order_queue (
        queue_id     INTEGER PRIMARY KEY,
        order_ref    TEXT    NOT NULL,
        enqueued_at  TEXT    NOT NULL,
        processed_at TEXT
    )
    """,
    """
    CREATE TABLE positions (
        position_id      INTEGER PRIMARY KEY,
        strategy_id      INTEGER NOT NULL REFERENCES strategies (strategy_id),
        symbol           TEXT    NOT NULL,
        quantity         INTEGER NOT NULL,
        avg_price        REAL    NOT NULL,
        market_value     REAL    NOT NULL,
        unrealized_pnl   REAL    NOT NULL,
        opened_at        TEXT    NOT NULL,
        updated_at       TEXT    NOT NULL,
        legacy_desk_code TEXT    NOT NULL
    )
    """,
    """
    CREATE TABLE statistical_results (
        result_id                INTEGER PRIMARY KEY,
        experiment_id            INTEGER NOT NULL REFERENCES experiments (experiment_id),
        p_value                  REAL    NOT NULL,
        statistical_significance REAL    NOT NULL,
        effect_size              REAL    NOT NULL,
        business_impact_score    REAL    NOT NULL,
        computed_at              TEXT    NOT NULL
    )
    """,
)

INSERT_MARKER = "INSERT INTO tradeops_sandbox (created_at, seed, scale) VALUES (?, ?, ?)"
INSERT_STRATEGIES = "INSERT INTO strategies VALUES (?, ?, ?, ?, ?, ?)"
INSERT_EXPERIMENTS = "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_TRADES = "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_REGIME_HISTORY = "INSERT INTO regime_history VALUES (?, ?, ?)"
INSERT_ORDER_QUEUE = "INSERT INTO order_queue VALUES (?, ?, ?, ?)"
INSERT_POSITIONS = "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_STATISTICAL_RESULTS = "INSERT INTO statistical_results VALUES (?, ?, ?, ?, ?, ?, ?)"

CREATE_INDEXES = (
    "CREATE INDEX idx_experiments_status_created ON experiments (status, created_at DESC)",
    "CREATE INDEX idx_trades_experiment_ts ON trades (experiment_id, ts)",
    # planted: a duplicate, a prefix of idx_trades_experiment_ts
    "CREATE INDEX idx_trades_experiment ON trades (experiment_id)",
    "CREATE INDEX idx_positions_strategy ON positions (strategy_id)",
    # planted: never used, no query touches legacy_desk_code
    "CREATE INDEX idx_positions_unused ON positions (legacy_desk_code)",
    "CREATE INDEX idx_statistical_results_experiment ON statistical_results (experiment_id)",
)

CREATE_PERFORMANCE_SUMMARY = """
CREATE VIEW experiment_performance_summary AS
SELECT e.experiment_id,
       e.experiment_name,
       e.strategy_id,
       e.status,
       t.grp,
       count(*)                                        AS trade_count,
       avg(t.pnl)                                      AS mean_pnl,
       sqrt((sum(t.pnl * t.pnl) - sum(t.pnl) * sum(t.pnl) / count(*)) / nullif(count(*) - 1, 0)) AS stddev_pnl,
       sum(t.pnl)                                      AS total_pnl,
       avg(CASE WHEN t.pnl > 0 THEN 1.0 ELSE 0.0 END)  AS win_rate,
       min(t.ts)                                       AS first_trade_at,
       max(t.ts)                                       AS last_trade_at
FROM experiments e
JOIN trades t ON t.experiment_id = e.experiment_id
GROUP BY e.experiment_id, e.experiment_name, e.strategy_id, e.status, t.grp
"""

ANALYZE = "ANALYZE"
