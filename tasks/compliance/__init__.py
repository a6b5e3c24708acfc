"""SOX 404 and FINRA 15c3-5 reports (runbook 000 "Regulatory Compliance Management"): one module
per report, counted in SQL on the ops store so a million audit entries stay fast."""
