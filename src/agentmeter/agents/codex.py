"""Codex CLI: it ignores OPENAI_BASE_URL, so a custom model provider goes in with `-c`
(wire-protocols 0 and 2.1), with WebSockets off so it goes straight to SSE (no 7 s of failed upgrades).
The developer's own Codex config is untouched: `-c` overrides apply to this run only."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env


def provider_overrides(base_url: str, env_key: str | None) -> list[str]:
    auth = f'env_key="{env_key}"' if env_key else "requires_openai_auth=true"
    table = (f'{{name="OpenAI",base_url="{base_url}",wire_api="responses",{auth},'
             f"supports_websockets=false}}")
    return ["-c", 'model_provider="agentmeter"', "-c", f"model_providers.agentmeter={table}"]


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env_key = None
    if "openai" in session.key_mode and session.virtual_key:
        env["OPENAI_API_KEY"] = session.virtual_key
        env_key = "OPENAI_API_KEY"
    elif environ.get("OPENAI_API_KEY"):
        env_key = "OPENAI_API_KEY"  # an API-key user's own key passes through
    # Otherwise the ChatGPT login is used; the proxy routes it to the ChatGPT Codex backend.
    return Launch([binary, *provider_overrides(session.url("openai"), env_key), *args], env)


SPEC = AgentSpec("codex", "codex", "npm install -g @openai/codex", prepare, ("openai",))
