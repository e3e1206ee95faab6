"""Schema facts the read path needs without importing sqlite-utils (which costs ~70 ms at start-up)."""

SCHEMA_VERSION = 4  # = the number of migrations; each migration sets PRAGMA user_version to its number

TOKEN_COLUMNS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "web_search_requests",
)
