"""Loading a tradeops environment inside a flow."""

from __future__ import annotations

from dataclasses import dataclass

from blocks import TradeopsEnvironment


@dataclass(frozen=True)
class LoadedEnvironment:
    name: str
    block: TradeopsEnvironment
    store_url: str


def load_environment(name: str) -> LoadedEnvironment:
    """The environment block `name`, and its ops store URL (TRADEOPS_DATABASE_URL wins)."""
    block = TradeopsEnvironment.load(name)
    return LoadedEnvironment(name, block, block.store_url())

