"""Fuzz settings: a quick pass by default, a long one with AGENTMETER_LONG=1. Each fuzz test counts the
inputs it tried; with AGENTMETER_FUZZ_REPORT=<file> the counts are written there (docs/reliability.md)."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

LONG = os.environ.get("AGENTMETER_LONG") == "1"
TRIED: collections.Counter = collections.Counter()

settings.register_profile(
    "fuzz",
    deadline=2000,
    derandomize=not LONG,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def examples(quick: int, long: int) -> settings:
    return settings(settings.get_profile("fuzz"), max_examples=long if LONG else quick)


@pytest.fixture(scope="session", autouse=True)
def _report_counts():
    yield
    path = os.environ.get("AGENTMETER_FUZZ_REPORT")
    if path and TRIED:
        old = json.loads(Path(path).read_text()) if os.path.exists(path) else {}
        for k, v in TRIED.items():
            old[k] = old.get(k, 0) + v
        with open(path, "w") as f:
            json.dump(old, f, indent=2, sort_keys=True)
