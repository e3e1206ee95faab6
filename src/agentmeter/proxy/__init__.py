"""The per-user sidecar: an aiohttp app on loopback that routes each request, checks it against the budget,
relays it upstream unbuffered, meters the answer into the ledger and raises alerts."""
