"""The developer's machine as agentmeter sees it: where files live (paths), config.toml (config), provider keys
and the collector token (secrets), and who/where a session runs (attribution)."""
