"""The one exception type the sandbox raises for bad input or unsafe targets.

Callers (CLI, flows) catch a single type and show its message to the user as is,
so every message says what was wrong and what is allowed instead.
"""


class SandboxError(Exception):
    """Bad input, or a target the sandbox refuses to overwrite."""
