"""Offsite copies when S3 misbehaves: transient errors are retried, exhausted retries and rejected
credentials fail the run with the reason while the local set stays complete.

The S3 server is real (moto over HTTP); a fault-injecting proxy in front of it answers chosen
requests the way S3 does under load (503 SlowDown), drops connections, or refuses expired
credentials (400), and counts every request so the tests can assert the attempts made.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from flows.daily_backup import daily_backup
from flows.verify_backups import verify_backups
from s3_faults import Fault, S3FaultProxy
from tasks.backup.manifest import MANIFEST
from tradeops.cli.common import apply_file
from tradeops.store import BackupSet, session_for

RETRIES = 2  # Prefect task retries; botocore adds 3 attempts per task attempt (standard mode)
BOTOCORE_ATTEMPTS = 3


@pytest.fixture
def faulty(backup_env, s3_endpoint):
    proxy = S3FaultProxy(s3_endpoint)
    url = proxy.start()
    apply_file(backup_env.config, [("environment.name", backup_env.name),
                                   ("environment.data_dir", str(backup_env.data_dir)),
                                   ("ops_store.url", backup_env.store),
                                   ("offsite.url", f"s3://{backup_env.bucket}/tradeops"),
                                   ("offsite.endpoint_url", url), ("offsite.retries", RETRIES),
                                   ("offsite.retry_delay_seconds", 0.2)], quiet=True)
    yield proxy
    proxy.stop()


def run(flow, env_name):
    state = flow(environment=env_name, return_state=True)
    return state, state.result(raise_on_failure=False)


def _statuses(store: str) -> list[str]:
    with session_for(store) as session:
        return [s.status for s in session.exec(select(BackupSet)).all()]


def _uploaded(result) -> list[str]:
    return [a["offsite_key"] for a in result["artifacts"] if a["reused_from"] is None]


def test_transient_errors_are_retried_until_the_copy_lands(backup_env, faulty):
    faulty.faults += [Fault(method="PUT", drop_connection=True, times=2),
                      Fault(method="PUT", status=503, code="SlowDown", times=4)]
    state, result = run(daily_backup, backup_env.name)
    assert state.is_completed(), state.message
    assert faulty.answered("PUT", 0) == 2 and faulty.answered("PUT", 503) == 4  # every fault was met and survived
    objects = {o["Key"] for o in backup_env.s3.list_objects_v2(Bucket=backup_env.bucket)["Contents"]}
    assert {f"tradeops/{k}" for k in _uploaded(result)} <= objects
    state, verified = run(verify_backups, backup_env.name)
    assert state.is_completed(), state.message
    assert verified["verified"] == len(result["artifacts"])


def test_exhausted_retries_fail_the_run_and_keep_the_local_set(backup_env, faulty, caplog):
    faulty.faults.append(Fault(method="PUT", status=503, code="SlowDown"))  # S3 never recovers
    caplog.set_level(logging.INFO)
    state, result = run(daily_backup, backup_env.name)
    assert state.is_failed()
    keys = _uploaded(result)
    # issue 21: one line per attempt, no traceback (the last attempt's is logged at debug level only)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" not in caplog.text
    for attempt in range(1, RETRIES + 1):
        assert log.count(f"attempt {attempt} of {RETRIES + 1} failed: PutObject: SlowDown") == len(keys)
    assert log.count(f"attempt {RETRIES + 1} of {RETRIES + 1} failed: PutObject: SlowDown") == len(keys)
    assert log.count("; no attempts left") == len(keys) and "next attempt in 0." in log
    assert set(result["failures"]) == {f"offsite {k}" for k in keys}
    for reason in result["failures"].values():
        assert "SlowDown" in reason and f"gave up after {RETRIES + 1} attempts" in reason
    assert faulty.answered("PUT", 503) == len(keys) * (RETRIES + 1) * BOTOCORE_ATTEMPTS
    assert faulty.answered("PUT", 200) == 0
    assert _statuses(backup_env.store) == ["complete"]  # the local set is whole and listed
    assert (Path(result["set_dir"]) / MANIFEST).is_file()
    assert result["expired_sets"] == []  # a failed run never prunes

    state, _ = run(verify_backups, backup_env.name)  # the missing copies are named
    assert state.is_failed() and "is missing" in state.message and keys[0] in state.message

    faulty.faults.clear()  # S3 is back: the next run succeeds
    state, _ = run(daily_backup, backup_env.name)
    assert state.is_completed(), state.message


def test_expired_credentials_fail_at_once_without_retries(backup_env, faulty):
    faulty.faults.append(Fault(status=400, code="ExpiredToken", message="The provided token has expired."))
    state, result = run(daily_backup, backup_env.name)
    assert state.is_failed()
    keys = _uploaded(result)
    assert set(result["failures"]) == {f"offsite {k}" for k in keys}
    for reason in result["failures"].values():
        assert "expired or invalid credentials" in reason and "not retried" in reason
        assert "AWS environment" in reason
    asked = Counter(path.split("/", 2)[2].removeprefix("tradeops/") for method, path, _ in faulty.seen
                    if method == "HEAD" and path.count("/") > 2)
    # each object asked once by its upload (no retry renews a token), once by the verification
    # that ends the run (verify-backups, a subflow)
    assert {key: asked[key] for key in keys} == {key: 2 for key in keys}
    assert faulty.answered("PUT", 400) == 0  # (botocore's region check adds one HeadBucket each)
    assert _statuses(backup_env.store) == ["complete"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert secret not in state.message and all(secret not in r for r in result["failures"].values())


def test_expired_token_on_upload_names_the_s3_error(backup_env, faulty, tmp_path):
    from blocks import OffsiteStorage
    from tasks.backup.offsite import OffsiteRejected, publish_offsite

    faulty.faults.append(Fault(method="PUT", status=400, code="ExpiredToken",
                               message="The provided token has expired."))
    storage = OffsiteStorage.load(f"{backup_env.name}-offsite")
    path = tmp_path / "a.txt"
    path.write_bytes(b"evidence")
    with pytest.raises(OffsiteRejected, match="ExpiredToken: The provided token has expired"):
        publish_offsite(storage, path, "x/a.txt", "0" * 64, 8)
    assert faulty.answered("PUT", 400) == 1
