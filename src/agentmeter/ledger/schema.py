"""Schema facts the read path needs without importing sqlite-utils (which costs ~70 ms at start-up)."""

from ..models import BUCKETS

SCHEMA_VERSION = 5  # = the number of migrations; each migration sets PRAGMA user_version to its number

TOKEN_COLUMNS = (*BUCKETS, "web_search_requests")
