"""Schema facts the read path needs without importing sqlite-utils (which costs ~70 ms at start-up) or
building the dataclasses in `models` (a few ms)."""

SCHEMA_VERSION = 10  # = the number of migrations; each migration sets PRAGMA user_version to its number

# The contract's token buckets (DESIGN section 6): the fields of `models.Usage`, less web searches.
BUCKETS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
TOKEN_COLUMNS = (*BUCKETS, "web_search_requests")
