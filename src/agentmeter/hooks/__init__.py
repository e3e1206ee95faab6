"""Integrations that run inside other programs: the shell hooks that wrap agents (bash, zsh, fish) and the
static completion scripts."""
