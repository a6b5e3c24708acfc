"""Renew a certificate file with the configured command, and put the old one back if the new
one is not good (runbook 001 "Renewal Failure", "Rollback to Previous Certificate").

1. Copy the certificate and its key (same stem, `.key`, beside it) to
   `<data_dir>/cert-backups/<target>/<UTC timestamp>/` (folder 0700, keys 0600).
2. Run the command (argv, no shell; {cert} {key} {domain} filled in) under a timeout; only its
   exit code and last stderr lines are kept (its output may hold account details).
3. Validate the new files: the certificate parses, is a new one, has more than
   `renew_below_days` left, covers the same host names, chains to the trusted roots; the key
   matches it.
4. Any failure: restore the previous files atomically and confirm the restored fingerprint.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from blocks.certificates import CertificateSet
from tasks.certificates.chain import trusted_roots, verify_chain
from tasks.certificates.hostnames import uncovered
from tasks.certificates.inspection import configured_hosts
from tasks.certificates.reading import fingerprint, read_chain_file, san_names
from tasks.certificates.result import CertificateCheck
from tradeops.files import atomic_copy, sha256_file

BACKUPS_FOLDER = "cert-backups"
STDERR_TAIL_LINES = 3
STDERR_LINE_CHARS = 200


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None
    stderr_tail: tuple[str, ...] = ()
    error: str | None = None  # it did not start, or ran out of time

    @property
    def failure(self) -> str | None:
        if self.error:
            return self.error
        if self.exit_code != 0:
            tail = f" ({' / '.join(self.stderr_tail)})" if self.stderr_tail else ""
            return f"renew command exited {self.exit_code}{tail}"
        return None


@dataclass(frozen=True)
class RenewalOutcome:
    target: str
    source: str
    name: str
    outcome: str  # renewed, rolled back, rollback failed, not attempted (no backup possible)
    reason: str = ""
    old_fingerprint: str | None = None
    new_fingerprint: str | None = None
    backup_dir: str = ""
    exit_code: int | None = None
    stderr_tail: tuple[str, ...] = ()

    @property
    def renewed(self) -> bool:
        return self.outcome == "renewed"

    @property
    def action(self) -> str:
        return self.outcome if self.renewed else f"{self.outcome}: {self.reason}"

    def as_dict(self) -> dict:
        return {**vars(self), "stderr_tail": list(self.stderr_tail), "action": self.action}


def key_path_for(cert_path: Path) -> Path:
    return Path(cert_path).with_suffix(".key")


def due_for_renewal(certs: CertificateSet, check: CertificateCheck) -> bool:
    """A readable certificate file with fewer than `renew_below_days` left."""
    return check.kind == "file" and check.days_left is not None and check.days_left < certs.renew_below_days


# -- files ----------------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def backup_files(files: list[Path], backups_root: Path, target: str, now: datetime) -> Path:
    """Copy `files` into a fresh owner-only folder; keys stay 0600."""
    folder = backups_root / BACKUPS_FOLDER / target / now.strftime("%Y%m%dT%H%M%S.%fZ")
    folder.mkdir(parents=True, mode=0o700)
    for level in (backups_root / BACKUPS_FOLDER, folder.parent, folder):
        os.chmod(level, 0o700)
    for path in files:
        atomic_copy(path, folder / path.name, 0o600 if path.suffix == ".key" else _mode(path))
    return folder


def restore_files(folder: Path, files: dict[Path, int], created: list[Path]) -> str | None:
    """Put the backed-up files back (mode as before), remove files the command created; returns
    what could not be restored."""
    try:
        for path, mode in files.items():
            atomic_copy(folder / path.name, path, mode)
            if sha256_file(path) != sha256_file(folder / path.name):
                return f"{path} differs from its backup after the restore"
        for path in created:
            path.unlink(missing_ok=True)
    except OSError as exc:
        return f"cannot restore {exc.filename or folder}: {exc.strerror or exc}"
    return None


# -- the command ----------------------------------------------------------------------------------

def fill_placeholders(argv: list[str], cert: Path, key: Path, domain: str) -> list[str]:
    values = {"{cert}": str(cert), "{key}": str(key), "{domain}": domain}
    filled = []
    for arg in argv:
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        filled.append(arg)
    return filled


def _tail(stderr: bytes) -> tuple[str, ...]:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return tuple(line[:STDERR_LINE_CHARS] for line in lines[-STDERR_TAIL_LINES:])


def run_renew_command(argv: list[str], timeout: float) -> CommandResult:
    """Run argv in its own process group, so a timeout stops its children too."""
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        return CommandResult(None, error=f"renew command {argv[0]} could not start: {exc.strerror or exc}")
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        return CommandResult(None, _tail(stderr), f"renew command timed out after {timeout:g} s")
    return CommandResult(process.returncode, _tail(stderr))


# -- validation -----------------------------------------------------------------------------------

def _public_der(key_or_cert) -> bytes:
    return key_or_cert.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def validate_renewed(certs: CertificateSet, check: CertificateCheck, key_path: Path | None,
                     now: datetime) -> tuple[list[str], str | None]:
    """Why the renewed files are not acceptable (empty: they are), and the new fingerprint."""
    cert_path = Path(check.source)
    try:
        chain = read_chain_file(cert_path)
    except (OSError, ValueError) as exc:
        return [f"the new {cert_path.name} does not parse ({exc})"], None
    leaf, problems = chain[0], []
    new_fingerprint = fingerprint(leaf)
    if new_fingerprint == check.fingerprint:
        problems.append(f"{cert_path.name} is unchanged")
    days = (leaf.not_valid_after_utc - now).total_seconds() / 86400
    if days <= certs.renew_below_days:
        problems.append(f"the new certificate has {days:.1f} days left (needs more than {certs.renew_below_days})")
    missing = uncovered(san_names(leaf), configured_hosts(certs, check.source) or list(check.names))
    if missing:
        problems.append(f"the new certificate does not cover {', '.join(missing)}")
    chain_verdict = verify_chain(chain, trusted_roots(certs.ca_file), now)
    if chain_verdict.passed is False:
        problems.append(f"the new certificate's chain is invalid: {chain_verdict.detail}")
    if key_path is not None and key_path.exists():
        try:
            key = load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            problems.append(f"{key_path.name} does not parse ({type(exc).__name__})")
        else:
            if _public_der(key) != _public_der(leaf):
                problems.append(f"{key_path.name} does not match the new certificate")
    return problems, new_fingerprint


# -- one renewal ----------------------------------------------------------------------------------

def renew_certificate(certs: CertificateSet, check: CertificateCheck, backups_root: Path,
                      now: datetime | None = None) -> RenewalOutcome:
    """Back up, run the renew command, validate; roll back on any failure."""
    now = now or datetime.now(timezone.utc)
    cert_path = Path(check.source)
    key_path = key_path_for(cert_path)
    had_key = key_path.exists()
    originals = {p: _mode(p) for p in ([cert_path, key_path] if had_key else [cert_path])}
    base = RenewalOutcome(certs.target, check.source, check.name, "rolled back", old_fingerprint=check.fingerprint)
    try:
        folder = backup_files(list(originals), backups_root, certs.target, now)
    except OSError as exc:  # nothing was touched yet: no renewal without a way back
        return replace(base, outcome="not attempted",
                        reason=f"cannot back up {exc.filename or cert_path}: {exc.strerror or exc}")
    domain = (configured_hosts(certs, check.source) or list(check.names) or [""])[0]
    command = run_renew_command(fill_placeholders(certs.renew_command, cert_path, key_path, domain),
                                certs.renew_timeout_seconds)
    base = replace(base, backup_dir=str(folder), exit_code=command.exit_code, stderr_tail=command.stderr_tail)
    if command.failure:
        return _roll_back(base, folder, originals, key_path, had_key, command.failure)
    problems, new_fingerprint = validate_renewed(certs, check, key_path, datetime.now(timezone.utc))
    base = replace(base, new_fingerprint=new_fingerprint)
    if problems:
        return _roll_back(base, folder, originals, key_path, had_key, "; ".join(problems))
    return replace(base, outcome="renewed")


def _roll_back(base: RenewalOutcome, folder: Path, originals: dict[Path, int], key_path: Path, had_key: bool,
               reason: str) -> RenewalOutcome:
    cert_path = Path(base.source)
    error = restore_files(folder, originals, [] if had_key else [key_path])
    if error is None:
        try:
            restored = fingerprint(read_chain_file(cert_path)[0])
        except (OSError, ValueError) as exc:
            restored = None
            error = f"the restored {cert_path.name} does not parse ({exc})"
        if error is None and restored != base.old_fingerprint:
            error = f"the restored {cert_path.name} has fingerprint {restored}, not {base.old_fingerprint}"
    if error:
        return replace(base, outcome="rollback failed", reason=f"{reason}; {error}; the previous files are in {folder}")
    return replace(base, reason=reason)
