"""Loading a tradeops environment inside a flow, and naming who the run acts as."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext

from blocks import TradeopsEnvironment
from tasks.access import current_actor

USER_TAG = "user:"  # a flow run's tag naming its acting user, as the UI and the API show it
IMPERSONATOR_TAG = "impersonated-by:"


@dataclass(frozen=True)
class LoadedEnvironment:
    name: str
    block: TradeopsEnvironment
    store_url: str


def load_environment(name: str) -> LoadedEnvironment:
    """The environment block `name`, and its ops store URL (TRADEOPS_DATABASE_URL wins). Every flow
    starts here: in a flow run, its first line says who the run acts as, and the run is tagged
    `user:<name>` (`impersonated-by:<name>` too when the user was impersonated)."""
    block = TradeopsEnvironment.load(name)
    env = LoadedEnvironment(name, block, block.store_url())
    name_acting_user(env)
    return env


_named_runs: set[str] = set()  # flow runs whose acting user this process has named


def name_acting_user(env: LoadedEnvironment) -> None:
    """Once per flow run: log who it acts as, and add the user's tag where the run lacks it (a
    deployment's run is created without it; `tradeops run` creates its runs with it)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None or str(context.flow_run.id) in _named_runs:
        return
    _named_runs.add(str(context.flow_run.id))
    actor = current_actor(env)
    get_run_logger().info("acting user: %s", actor.describe())
    wanted = {USER_TAG + actor.user}
    if actor.identity is not None and actor.identity.impersonated_by:
        wanted.add(IMPERSONATOR_TAG + actor.identity.impersonated_by)
    tags = set(context.flow_run.tags or [])
    if not wanted <= tags:
        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, tags=sorted(tags | wanted))
        context.flow_run.tags = sorted(tags | wanted)
