"""One module per job. `FLOWS` maps each stable kebab-case flow name to its function's entrypoint;
every other fact about a flow is its `FlowSpec` in flows/registry.py."""

from __future__ import annotations

import importlib
from typing import Any

from flows.registry import REGISTRY

FLOWS: dict[str, str] = {spec.name: spec.entrypoint for spec in REGISTRY}


def load_flow(name: str) -> Any:
    module, _, attribute = FLOWS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
