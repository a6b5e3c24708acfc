"""A Python application whose pinned dependencies tradeops keeps up to date (runbook 001
"Dependency Management": monthly, conservative, security scan, tests, rollback on failure)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field


class PythonApplication(Block):
    _block_type_name = "Tradeops Python Application"
    _block_type_slug = "tradeops-python-application"
    _description = "A Python application in git with pinned requirements and its own tests."

    target: str
    path: str = Field(description="The application's git working copy.")
    requirements_file: str = Field("requirements.txt", description="Pinned requirements (name==version), in `path`.")
    base_branch: str = Field("main", description="The branch updates start from.")
    test_command: list[str] = Field(
        default_factory=lambda: ["{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        description="argv run in `path` with the scratch virtualenv; {python} is its interpreter.")
    test_requirements: list[str] = Field(default_factory=lambda: ["pytest"],
                                         description="Installed beside the requirements to run the tests.")
    wheelhouse: str = Field(description="Folder of wheels: pip install --no-index --find-links (nothing online).")
    index_versions_file: str = Field(description="The package index's versions of each package, recorded (JSON).")
    advisories_file: str = Field(description="Known vulnerabilities as OSV records (JSON), as pip-audit reads them.")
    allow_security_updates: bool = Field(
        False, description="Update past the patch level when that is what fixes a known vulnerability.")
    test_timeout_seconds: float = Field(600, gt=0)
