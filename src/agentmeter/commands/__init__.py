"""Use cases behind the commands: each takes its inputs as arguments and returns a payload (a dict shaped as the
JSON contract) for render/ to print. No argument parsing here (that is cli/), no SQL (that is ledger/)."""
