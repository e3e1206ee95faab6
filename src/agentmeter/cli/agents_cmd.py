"""`agentmeter agents [--json]`: every agent the registry knows, installed or not, and how it is metered."""

from __future__ import annotations

import typer


def agents(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the agents agentmeter can run, whether each is installed and how it is metered."""

    from ..agents.listing import agent_rows
    from ..render import agents as render_agents

    render_agents.agents_table(agent_rows(), as_json)
