"""Offsite backends behind one protocol: the URL's scheme picks the backend, every backend
implements the protocol, and the folder backend keeps the contract the S3 one keeps in
tests/test_offsite.py (atomic writes, sizes, checksums, ranges, listing, deletion)."""

from __future__ import annotations

import hashlib
import os

import pytest

from blocks import OffsiteStorage
from blocks.storage import BACKENDS, OffsiteBackend, PosixStorage, S3Storage, UnknownStorageScheme
from tradeops.config_values import offsite_url


def test_the_scheme_picks_the_backend(tmp_path):
    assert set(BACKENDS) == {"file", "s3"}
    assert isinstance(OffsiteStorage(url=f"file://{tmp_path}").backend, PosixStorage)
    s3 = OffsiteStorage(url="s3://bucket/tradeops/prod", endpoint_url="http://127.0.0.1:9").backend
    assert isinstance(s3, S3Storage) and (s3.bucket_name, s3.prefix) == ("bucket", "tradeops/prod")
    for scheme in BACKENDS:  # every backend implements the whole protocol
        assert isinstance(BACKENDS[scheme].from_settings(OffsiteStorage(url=f"{scheme}:///x/y").settings),
                          OffsiteBackend)
    # every scheme the configuration accepts has a backend
    assert offsite_url(f"file://{tmp_path}") and offsite_url("s3://bucket/prefix")
    with pytest.raises(ValueError):
        offsite_url("gs://bucket/prefix")


def test_an_unknown_scheme_is_a_clear_error():
    storage = OffsiteStorage(url="gs://bucket/prefix")
    with pytest.raises(UnknownStorageScheme, match=r"'gs://bucket/prefix'.*'gs'.*file, s3"):
        storage.size("x")


def test_a_changed_url_gets_its_own_backend(tmp_path):
    storage = OffsiteStorage(url=f"file://{tmp_path / 'a'}")
    storage.write_bytes("k", b"first")
    storage.url = f"file://{tmp_path / 'b'}"
    storage.write_bytes("k", b"second")
    assert (tmp_path / "a" / "k").read_bytes() == b"first" and (tmp_path / "b" / "k").read_bytes() == b"second"


def test_the_folder_backend_keeps_the_contract(tmp_path):
    storage = OffsiteStorage(url=f"file://{tmp_path / 'offsite'}")
    data = os.urandom(300_000)
    source = tmp_path / "artifact.bin"
    source.write_bytes(data)
    assert storage.upload_file(source, "prod/s1/db/a.dump", sha256="ignored by a folder") == "prod/s1/db/a.dump"
    assert storage.size("prod/s1/db/a.dump") == len(data)
    assert storage.recorded_sha256("prod/s1/db/a.dump") == hashlib.sha256(data).hexdigest()  # computed, not trusted
    assert storage.read_range("prod/s1/db/a.dump", 1000, 5000) == data[1000:6000]
    storage.write_bytes("prod/s1/manifest.json", b"{}")
    assert storage.read_bytes("prod/s1/manifest.json") == b"{}"
    assert storage.list_keys("prod/") == ["prod/s1/db/a.dump", "prod/s1/manifest.json"]
    assert storage.list_keys("nothing/") == []
    back = storage.download_file("prod/s1/db/a.dump", tmp_path / "back" / "a.dump")
    assert back.read_bytes() == data
    assert not [p for p in (tmp_path / "offsite").rglob("*") if ".tmp-" in p.name]  # no temporary names left
    storage.delete("prod/s1/db/a.dump")
    storage.delete("prod/s1/db/a.dump")  # deleting what is gone is no error
    assert storage.size("prod/s1/db/a.dump") is None and storage.recorded_sha256("prod/s1/db/a.dump") is None
    assert not storage.object_lock_enabled()
    assert "local folder" in storage.credentials_source()
