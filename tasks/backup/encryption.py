"""Encryption at rest: AES-256-GCM in 1 MiB chunks, so files of any size stream through.

File layout: `TOPSENC1` | 8-byte random nonce prefix | chunks, each `length (4 bytes) | ciphertext+tag`.
Chunk i is sealed with nonce = prefix || i (4 bytes) and associated data = header || last-chunk
flag, so reordering, truncating or appending chunks fails as surely as a changed byte. The key
(32 bytes, hex or base64) lives in a Prefect Secret block; only the block's name is configured.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tasks.backup.postgres import artifact_facts
from tradeops.files import atomic_output

MAGIC = b"TOPSENC1"
CHUNK = 1024 * 1024
SUFFIX = ".enc"


class DecryptionError(Exception):
    """Wrong key, or the encrypted bytes were changed, truncated or reordered."""


class KeyUnavailable(DecryptionError):
    """The key's Secret block is missing or does not hold a 256-bit key: nothing can be sealed or opened."""


def parse_key(text: str) -> bytes:
    """A 256-bit key from its hex or base64 text."""
    text = text.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    raise ValueError("the encryption key must be 32 bytes, written as 64 hex digits or base64")


def encrypt_file(source: Path, destination: Path, key: bytes) -> None:
    aead = AESGCM(key)
    prefix = os.urandom(8)
    header = MAGIC + prefix
    with open(source, "rb") as src, atomic_output(destination) as dst:
        dst.write(header)
        index, chunk = 0, src.read(CHUNK)
        while True:
            following = src.read(CHUNK)
            last = not following
            sealed = aead.encrypt(prefix + struct.pack(">I", index), chunk, header + (b"\x01" if last else b"\x00"))
            dst.write(struct.pack(">I", len(sealed)) + sealed)
            if last:
                break
            index, chunk = index + 1, following


def decrypt_file(source: Path, destination: Path, key: bytes) -> None:
    aead = AESGCM(key)
    with open(source, "rb") as src, atomic_output(destination) as dst:
        header = src.read(len(MAGIC) + 8)
        if not header.startswith(MAGIC):
            raise DecryptionError(f"{source.name} is not a tradeops encrypted file")
        prefix, index = header[len(MAGIC):], 0
        length_bytes = src.read(4)
        while length_bytes:
            if len(length_bytes) < 4:
                raise DecryptionError(f"{source.name} is truncated")
            sealed = src.read(struct.unpack(">I", length_bytes)[0])
            length_bytes = src.read(4)
            last = not length_bytes
            try:
                dst.write(aead.decrypt(prefix + struct.pack(">I", index), sealed,
                                       header + (b"\x01" if last else b"\x00")))
            except InvalidTag:
                raise DecryptionError(f"cannot decrypt {source.name} at chunk {index}: wrong key, or the "
                                      "file was changed, truncated or reordered") from None
            index += 1
        if index == 0:
            raise DecryptionError(f"{source.name} holds no data")


def load_key(secret_block: str) -> bytes:
    """The key from the named Prefect Secret block (never from a parameter or a file in git);
    KeyUnavailable names the block when it is missing or holds no 256-bit key (never the value)."""
    from prefect.blocks.system import Secret

    try:
        secret = Secret.load(secret_block)
    except ValueError:
        raise KeyUnavailable(f"no Secret block named {secret_block!r}: create it with the key "
                             "(64 hex digits or base64 of 32 bytes)") from None
    try:
        return parse_key(str(secret.get()))
    except ValueError as exc:
        raise KeyUnavailable(f"Secret block {secret_block!r}: {exc}") from None


def seal_entries(entries: list, set_dir: Path, key: bytes) -> list:
    """Encrypt each new artifact in place (`x` -> `x.enc`), updating its manifest entry."""
    for entry in entries:
        if entry.details.get("encrypted"):
            continue  # a reused, already encrypted artifact
        plain = set_dir / entry.path
        sealed = plain.with_name(plain.name + SUFFIX)
        encrypt_file(plain, sealed, key)
        plain.unlink()
        entry.path = str(sealed.relative_to(set_dir))
        entry.sha256, entry.size = artifact_facts(sealed)
        entry.details = {**entry.details, "encrypted": "aes-256-gcm-chunked"}
    return entries
