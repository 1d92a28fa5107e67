# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the Engine, which streams envelopes in, out and compared.

Use one ``Engine`` per process (per task, across loop items): it keeps the KMS clients, master key
providers and resolved key ARNs. It is not thread-safe.
"""

from __future__ import annotations

import hashlib
import io
import os

try:
    import aws_encryption_sdk
    from aws_encryption_sdk.internal.formatting.serialize import serialize_frame
except ImportError:
    pass  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils._envelope import providers
from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import (
    CHUNK_SIZE,
    DEFAULT_COMMITMENT_POLICY,
    DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
    DEFAULT_MAX_FRAME_LENGTH,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.errors import Translated
from ansible_collections.envelope.kms.plugins.module_utils._envelope.format import (
    check_context_fits,
    read_facts,
    require_end_of_input,
    size_could_hold,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import (
    algorithm_suite,
    commitment_policy as checked_commitment_policy,
    frame_length as checked_frame_length,
    key_id_list,
    normalize_context,
    normalize_key_id,
    resolve_predicted_key_ids,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import (
    AtomicFile,
    DecryptedReader,
    Mismatch,
    PlaintextMatcher,
    label,
    open_plaintext,
    open_source,
    refuse_same_file,
    require_path,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.library import require_esdk
from ansible_collections.envelope.kms.plugins.module_utils._envelope.model import Comparison, facts_from_header
from ansible_collections.envelope.kms.plugins.module_utils._envelope.policy import DecryptPolicy, decrypt_policy
from ansible_collections.envelope.kms.plugins.module_utils._envelope.shared_key import MaterialsCache, SharedKeyManager
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError

# Comparison reasons that mean "not a readable envelope of ours", not a failure to report.
_UNREADABLE_HEADER = ("not_envelope", "corrupt", "too_large")
_UNREADABLE_BODY = ("corrupt", "trailing_data")


class Engine:
    """Encrypts, decrypts, rewraps, inspects and compares envelopes with KMS data keys.

    ``kms_client``: a boto3 KMS client (amazon.aws's retrying wrapper is accepted); used for its own
    region. ``client_for_region(region)``: makes clients for keys in other regions (default: same
    credentials, config and custom endpoint as ``kms_client``). Plugins build engines with
    ``for_aws``, whose clients all come from ``module_utils/kms.py`` with the collection's retry policy.
    """

    def __init__(self, kms_client, client_for_region=None, commitment_policy=DEFAULT_COMMITMENT_POLICY,
                 max_encrypted_data_keys=DEFAULT_MAX_ENCRYPTED_DATA_KEYS, max_frame_length=DEFAULT_MAX_FRAME_LENGTH):
        require_esdk()
        self._kms = providers.unwrap_client(kms_client)
        self.region = self._kms.meta.region_name
        self._client_factory = client_for_region
        self._clients = {self.region: self._kms}
        self._max_data_keys = max_encrypted_data_keys
        self._max_frame_length = max_frame_length
        self._sdk = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=checked_commitment_policy(commitment_policy), max_encrypted_data_keys=max_encrypted_data_keys
        )
        self._providers = {}
        self._key_arns = {}
        self._failures = []  # (key id, botocore error or None) per failed KMS master key call
        self.materials_cache = MaterialsCache()  # data keys of shared-key messages (vars files), in memory

    @classmethod
    def for_aws(cls, aws, **kwargs):
        """From an AnsibleAWSModule or an amazon.aws plugin, every client made by kms.kms_client."""
        # Imported here: kms.py pulls in amazon.aws's module_utils (~45 MiB of RSS), which a bare
        # Engine (the benchmarks, other tools) does not need.
        from ansible_collections.envelope.kms.plugins.module_utils.kms import kms_client  # pylint: disable=import-outside-toplevel

        return cls(kms_client(aws), client_for_region=lambda region: kms_client(aws, region), **kwargs)

    # -- clients, providers, key ARNs

    def client_for_region(self, region):
        client = self._clients.get(region)
        if client is None:
            client = self._client_factory(region) if self._client_factory else providers.client_like(self._kms, region)
            client = self._clients[region] = providers.unwrap_client(client)
        return client

    def _provider(self, spec):
        cache_key, factory, kwargs = spec
        provider = self._providers.get(cache_key)
        if provider is None:
            provider = factory(client_for_region=self.client_for_region, failure_log=self._failures,
                               region_names=[self.region], **kwargs)
            self._providers[cache_key] = provider
        return provider

    def resolve_key_arn(self, key_id):
        """Key ARN for a key id, key ARN, alias name or alias ARN (DescribeKey, cached per engine)."""
        key_id = normalize_key_id(key_id)
        if key_id not in self._key_arns:
            with Translated(f"cannot resolve KMS key {key_id}"):
                region = key_id.split(":")[3] if key_id.startswith("arn:") else self.region
                metadata = self.client_for_region(region).describe_key(KeyId=key_id)["KeyMetadata"]
            self._key_arns[key_id] = metadata["Arn"]
        return self._key_arns[key_id]

    def resolve_key_arns(self, key_ids, check_mode=False, warn=None, option="key_id"):
        """Key ARNs of one key id or a list, in order. In check mode ``key_ids`` may hold the
        predictions of earlier tasks (inputs.predicted_key_ids): a None entry, or one that names no
        key, is reported to ``warn`` and stands as an unknown key ARN (inputs.shown_key_arns), which
        no envelope is wrapped under and which is never sent to KMS."""
        if check_mode:
            return resolve_predicted_key_ids(self.resolve_key_arn, key_ids, warn, option)
        return [self.resolve_key_arn(key_id) for key_id in key_id_list(key_ids)]

    def policy(self, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
               discovery_partition=None):
        """A validated DecryptPolicy, its partition defaulting to this engine's region's."""
        return decrypt_policy(encryption_context, allowed_key_arns, discovery_account_ids, discovery_partition,
                              self.region)

    # -- encrypt

    def encrypt_file(self, src, dest, key_ids, encryption_context=None, algorithm=None, frame_length=None, mode=0o600,
                     checksums=True, durable=True):
        """Encrypt the file ``src`` into ``dest`` (temp file beside it, then rename). Returns EnvelopeFacts
        with size, sha1 and sha256 of the ciphertext (hashing is the biggest cost after AES on large
        files: ``checksums=False`` skips it; ``durable=False`` skips the fsync, for a scratch file
        that another tool copies right away). ``key_ids``: one or a list; the first generates the
        data key, each other one wraps it too."""
        require_path(src, "encrypt_file")
        with open_source(src, "cannot encrypt") as source:
            return self._encrypt_to_file(source, dest, key_ids, encryption_context, algorithm, frame_length, mode,
                                         checksums, durable)

    def encrypt_bytes(self, plaintext, dest, key_ids, encryption_context=None, algorithm=None, frame_length=None,
                      mode=0o600, checksums=True, durable=True):
        """Like encrypt_file, from bytes (or str, encoded as UTF-8) held in memory."""
        if isinstance(plaintext, str):
            plaintext = plaintext.encode("utf-8")
        with open_source(bytes(plaintext), "cannot encrypt") as source:
            return self._encrypt_to_file(source, dest, key_ids, encryption_context, algorithm, frame_length, mode,
                                         checksums, durable)

    def encrypt_reader(self, reader, dest, key_ids, encryption_context=None, mode=0o600, uid=-1, gid=-1,
                       before_commit=None):
        """Like encrypt_file, from a binary reader (read(n)) of plaintext made in memory, such as a
        decrypting one (openssl.LegacyReader): the plaintext never reaches disk. ``before_commit()``
        runs once the reader is exhausted and may raise to discard the new file (a checksum that
        does not match); ``uid``/``gid`` (-1: ours) are set on the temp file before the rename."""
        source = open_source(reader, "cannot encrypt")
        return self._encrypt_to_file(source, dest, key_ids, encryption_context, None, None, mode, True, True,
                                     before_commit=before_commit, uid=uid, gid=gid)

    def _encrypt_to_file(self, source, dest, key_ids, context, algorithm, frame_length, mode, checksums, durable,
                         before_commit=None, uid=-1, gid=-1):
        what = f"cannot encrypt {source.label} to {dest}"
        refuse_same_file(source.stream, dest, what)
        with AtomicFile(dest, mode, durable=durable, uid=uid, gid=gid) as out:
            sink = out.write_hashed if checksums else out.write
            header = self._encrypt_stream(source.stream, sink, key_ids, context, algorithm, frame_length, what)
            if before_commit is not None:
                before_commit()
            with Translated(what):
                out.commit()
        return _written_facts(header, out, checksums)

    def _encrypt_stream(self, plaintext_stream, sink, key_ids, context, algorithm, frame_length, what):
        key_ids = key_id_list(key_ids)
        context = normalize_context(context)
        suite = algorithm_suite(algorithm)
        frame_length = checked_frame_length(frame_length)
        check_context_fits(context, what, signed=suite.signing_algorithm_info is not None)  # before any KMS call
        del self._failures[:]
        with Translated(what, self._failures):
            provider = self._provider(providers.encrypt_provider_spec(key_ids))
            with self._sdk.stream(mode="e", source=plaintext_stream, key_provider=provider,
                                  encryption_context=context, algorithm=suite, frame_length=frame_length) as encryptor:
                # One frame per read keeps the library linear (see DEFAULT_FRAME_LENGTH).
                for chunk in iter(lambda: encryptor.read(frame_length), b""):
                    sink(chunk)
                return encryptor.header

    # -- decrypt

    def decrypt_file(self, src, dest, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                     discovery_partition=None, mode=0o600, uid=-1, gid=-1):
        """Decrypt ``src`` into ``dest``: plaintext goes to a 0600 temp file beside dest that replaces
        it only after the whole message verified, the required context pairs matched and nothing
        followed the message; ``mode`` and ``uid``/``gid`` (-1: ours) are set on it before. A dest
        that is src itself is refused. Returns the EnvelopeFacts (authenticated).

        ``encryption_context``: pairs the file must carry (extra pairs in the file are fine), or a
        DecryptPolicy. ``allowed_key_arns``: only these key ARNs may unwrap (strict); else
        ``discovery_account_ids`` (and ``discovery_partition``, default from the region) limit
        discovery; with neither, any KMS key the credentials can use."""
        policy = self.policy(encryption_context, allowed_key_arns, discovery_account_ids, discovery_partition)
        with open_source(src, "cannot decrypt") as source:
            what = f"cannot decrypt {source.label}"
            refuse_same_file(source.stream, dest, what)
            with AtomicFile(dest, mode, uid=uid, gid=gid) as out:
                facts = self._decrypt_stream(source, out.write, policy, what)
                with Translated(what):
                    out.commit()
        return facts

    def decrypt_bytes(self, src, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                      discovery_partition=None, max_size=None):
        """(plaintext bytes, EnvelopeFacts) for a path, bytes or binary file, with the same checks as
        decrypt_file. ``max_size`` bounds the plaintext held in memory."""
        plaintext = bytearray()

        def collect(chunk):
            if max_size is not None and len(plaintext) + len(chunk) > max_size:
                raise EnvelopeError(f"cannot decrypt {label(src)}: the plaintext is larger than {max_size} bytes",
                                    "too_large", label(src))
            plaintext.extend(chunk)

        facts = self.decrypt_to(src, collect, encryption_context, allowed_key_arns, discovery_account_ids,
                                discovery_partition)
        return bytes(plaintext), facts

    def decrypt_to(self, src, sink, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                   discovery_partition=None):
        """Decrypt with the checks of decrypt_file, handing plaintext chunks to ``sink(chunk)``.
        Returns the authenticated EnvelopeFacts.

        Chunks arrive before the end of the message is verified: the caller must not release them
        when this raises. An exception from ``sink`` (e.g. Mismatch) stops decrypting and propagates."""
        policy = self.policy(encryption_context, allowed_key_arns, discovery_account_ids, discovery_partition)
        with open_source(src, "cannot decrypt") as source:
            return self._decrypt_stream(source, sink, policy, f"cannot decrypt {source.label}")

    def _decrypt_stream(self, source, sink, policy, what):
        """Preflight on the raw header (no KMS), decrypt, re-check on the authenticated header,
        stream plaintext to sink, then require end of input."""
        policy.check(read_facts(source.stream, what, self._max_data_keys, self._max_frame_length)[0], what)
        size = source.size()
        del self._failures[:]
        with Translated(what, self._failures):
            with self._decryptor(source.stream, policy) as decryptor:
                facts = facts_from_header(decryptor.header, size)
                policy.check(facts, what)
                read_size = facts.frame_length or CHUNK_SIZE
                for chunk in iter(lambda: decryptor.read(read_size), b""):
                    sink(chunk)
            require_end_of_input(source.stream, what)
        return facts

    def _decryptor(self, stream, policy):
        return self._sdk.stream(mode="d", source=stream, key_provider=self._provider(providers.provider_spec(policy, self.region)),
                                max_body_length=self._max_frame_length)

    # -- small messages under one shared data key (envelope vars files)

    def shared_key_manager(self, policy=None, key_ids=None):
        """A SharedKeyManager on this engine's materials cache: for encrypting under ``key_ids``
        (one data key for every message) or for decrypting under a DecryptPolicy."""
        if key_ids is not None:
            spec = providers.encrypt_provider_spec(key_id_list(key_ids))
        else:
            spec = providers.provider_spec(policy, self.region)
        return SharedKeyManager(self._provider(spec), spec[0], self.materials_cache)

    def encrypt_message(self, plaintext, manager, encryption_context=None, algorithm=None, frame_length=None,
                        what="cannot encrypt"):
        """One complete ESDK message (bytes) of ``plaintext`` (bytes) with a SharedKeyManager."""
        context = normalize_context(encryption_context)
        suite = algorithm_suite(algorithm)
        check_context_fits(context, what, signed=suite.signing_algorithm_info is not None)  # before any KMS call
        del self._failures[:]
        with Translated(what, self._failures):
            ciphertext, _header = self._sdk.encrypt(
                source=plaintext, materials_manager=manager, encryption_context=context, algorithm=suite,
                frame_length=checked_frame_length(frame_length),
            )
        return ciphertext

    def decrypt_message(self, ciphertext, manager, policy, what):
        """(plaintext, EnvelopeFacts, header) of one message held in memory (bytes), with the
        checks of decrypt_file, through a SharedKeyManager (its cache spares the KMS Decrypt of a
        data key it has seen). Nothing is returned unless the whole message verified."""
        with open_source(bytes(ciphertext), what) as source:
            policy.check(read_facts(source.stream, what, self._max_data_keys, self._max_frame_length)[0], what)
            del self._failures[:]
            with Translated(what, self._failures):
                with self._sdk.stream(mode="d", source=source.stream, materials_manager=manager,
                                      max_body_length=self._max_frame_length) as decryptor:
                    facts = facts_from_header(decryptor.header, len(ciphertext))
                    policy.check(facts, what)
                    plaintext = decryptor.read()
                    header = decryptor.header
                require_end_of_input(source.stream, what)
        return plaintext, facts, header

    # -- rewrap

    def rewrap_file(self, src, key_ids, dest=None, encryption_context=None, required_encryption_context=None,
                    allowed_key_arns=None, discovery_account_ids=None, discovery_partition=None, algorithm=None,
                    frame_length=None, mode=None):
        """Re-encrypt ``src`` under ``key_ids`` into ``dest`` (default: in place, keeping mode and owner),
        streaming plaintext from the decryptor to the encryptor in memory: plaintext never reaches
        disk. ``encryption_context``, ``algorithm`` and ``frame_length`` default to the file's own.
        Returns (old facts, new facts)."""
        require_path(src, "rewrap_file")
        policy = self.policy(required_encryption_context, allowed_key_arns, discovery_account_ids, discovery_partition)
        dest = src if dest is None else dest
        with open_source(src, "cannot rewrap") as source:
            what = f"cannot rewrap {source.label}"
            old = read_facts(source.stream, what, self._max_data_keys, self._max_frame_length)[0]
            policy.check(old, what)
            context = old.encryption_context if encryption_context is None else encryption_context
            # Keep the file's own suite and framing unless told otherwise (a signed file stays signed).
            algorithm = old.algorithm if algorithm is None else algorithm
            frame_length = (old.frame_length or None) if frame_length is None else frame_length
            # Rewriting an existing file keeps its mode and owner unless a mode is given.
            like = os.stat(dest) if mode is None and os.path.exists(dest) else None
            with AtomicFile(dest, 0o600 if mode is None and like is None else mode, like=like) as out:
                del self._failures[:]
                with Translated(what, self._failures):
                    with self._decryptor(source.stream, policy) as decryptor:
                        old = facts_from_header(decryptor.header)
                        policy.check(old, what)
                        plaintext = DecryptedReader(decryptor, old.frame_length)
                        header = self._encrypt_stream(plaintext, out.write_hashed, key_ids, context, algorithm,
                                                      frame_length, what)
                        plaintext.read()  # the encryptor stopped at the end of data: let the decryptor finish
                    require_end_of_input(source.stream, what)
                    out.commit()
        return old, _written_facts(header, out, True)

    # -- idempotence

    def compare(self, ciphertext, plaintext, key_arns, encryption_context=None, algorithm=None, frame_length=None):
        """Does the envelope ``ciphertext`` (path, bytes or binary file) already hold ``plaintext``
        (bytes, or a path as str) wrapped under exactly ``key_arns`` with exactly this context
        (and, if given, this suite and frame length)? Metadata and size are checked first with no
        KMS call; only when they all match is the envelope decrypted (one KMS Decrypt, with key_arns
        as the only allowed keys) and compared chunk by chunk in constant memory.

        A file that is not a valid envelope compares as different ('invalid'); KMS, credentials
        and I/O problems raise EnvelopeError."""
        wanted_context = normalize_context(encryption_context)
        with open_source(ciphertext, "cannot compare") as envelope:
            what = f"cannot compare {envelope.label}"
            checked = self._prechecked(envelope.stream, envelope.size(), what)
            if checked is None:
                return Comparison(False, ("invalid",))
            facts, header_length = checked
            reasons = _metadata_differences(facts, key_arns, wanted_context, algorithm, frame_length)
            if reasons:
                return Comparison(False, tuple(reasons), facts)
            with open_plaintext(plaintext) as expected:
                if not size_could_hold(envelope.stream, facts, header_length, expected.size()):
                    return Comparison(False, ("content",), facts)
                policy = DecryptPolicy.strict(key_arns, wanted_context)
                return self._compare_content(envelope, expected, facts, policy, what)

    def compare_digest(self, prefix, size, sha1, plaintext, key_arns, encryption_context=None, algorithm=None,
                       frame_length=None):
        """Does the envelope of ``size`` bytes whose sha1 is ``sha1`` (hex) and whose first bytes are
        ``prefix`` hold ``plaintext`` under exactly ``key_arns`` and this context? Decided without
        the envelope's body: the header is checked as ``compare`` does, then decrypted by the
        library (one KMS Decrypt; header authentication and key commitment verified), and the body
        this plaintext gets under that header is built with the library's own frame serializer
        (frame IVs are sequence numbers, so an unsigned framed message is a function of its header
        and plaintext) and hashed: the same sha1 means the same bytes.

        None when this cannot decide: a signed suite (its footer signature is not reproducible), a
        non-framed message, or a prefix shorter than the header; read the whole envelope then."""
        wanted_context = normalize_context(encryption_context)
        what = "cannot compare the envelope at dest"
        stream = io.BytesIO(prefix)
        checked = self._prechecked(stream, size, what)
        if checked is None:
            return None if len(prefix) < size else Comparison(False, ("invalid",))
        facts, header_length = checked
        if header_length > len(prefix):
            return None
        reasons = _metadata_differences(facts, key_arns, wanted_context, algorithm, frame_length)
        if reasons:
            return Comparison(False, tuple(reasons), facts)
        if algorithm_suite(facts.algorithm_id).signing_algorithm_info is not None or not facts.frame_length:
            return None
        with open_plaintext(plaintext) as expected:
            if not size_could_hold(stream, facts, header_length, expected.size()):
                return Comparison(False, ("content",), facts)
            policy = DecryptPolicy.strict(key_arns, wanted_context)
            raw_header = prefix[:header_length]
            del self._failures[:]
            try:
                with Translated(what, self._failures):
                    decryptor = self._decryptor(io.BytesIO(raw_header), policy)
                    header = decryptor.header  # reads and verifies the header, decrypts the data key
                    policy.check(facts_from_header(header, size), what)
                    digest = _framed_digest(raw_header, header, decryptor._derived_data_key,  # pylint: disable=protected-access
                                            facts.frame_length, expected.stream)
            except EnvelopeError as error:
                if error.kind in _UNREADABLE_BODY:
                    return Comparison(False, ("invalid",), facts, kms_calls=1)
                raise
        same = digest[1] == size and digest[0] == str(sha1).lower()
        return Comparison(same, () if same else ("content",), facts, kms_calls=1)

    def _prechecked(self, stream, size, what):
        """(facts with ``size``, header length) of the envelope header at the start of ``stream``,
        with no KMS call; None when it is not a readable envelope header."""
        try:
            facts, header_length = read_facts(stream, what, self._max_data_keys, self._max_frame_length)
        except EnvelopeError as error:
            if error.kind in _UNREADABLE_HEADER:
                return None
            raise
        return facts.with_size(size), header_length

    def _compare_content(self, envelope, expected, facts, policy, what):
        matcher = PlaintextMatcher(expected.stream)
        try:
            self._decrypt_stream(envelope, matcher.feed, policy, what)
        except Mismatch:
            return Comparison(False, ("content",), facts, kms_calls=1)
        except EnvelopeError as error:
            if error.kind in _UNREADABLE_BODY:
                return Comparison(False, ("invalid",), facts, kms_calls=1)
            raise
        if not matcher.finish():
            return Comparison(False, ("content",), facts, kms_calls=1)
        return Comparison(True, (), facts, kms_calls=1)

    def compare_plaintext(self, src, plaintext_path, policy, keep=0, stop_on_mismatch=True):
        """Does the envelope ``src`` decrypt (under a DecryptPolicy) to exactly the file at
        ``plaintext_path`` (None: no file)? (same, facts or None, matcher), with one KMS Decrypt,
        or none when the envelope's size proves it cannot hold that file. ``keep`` bytes of
        plaintext stay in ``matcher.kept``; without ``stop_on_mismatch`` the whole envelope is
        verified even after a difference (check mode: nothing else will verify it)."""
        if plaintext_path is not None and stop_on_mismatch and not self._could_hold(src, os.stat(plaintext_path)):
            return False, None, PlaintextMatcher(None)  # decided from sizes: the file need not even be readable
        expected = open(plaintext_path, "rb") if plaintext_path is not None else None
        try:
            matcher = PlaintextMatcher(expected, stop_on_mismatch=stop_on_mismatch, keep=keep)
            try:
                facts = self.decrypt_to(src, matcher.feed, policy)
            except Mismatch:
                return False, None, matcher
            return matcher.finish(), facts, matcher
        finally:
            if expected is not None:
                expected.close()

    def _could_hold(self, src, plaintext_stat):
        """False when the envelope's size and header prove it does not hold that many bytes (no KMS)."""
        with open_source(src, "cannot decrypt") as source:
            try:
                facts, header_length = read_facts(source.stream, source.label, self._max_data_keys, self._max_frame_length)
            except EnvelopeError:
                return True  # decrypting reports it, in its own words
            return size_could_hold(source.stream, facts.with_size(source.size()), header_length, plaintext_stat.st_size)


def _framed_digest(raw_header, header, data_key, frame_length, plaintext):
    """(sha1 hex, size) of the unsigned framed message with this header over the plaintext stream,
    framed as the library's encryptor frames it: full frames while a whole frame remains, then a
    final frame of what is left (possibly empty)."""
    digest = hashlib.sha1(raw_header)
    size = len(raw_header)
    sequence_number = 1
    while True:
        chunk = _read_exactly(plaintext, frame_length)
        final = len(chunk) < frame_length
        frame, _rest = serialize_frame(algorithm=header.algorithm, plaintext=chunk, message_id=header.message_id,
                                       data_encryption_key=data_key, frame_length=frame_length,
                                       sequence_number=sequence_number, is_final_frame=final)
        digest.update(frame)
        size += len(frame)
        if final:
            return digest.hexdigest(), size
        sequence_number += 1


def _read_exactly(stream, length):
    data = stream.read(length)
    while len(data) < length:
        more = stream.read(length - len(data))
        if not more:
            break
        data += more
    return data


def _written_facts(header, out, checksums):
    """EnvelopeFacts of the ciphertext an AtomicFile just received."""
    if not checksums:
        return facts_from_header(header, out.size)
    return facts_from_header(header, out.size, *out.checksums())


def _metadata_differences(facts, key_arns, wanted_context, algorithm, frame_length):
    reasons = facts.wrapped_as(key_arns, wanted_context)
    if algorithm is not None and algorithm_suite(algorithm).algorithm_id != facts.algorithm_id:
        reasons.append("algorithm")
    if frame_length is not None and checked_frame_length(frame_length) != facts.frame_length:
        reasons.append("frame_length")
    return reasons
