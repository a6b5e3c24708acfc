"""TLS certificates: reading, inspection (expiry, host names, chain), renewal with rollback,
and the alerts they raise. One module per concern; tasks wrap them here."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.certificates.alerting import certificate_alerts, renewal_alert
from tasks.certificates.inspection import inspect_certificate_set, reinspect
from tasks.certificates.milestones import CERT_ALERT_MILESTONES, Milestone, milestone_for
from tasks.certificates.reading import CertificateInfo, read_certificate_file, read_endpoint_certificate
from tasks.certificates.renewal import RenewalOutcome, due_for_renewal, renew_certificate
from tasks.certificates.result import CertificateCheck, Verdict

# Certificates change between runs and renewals change files: nothing here is ever cached.
inspect_certificate_set_task = task(inspect_certificate_set, name="inspect-certificates", cache_policy=NO_CACHE)
renew_certificate_task = task(renew_certificate, name="renew-certificate", cache_policy=NO_CACHE)

__all__ = [
    "CERT_ALERT_MILESTONES", "CertificateCheck", "CertificateInfo", "Milestone", "RenewalOutcome", "Verdict",
    "certificate_alerts", "due_for_renewal", "inspect_certificate_set", "inspect_certificate_set_task",
    "milestone_for", "read_certificate_file", "read_endpoint_certificate", "reinspect", "renew_certificate",
    "renew_certificate_task", "renewal_alert",
]
