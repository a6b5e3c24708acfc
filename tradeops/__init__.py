"""tradeops: operations automation for trading platforms, built as Prefect flows."""

__version__ = "0.1.0"
