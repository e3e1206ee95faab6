"""A stand-in coding agent for `agentmeter demo`: a few scripted turns against whatever base URL the
session environment gives it, like Claude Code (Anthropic Messages) or Codex (OpenAI Responses) would."""

from __future__ import annotations

import json
import os
import sys
import urllib.request

TURNS = [
    (
        "Read the failing test",
        {"input_tokens": 2400, "cache_read_tokens": 0, "cache_write_tokens": 18000, "output_tokens": 310},
    ),
    (
        "Edit src/parser.py",
        {"input_tokens": 900, "cache_read_tokens": 18000, "cache_write_tokens": 2600, "output_tokens": 1240},
    ),
    (
        "Run the tests",
        {"input_tokens": 600, "cache_read_tokens": 20600, "cache_write_tokens": 800, "output_tokens": 220},
    ),
    (
        "Summarise the change",
        {"input_tokens": 400, "cache_read_tokens": 21400, "cache_write_tokens": 0, "output_tokens": 480},
    ),
]


def turn(family: str, text: str, usage: dict) -> None:
    if family == "anthropic":
        url = os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages"
        body = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 2048,
            "stream": True,
            "messages": [{"role": "user", "content": text}],
        }
        headers = {"x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""), "anthropic-version": "2023-06-01"}
    else:
        url = os.environ["OPENAI_BASE_URL"] + "/responses"
        body = {"model": "gpt-5.1-codex", "stream": True, "input": text}
        headers = {"Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "")}
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-fake-usage": json.dumps(usage), **headers},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def main() -> int:
    family = sys.argv[1]
    name = "claude" if family == "anthropic" else "codex"
    for text, usage in TURNS:
        turn(family, text, usage)
        sys.stdout.write(f"  {name} › {text} ✓\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
