"""The base every layer shares: frozen value types, domain errors, the one clock, time zones, bounds on outside
numbers and small parsers. No I/O (the clock is the only reader of the wall clock), no third-party imports."""
