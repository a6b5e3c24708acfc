"""Offsite storage: the same operations on a local folder and on S3 over HTTP (moto on loopback)."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest

from blocks import OffsiteStorage
from tradeops.cli.apply import build_blocks
from tradeops.cli.config import load_config


@pytest.fixture(params=["file", "s3"])
def storage(request, tmp_path):
    if request.param == "file":
        return OffsiteStorage(url=f"file://{tmp_path / 'offsite'}")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return OffsiteStorage(url=f"s3://{bucket}/tradeops/sandbox", endpoint_url=endpoint)


def test_round_trip_bytes_and_files(storage, tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "artifact.bin"
    source.write_bytes(payload)

    storage.upload_file(source, "sets/2026-11-23/artifact.bin")
    storage.write_bytes("sets/2026-11-23/manifest.json", b'{"ok": true}')

    assert storage.size("sets/2026-11-23/artifact.bin") == len(payload)
    assert storage.size("sets/missing.bin") is None
    assert storage.read_bytes("sets/2026-11-23/manifest.json") == b'{"ok": true}'
    assert storage.list_keys("sets") == ["sets/2026-11-23/artifact.bin", "sets/2026-11-23/manifest.json"]

    restored = storage.download_file("sets/2026-11-23/artifact.bin", tmp_path / "restored.bin")
    assert hashlib.sha256(restored.read_bytes()).digest() == hashlib.sha256(payload).digest()

    storage.delete("sets/2026-11-23/artifact.bin")
    assert storage.size("sets/2026-11-23/artifact.bin") is None


def test_s3_objects_land_under_the_prefix(s3_endpoint, s3_bucket):
    storage = OffsiteStorage(url=f"s3://{s3_bucket}/tradeops/sandbox", endpoint_url=s3_endpoint)
    storage.write_bytes("probe.txt", b"hello")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["tradeops/sandbox/probe.txt"]
    assert client.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read() == b"hello"


@pytest.mark.prefect  # saves and loads an AwsCredentials block
def test_s3_via_an_aws_credentials_block(s3_endpoint, s3_bucket):
    from prefect_aws import AwsCredentials

    AwsCredentials(aws_access_key_id="tradeops-test", aws_secret_access_key="tradeops-test-secret",
                   region_name="us-east-1").save("offsite-test-creds", overwrite=True)
    storage = OffsiteStorage(url=f"s3://{s3_bucket}", endpoint_url=s3_endpoint,
                             aws_credentials_block="offsite-test-creds")
    storage.write_bytes("a/b.txt", b"x")
    assert storage.read_bytes("a/b.txt") == b"x"
    assert storage.list_keys("a") == ["a/b.txt"]


def test_config_offsite_section_becomes_the_block(tmp_path, s3_endpoint):
    path = tmp_path / "tradeops.toml"
    path.write_text(f'[environment]\nname = "t"\n[offsite]\nurl = "s3://bkt/p"\nendpoint_url = "{s3_endpoint}"\n')
    blocks = build_blocks(load_config(path), tmp_path)
    assert blocks["t-offsite"].url == "s3://bkt/p"
    assert blocks["t-offsite"].endpoint_url == s3_endpoint
    assert blocks["t"].offsite_block == "t-offsite"


def test_unreachable_s3_endpoint_fails_clearly(s3_bucket):
    storage = OffsiteStorage(url=f"s3://{s3_bucket}", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(Exception, match="(?i)connect"):
        storage.write_bytes("x", b"y")
