"""Custom Prefect blocks: the configuration ops edit in the UI.

Register them with `prefect block register -m blocks` (`tradeops apply` does it for you).
"""

from blocks.alerts import AlertChannel
from blocks.applications import PythonApplication
from blocks.certificates import CertificateSet
from blocks.configs import ConfigFileSet
from blocks.database import DatabaseTarget
from blocks.environment import TradeopsEnvironment
from blocks.git import GitRepositorySet
from blocks.logs import LogDirectory
from blocks.offsite import OffsiteStorage
from blocks.processes import PlatformProcess

ALL_BLOCKS = (
    AlertChannel,
    CertificateSet,
    ConfigFileSet,
    DatabaseTarget,
    GitRepositorySet,
    LogDirectory,
    OffsiteStorage,
    PlatformProcess,
    PythonApplication,
    TradeopsEnvironment,
)

__all__ = [cls.__name__ for cls in ALL_BLOCKS] + ["ALL_BLOCKS"]
