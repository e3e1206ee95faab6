"""Codex CLI: it ignores OPENAI_BASE_URL, so a custom model provider goes in with `-c`
(wire-protocols 0 and 2.1), with WebSockets off so it goes straight to SSE (no 7 s of failed upgrades).
The developer's own Codex config is untouched: `-c` overrides apply to this run only.

argv is readable by every user (`ps`), so nothing secret goes there: the provider's base URL is the
token-free /h/openai/v1 route, and the session token reaches the proxy in an X-Agentmeter-Session header
whose value Codex reads from an environment variable (`env_http_headers`), as the API key is read by
`env_key`."""

from __future__ import annotations

from urllib.parse import urlsplit

from . import AgentSpec, Launch
from .common import base_env

TOKEN_VAR = "AGENTMETER_SESSION_TOKEN"


def header_route(session_url: str) -> tuple[str, str]:
    """(`http://127.0.0.1:PORT/h/openai/v1`, token) for a session URL `…/s/<token>/openai/v1`."""
    u = urlsplit(session_url)
    parts = u.path.split("/")  # ['', 's', token, 'openai', 'v1']
    if len(parts) < 4 or parts[1] != "s" or not parts[2]:
        raise ValueError(f"not a session URL: {u.scheme}://{u.netloc}/…")
    return f"{u.scheme}://{u.netloc}/h/{'/'.join(parts[3:])}", parts[2]


def provider_overrides(base_url: str, env_key: str | None) -> list[str]:
    auth = f'env_key="{env_key}"' if env_key else "requires_openai_auth=true"
    table = (
        f'{{name="OpenAI",base_url="{base_url}",wire_api="responses",{auth},'
        f'env_http_headers={{"X-Agentmeter-Session"="{TOKEN_VAR}"}},supports_websockets=false}}'
    )
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
    base_url, env[TOKEN_VAR] = header_route(session.url("openai"))
    return Launch([binary, *provider_overrides(base_url, env_key), *args], env)


SPEC = AgentSpec(
    "codex",
    "codex",
    "npm install -g @openai/codex",
    prepare,
    ("openai",),
    label="Codex CLI",
    package="npm:@openai/codex",
    wire=("openai-responses",),
    how="-c model_providers.agentmeter (base_url, env_key) for this run only",
    refusal="You've hit your usage limit. Try again at <time>., once",
    import_source="~/.codex/sessions",
    verified="e2e",
)
