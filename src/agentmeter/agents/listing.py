"""The registry as rows for `agentmeter agents` and `doctor`: what each agent is, whether it is installed,
and how it is metered."""

from __future__ import annotations

import shutil

from . import registry

METERING_TEXT = {
    "live": "live: every request through the proxy, metered and capped",
    "byok": "live with your own provider key; the vendor's hosted models are not metered",
    "import": "not live: usage imported from the agent's logs or export",
    "none": "not meterable: its traffic leaves through the vendor's servers",
}


def agent_rows() -> list[dict]:
    rows = []
    for spec in registry().values():
        path = shutil.which(spec.binary)
        rows.append(
            {
                "name": spec.name,
                "label": spec.title,
                "binary": spec.binary,
                "installed": path is not None,
                "path": path,
                "package": spec.package,
                "install": spec.install,
                "wire": list(spec.wire),
                "metering": spec.metering,
                "metering_text": METERING_TEXT.get(spec.metering, spec.metering),
                "how": spec.how,
                "refusal": spec.refusal,
                "import_source": spec.import_source,
                "verified": spec.verified,
            }
        )
    return rows
