"""GitHub Copilot CLI. Its bring-your-own-key mode (COPILOT_PROVIDER_TYPE openai|anthropic, with
COPILOT_MODEL) goes to COPILOT_PROVIDER_BASE_URL, which `run` points at the session: metered and capped.
Copilot-hosted models go to GitHub's own service, which no local proxy sees: `run` says so once and
starts it untouched (checked with 1.0.102 `copilot help environment`)."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env

NOTE_HOSTED = (
    "agentmeter: Copilot-hosted models go through GitHub's service and are not metered live; "
    "agentmeter import copilot reads their usage from Copilot's logs afterwards. To meter and cap "
    "live, use your own key: COPILOT_PROVIDER_TYPE=openai (or anthropic) and COPILOT_MODEL=<model>."
)
NOTE_AZURE = "agentmeter: Copilot CLI with an Azure provider is not metered (no Azure adapter); it runs as configured."


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    kind = environ.get("COPILOT_PROVIDER_TYPE") or ("openai" if environ.get("COPILOT_PROVIDER_BASE_URL") else "")
    kind = kind.lower()
    if not kind:
        return Launch([binary, *args], env, note=NOTE_HOSTED)
    if kind not in ("openai", "anthropic"):
        return Launch([binary, *args], env, note=NOTE_AZURE)
    env["COPILOT_PROVIDER_TYPE"] = kind
    env["COPILOT_PROVIDER_BASE_URL"] = session.url(kind)
    if kind in session.key_mode and session.virtual_key:
        env["COPILOT_PROVIDER_API_KEY"] = session.virtual_key
        for var in ("COPILOT_PROVIDER_BEARER_TOKEN", "COPILOT_PROVIDER_API_KEY_COMMAND"):
            env.pop(var, None)  # they would win over the virtual key
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "copilot",
    "copilot",
    "npm install -g @github/copilot",
    prepare,
    label="GitHub Copilot CLI",
    package="npm:@github/copilot",
    wire=("openai-chat", "openai-responses", "anthropic-messages"),
    metering="byok",
    how="COPILOT_PROVIDER_BASE_URL (+ COPILOT_PROVIDER_API_KEY virtual key) for BYOK; hosted models: not metered",
    refusal="the 429 with agentmeter's message, once",
    import_source="~/.copilot/session-state/*/events.jsonl (agentmeter import copilot)",
    verified="e2e",
)
