# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The envelope engine's public face: AWS Encryption SDK messages in, out and compared, file to file.

Every envelope is an AWS Encryption SDK message written and read by the official
``aws-encryption-sdk`` library (3.3.x and 4.x), with data keys from KMS. The private package
``_envelope/`` is the only code that touches the library; plugins import from here, except code
that must not import the library at all (kms.py, data_key.py), which takes the light parts
(``_envelope/constants``, ``inputs``, ``io``) directly. It adds what the library leaves to its
callers:

* decrypt checks a ``DecryptPolicy`` (required encryption context pairs, allowed wrapping keys or
  account ids), refuses bytes after the end of the message, and writes plaintext to a 0600 temp
  file beside the destination that replaces it only once the whole message verified;
* header facts (wrapping key ARNs, context, suite, frame length) without KMS calls;
* one-line ``EnvelopeError`` messages for everything a user can get wrong, never holding plaintext
  or key material;
* every "already the same" rule (``Engine.compare``, ``Engine.compare_plaintext``): no KMS call
  when metadata or size already differ, at most one Decrypt otherwise.

Where things live in ``_envelope/``: ``constants`` (defaults and bounds: the frame length),
``inputs`` (key ids, contexts, suites checked), ``policy`` (the decrypt policy and its argument
spec), ``format`` (headers, size arithmetic), ``io`` (atomic files, matchers), ``errors`` (the
error model), ``model`` (facts), ``providers`` (the library's key providers on our clients),
``engine`` (the Engine).
"""

from __future__ import annotations

# pylint: disable=unused-import
from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import (  # noqa: F401
    ALGORITHMS,
    ALIAS_PREFIX,
    CHUNK_SIZE,
    DEFAULT_ALGORITHM,
    DEFAULT_COMMITMENT_POLICY,
    DEFAULT_FRAME_LENGTH,
    DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
    DEFAULT_MAX_FRAME_LENGTH,
    KMS_PROVIDER_ID,
    MAX_CONTENT_SIZE,
    MAX_DIFF_PLAINTEXT,
    PUBLIC_KEY_CONTEXT_KEY,
    RESERVED_CONTEXT_PREFIX,
    SIGNED_ALGORITHM,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.engine import Engine  # noqa: F401
from ansible_collections.envelope.kms.plugins.module_utils._envelope.format import (  # noqa: F401
    envelope_could_hold,
    expected_ciphertext_sizes,
    inspect_header,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import (  # noqa: F401
    normalize_context,
    normalize_key_id,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import (  # noqa: F401
    Mismatch,
    PlaintextMatcher,
    write_file_atomic,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.library import (  # noqa: F401
    ESDK_IMPORT_ERROR,
    HAS_ESDK,
    require_esdk,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.model import (  # noqa: F401
    Comparison,
    EnvelopeFacts,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError  # noqa: F401
from ansible_collections.envelope.kms.plugins.module_utils._envelope.policy import (  # noqa: F401
    DecryptPolicy,
    check_header,
    decrypt_policy,
    decrypt_policy_argument_spec,
)
