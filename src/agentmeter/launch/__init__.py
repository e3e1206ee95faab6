"""`agentmeter run`: parse its own options, open a session on the daemon, start the agent on it, hold the port,
and report when it ends."""
