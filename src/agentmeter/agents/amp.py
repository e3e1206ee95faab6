"""Amp (Sourcegraph): model traffic goes through Amp's own service; no base URL reaches a local proxy."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env

NOTE = (
    "agentmeter: Amp sends its model requests through Amp's service, so they are not metered or capped "
    "live; this session records when and where you worked."
)


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    return Launch([binary, *args], base_env(environ, session), note=NOTE)


SPEC = AgentSpec(
    "amp",
    "amp",
    "npm install -g @sourcegraph/amp",
    prepare,
    (),
    label="Amp",
    package="npm:@sourcegraph/amp",
    wire=("vendor",),
    metering="none",
    how="not redirectable (vendor control plane)",
    refusal="(not enforceable)",
)
