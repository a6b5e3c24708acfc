"""The ops report a person reads in two minutes (issue 19 item 5; runbook 004 "End of Day
Procedures: Daily Report Generation" and Monday "Weekly Maintenance: weekly performance report",
runbook 003 "Weekly Health Audit"): what ran, what failed, backups and drills, experiments,
incidents, change requests, capacity and baseline changes, each run linked. Read from the ops
store only (``period``, ``gather``), laid out by ``report``."""
