"""A session as an agent sees it (its URLs, virtual key, key mode) and the environment a tool needs to use it.
Opening one on the daemon is launch/session.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionEnv:
    session_id: str
    anthropic_url: str
    openai_url: str
    virtual_key: str | None = None
    key_mode: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    joined: bool = False  # a nested run that joined its parent's session
    # The daemon's listening socket, held by `run` for the session's life (daemon.hold_listener).
    listener: object | None = field(default=None, compare=False, repr=False)

    def url(self, provider: str) -> str:
        if provider == "gemini":  # the Gemini root (no /v1beta): the session's root + /gemini
            return self.anthropic_url.removesuffix("/anthropic") + "/gemini"
        return self.anthropic_url if provider == "anthropic" else self.openai_url


def joined_session(environ: dict[str, str]) -> SessionEnv | None:
    """The session of the wrapped process we are running inside, if any (AGENTMETER_SESSION_ID)."""
    sid = environ.get("AGENTMETER_SESSION_ID")
    a_url, o_url = environ.get("AGENTMETER_SESSION_ANTHROPIC_URL"), environ.get("AGENTMETER_SESSION_OPENAI_URL")
    if not (sid and a_url and o_url):
        return None
    mode = tuple(m for m in environ.get("AGENTMETER_SESSION_KEY_MODE", "").split(",") if m)
    return SessionEnv(sid, a_url, o_url, environ.get("AGENTMETER_SESSION_KEY"), mode, joined=True)


def families_of(agent: str | None) -> tuple[str, ...]:
    """The provider families an agent speaks: its AgentSpec's, or Anthropic and OpenAI for any other tool."""
    from . import registry

    spec = registry().get(agent or "")
    return spec.families if spec is not None else ("anthropic", "openai")


def session_environment(s: SessionEnv, agent: str | None) -> dict[str, str]:
    """Both provider families unless the agent speaks only one. Credentials only in key mode: a
    subscription login (Claude Pro/Max, ChatGPT) must keep working, and any credential variable would
    replace it (wire-protocols 1.2)."""
    env = {"AGENTMETER_SESSION_ID": s.session_id}
    families = families_of(agent)
    if "anthropic" in families:
        env["ANTHROPIC_BASE_URL"] = s.url("anthropic")
        if "anthropic" in s.key_mode and s.virtual_key:
            # Claude Code asks "Detected a custom API key … use it?" for every ANTHROPIC_API_KEY it has not
            # approved (and the virtual key is new each session), and records the answer in ~/.claude.json.
            # ANTHROPIC_AUTH_TOKEN (sent as Authorization: Bearer, swapped by the proxy) is used unasked.
            env["ANTHROPIC_AUTH_TOKEN" if agent == "claude" else "ANTHROPIC_API_KEY"] = s.virtual_key
    if "openai" in families:
        env["OPENAI_BASE_URL"] = s.url("openai")
        if "openai" in s.key_mode and s.virtual_key:
            env["OPENAI_API_KEY"] = s.virtual_key
    if "gemini" in families:
        env["GOOGLE_GEMINI_BASE_URL"] = s.url("gemini")  # read by @google/genai, the root without /v1beta
        if "gemini" in s.key_mode and s.virtual_key:
            env["GEMINI_API_KEY"] = s.virtual_key
    return env
