"""CelebA-HQ's encrypted deltas: key derivation, decryption, and applying a delta, with precise errors.

Matches the official create_celebahq: `deltas%05d.zip` (idx rounded down to a multiple of 1000) holds
`delta%05d.dat`, a Fernet token; the key is urlsafe-base64(PBKDF2-HMAC-SHA256(password = the raw bytes of
the CelebA JPEG, salt = its file name in ASCII, 100000 iterations, 32 bytes)); the plaintext is
bz2-compressed uint8 [3, 1024, 1024]; the final image is proc + delta in uint8, wrapping around mod 256.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import hashlib
import zipfile
from pathlib import Path

import numpy as np

DELTA_SHAPE = (3, 1024, 1024)
PBKDF2_ITERATIONS = 100_000
# Fernet token: version (1) | timestamp (8) | IV (16) | AES-CBC ciphertext (16k, k >= 1) | HMAC-SHA256 (32).
_TOKEN_OVERHEAD = 1 + 8 + 16 + 32


class DeltaError(Exception):
    """A delta problem, with the stage it happened in: zip, token, key, bz2, shape."""

    def __init__(self, stage: str, message: str):
        self.stage = stage
        super().__init__(message)


def zip_name(idx: int) -> str:
    return "deltas%05d.zip" % (idx - idx % 1000)


def member_name(idx: int) -> str:
    return "delta%05d.dat" % idx


def derive_key(jpeg_bytes: bytes, file_name: str) -> bytes:
    """The Fernet key for one image (hashlib's PBKDF2 gives the same bytes as cryptography's PBKDF2HMAC)."""
    raw = hashlib.pbkdf2_hmac("sha256", jpeg_bytes, file_name.encode("ascii"), PBKDF2_ITERATIONS, dklen=32)
    return base64.urlsafe_b64encode(raw)


def read_token(delta_dir: str | Path, idx: int) -> bytes:
    """The token bytes for image idx from its zip; DeltaError("zip", ...) when absent or damaged."""
    path = Path(delta_dir) / zip_name(idx)
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(member_name(idx))
    except FileNotFoundError as error:
        raise DeltaError("zip", f"{path.name} is missing") from error
    except KeyError as error:
        raise DeltaError("zip", f"{path.name} has no {member_name(idx)}") from error
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        raise DeltaError("zip", f"{path.name} is corrupt ({error}); download it again") from error


def check_token_shape(token: bytes) -> None:
    """A complete Fernet token or DeltaError("token"): tells a truncated delta from a wrong key."""
    try:
        raw = base64.urlsafe_b64decode(token.strip())
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) < _TOKEN_OVERHEAD + 16 or (len(raw) - _TOKEN_OVERHEAD) % 16 or raw[:1] != b"\x80":
        size = "?" if raw is None else len(raw)
        raise DeltaError("token", f"the delta is truncated or damaged: not a complete Fernet token "
                                  f"({len(token)} bytes, {size} decoded)")


def decrypt_delta(token: bytes, jpeg_bytes: bytes, file_name: str) -> np.ndarray:
    """uint8 [3, 1024, 1024] delta, or DeltaError naming what is wrong."""
    from cryptography.fernet import Fernet, InvalidToken

    check_token_shape(token)
    try:
        compressed = Fernet(derive_key(jpeg_bytes, file_name)).decrypt(token)
    except InvalidToken as error:
        raise DeltaError("key", f"the delta does not decrypt with {file_name} as the key (Fernet InvalidToken): "
                                f"this JPEG file differs from the official CelebA in-the-wild one") from error
    try:
        data = bz2.decompress(compressed)
    except (OSError, ValueError, EOFError) as error:
        raise DeltaError("bz2", f"the decrypted delta does not decompress ({error})") from error
    expected = int(np.prod(DELTA_SHAPE))
    if len(data) != expected:
        raise DeltaError("shape", f"the delta holds {len(data)} bytes, expected {expected}")
    return np.frombuffer(data, dtype=np.uint8).reshape(DELTA_SHAPE)


def apply_delta(proc: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """proc + delta with uint8 wrap-around (the original's `img + delta` on two uint8 arrays)."""
    return np.add(proc, delta, dtype=np.uint8)


def md5_hex(array: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()
