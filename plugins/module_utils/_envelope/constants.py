# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: every default and bound of the envelope format, written once.

Plugins take these through ``module_utils/envelope.py`` (or directly, where the library must not be
imported); documentation that repeats a default is checked against these values by the unit tests.
"""

from __future__ import annotations

DEFAULT_ALGORITHM = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"  # 0x0478: committing, unsigned
SIGNED_ALGORITHM = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"  # 0x0578: committing, signed
ALGORITHMS = (DEFAULT_ALGORITHM, SIGNED_ALGORITHM)
DEFAULT_COMMITMENT_POLICY = "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"

# Measured (README, "The file format"): the library copies its buffer once per frame inside a
# read, so each read() must span exactly one frame; 64-256 KiB frames are the fast plateau.
DEFAULT_FRAME_LENGTH = 256 * 1024
# The library requires frame lengths to be a multiple of this (AES's block size, in bits: it
# compares the byte count with cryptography's block_size, so 16 is refused).
FRAME_LENGTH_MULTIPLE = 128
# Decrypt holds one whole frame in memory before authenticating it: refuse bigger frames (and
# non-framed bodies) than this, so a hostile file cannot make us allocate gigabytes.
DEFAULT_MAX_FRAME_LENGTH = 64 * 1024 * 1024
# Each wrapped data key may cost one KMS call on decrypt; the ESDK guidance is to cap them.
DEFAULT_MAX_ENCRYPTED_DATA_KEYS = 10
# Read size used for non-framed bodies and for plaintext comparisons.
CHUNK_SIZE = 256 * 1024

# Plaintext held in memory (return_content, the lookup) and shown in an opt-in plaintext diff.
MAX_CONTENT_SIZE = 64 * 1024 * 1024
MAX_DIFF_PLAINTEXT = 64 * 1024

RESERVED_CONTEXT_PREFIX = "aws-crypto-"
# The signed suites store their public verification key in the context; it is the library's, not
# the user's, and differs per message, so facts and comparisons leave it out.
PUBLIC_KEY_CONTEXT_KEY = "aws-crypto-public-key"
KMS_PROVIDER_ID = "aws-kms"
ALIAS_PREFIX = "alias/"

# The one retry policy: botocore's standard mode retries throttling (ThrottlingException, ...) and
# transient errors (KMSInternalException is HTTP 500, DependencyTimeoutException 503) with
# exponential backoff and jitter, up to this many attempts per call, the first one included. It is
# client configuration, so it also covers the calls the AWS Encryption SDK makes with our clients.
# A user's aws_config (amazon.aws's option) is merged over it (module_utils/kms.py kms_client).
KMS_RETRIES = {"mode": "standard", "total_max_attempts": 10}
