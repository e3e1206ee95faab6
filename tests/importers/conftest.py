"""Fixtures for the importer tests: the e2e fixtures (real agents, fake provider, daemon), and helpers that
write crafted transcript lines in the shapes the real agents were seen to write."""

from __future__ import annotations

from e2e.conftest import claude_bin, codex_bin, daemon, daemon_factory, fake_provider  # noqa: F401
