# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""--diff entries that show an envelope's metadata (keys, context, suite, sizes), never its content."""

from __future__ import annotations

import json


def metadata_text(data):
    """One ``key: json value`` line per item, sorted: stable text for a diff of metadata."""
    return "".join(f"{key}: {json.dumps(value, sort_keys=True)}\n" for key, value in sorted(data.items()))


def facts_metadata(facts):
    """What a diff shows of an existing envelope's header (EnvelopeFacts): keys, context, suite, framing."""
    return dict(key_arns=list(facts.key_arns), encryption_context=facts.encryption_context,
                algorithm=facts.algorithm, frame_length=facts.frame_length)


def with_sizes(metadata, size, plaintext_size):
    """``metadata`` with the two sizes each side of an envelope file's diff names, so that before and
    after compare like with like: ``size``, the bytes of the file (ciphertext), and ``plaintext_size``.
    None (null in the diff) where not known: an old envelope is not decrypted for a diff, and check
    mode encrypts nothing."""
    return dict(metadata, size=size, plaintext_size=plaintext_size)


def envelope_diff(path, before, after):
    """A diff entry for the envelope at ``path``: metadata dicts before and after."""
    header = f"{path} (envelope)"
    return dict(before_header=header, after_header=header, before=metadata_text(before), after=metadata_text(after))
