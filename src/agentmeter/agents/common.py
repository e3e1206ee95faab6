"""Environment helpers shared by the agent modules."""

from __future__ import annotations

# Never handed to an agent: the real keys live only in the daemon.
PRIVATE_VARS = (
    "AGENTMETER_ANTHROPIC_API_KEY",
    "AGENTMETER_OPENAI_API_KEY",
    "AGENTMETER_GEMINI_API_KEY",
    "AGENTMETER_COLLECTOR_TOKEN",
)


def base_env(environ: dict[str, str], session) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k not in PRIVATE_VARS}
    env["AGENTMETER_SESSION_ID"] = session.session_id
    # Lets a nested `agentmeter run` join this session whatever agent it wraps.
    env["AGENTMETER_SESSION_ANTHROPIC_URL"] = session.url("anthropic")
    env["AGENTMETER_SESSION_OPENAI_URL"] = session.url("openai")
    if session.virtual_key:
        env["AGENTMETER_SESSION_KEY"] = session.virtual_key
        env["AGENTMETER_SESSION_KEY_MODE"] = ",".join(session.key_mode)
    return env


def families_env(session, agent: str | None = None) -> dict[str, str]:
    """The base URLs (and, in key mode, the virtual key) of the provider families the agent speaks
    (its AgentSpec.families; both Anthropic and OpenAI for an agent not named)."""
    from .session_env import session_environment

    return session_environment(session, agent)
