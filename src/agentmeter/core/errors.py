"""Domain errors. The core raises them; only the CLI maps them to exit codes and prints the hint."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIG = 3
    NOT_FOUND = 4
    DAEMON = 5
    PERMISSION = 6


class AgentmeterError(Exception):
    """One line saying what happened, and a hint saying what to do next."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(AgentmeterError):
    exit_code = ExitCode.CONFIG


class NotFoundError(AgentmeterError):
    exit_code = ExitCode.NOT_FOUND


class DaemonError(AgentmeterError):
    exit_code = ExitCode.DAEMON


class PermissionsError(AgentmeterError):
    exit_code = ExitCode.PERMISSION


class UsageError(AgentmeterError):
    exit_code = ExitCode.USAGE
