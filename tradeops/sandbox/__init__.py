"""A generated, realistic local trading platform for ops flows to operate on.

``create_sandbox(DIR)`` writes strategy git repositories, a platform database
(PostgreSQL or SQLite) with planted A/B scenarios and index problems, 60 days of
logs, configuration files and TLS certificates near expiry, so every flow can be
exercised end to end without touching a real platform.
"""

from .builder import create_sandbox
from .database import MARKER_TABLE, PLATFORM_TABLES, QUEUE_TABLE
from .dataset import PLANTED_SCENARIOS
from .errors import SandboxError
from .models import SandboxPlatform
from .scales import SCALES

__all__ = [
    "MARKER_TABLE",
    "PLANTED_SCENARIOS",
    "PLATFORM_TABLES",
    "QUEUE_TABLE",
    "SCALES",
    "SandboxError",
    "SandboxPlatform",
    "create_sandbox",
]
