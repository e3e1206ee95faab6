"""The team collector: an aiohttp app with its own SQLite store, tokens per developer, reports, FOCUS export,
team caps and a dashboard page."""
