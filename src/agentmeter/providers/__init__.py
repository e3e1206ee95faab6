"""Sans-io wire meters per provider: request facts from bodies, usage from (streamed) responses, plan-window
headers. Bytes in, facts out, never an exception."""
