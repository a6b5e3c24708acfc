"""Loading a tradeops environment inside a flow."""

from __future__ import annotations

from dataclasses import dataclass

from blocks import TradeopsEnvironment
from tradeops.store.engine import resolve_store_url


@dataclass(frozen=True)
class LoadedEnvironment:
    name: str
    block: TradeopsEnvironment
    store_url: str


def load_environment(name: str) -> LoadedEnvironment:
    """The environment block `name`, and its ops store URL (TRADEOPS_DATABASE_URL wins)."""
    block = TradeopsEnvironment.load(name)
    configured = block.ops_store_url.get_secret_value() if block.ops_store_url else None
    return LoadedEnvironment(name, block, resolve_store_url(configured, block.data_dir))

