"""The most output tokens a model can return in one response: the ceiling for a reservation.

A reservation must cover what a request can really cost, or N parallel long answers overshoot the cap by
N × the difference (issue 14: 30 streams of 32,000 output tokens passed the refusal line by 12.8× one
request's cost when reservations assumed at most 8,192). So a reservation takes the request's own
`max_tokens` / `max_output_tokens`, capped here by the model's published limit; when a request names no
limit, the model's limit itself. Unknown models get `DEFAULT_CEILING`, generous on purpose: a model we do
not know may be a new, larger one.

Sources (output limits as published, December 2026): Anthropic "Models overview" (docs.anthropic.com/en/
docs/about-claude/models/overview), OpenAI model pages (platform.openai.com/docs/models), Google
"Gemini models" (ai.google.dev/gemini-api/docs/models).
"""

from __future__ import annotations

from functools import lru_cache

DEFAULT_CEILING = 128_000

# (provider, model prefix, max output tokens); the longest matching prefix wins.
_LIMITS: tuple[tuple[str, str, int], ...] = (
    ("anthropic", "claude-3-haiku", 4_096),
    ("anthropic", "claude-3-opus", 4_096),
    ("anthropic", "claude-3-5-haiku", 8_192),
    ("anthropic", "claude-3-5-sonnet", 8_192),
    ("anthropic", "claude-3-7-sonnet", 128_000),  # 64k, 128k with the output-128k beta header
    ("anthropic", "claude-opus-4-0", 32_000),
    ("anthropic", "claude-opus-4-1", 32_000),
    ("anthropic", "claude-opus-4-2025", 32_000),
    ("anthropic", "claude-opus-4", 64_000),  # 4.5 and later
    ("anthropic", "claude-sonnet-4", 64_000),
    ("anthropic", "claude-haiku-4", 64_000),
    ("openai", "gpt-4o", 16_384),
    ("openai", "gpt-4.1", 32_768),
    ("openai", "o1", 100_000),
    ("openai", "o3", 100_000),
    ("openai", "o4-mini", 100_000),
    ("openai", "gpt-5", 128_000),
    ("gemini", "gemini-1.5", 8_192),
    ("gemini", "gemini-2.0", 8_192),
    ("gemini", "gemini-2.5", 65_536),
    ("gemini", "gemini-3", 65_536),
)


@lru_cache(maxsize=512)  # asked for on every request; a model's limit does not change while the process runs
def output_ceiling(provider: str, model: str | None) -> int:
    """The model's published output limit, or DEFAULT_CEILING when the model is not known."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    best, best_len = DEFAULT_CEILING, -1
    for prov, prefix, limit in _LIMITS:
        if prov == provider and name.startswith(prefix) and len(prefix) > best_len:
            best, best_len = limit, len(prefix)
    return best


def reserved_output_tokens(provider: str, model: str | None, max_tokens: int | None) -> int:
    """What a reservation assumes the answer may cost in output tokens."""
    ceiling = output_ceiling(provider, model)
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        return min(max_tokens, ceiling)
    return ceiling
