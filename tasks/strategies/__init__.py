"""Strategy versioning (issue 7, runbook 000 "Git Integration Operations").

``versioning`` holds plain pygit2 functions over one strategy repository (commit + annotated
semver tag, versions, diffs, the ``production`` pointer); ``approvals`` reads the change-control
approvals from the ops store's audit trail. Neither shells out to git nor imports Prefect.
"""

# Who may approve a version for production: runbook 000's `git.merge`, the permission that moves code
# into a deployed branch (senior_trader, system_administrator). Kept here, import-light, for the CLI.
APPROVAL_PERMISSION = "git.merge"
