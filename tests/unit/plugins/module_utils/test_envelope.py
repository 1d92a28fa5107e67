"""Unit tests for the envelope engine (plugins/module_utils/envelope.py).

Real KMS calls go to the local moto server (the `kms` fixture). Where moto cannot produce an error
(it lets disabled keys and keys pending deletion still Decrypt and GenerateDataKey, and it never
throttles or denies access), a botocore Stubber stands in for KMS and returns the error KMS would:
those tests prove the engine's mapping of the KMS error code, not KMS's behaviour. Stubbed
responses bypass botocore's retry loop, so "throttling after retries" is the final
ThrottlingException that reaches the engine once botocore's own retries are spent.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap

import aws_encryption_sdk
import boto3
import botocore.session
import pytest
from aws_encryption_sdk.exceptions import ActionNotAllowedError, MasterKeyProviderError, SerializationError
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from ansible_collections.envelope.kms.plugins.module_utils import envelope
from ansible_collections.envelope.kms.plugins.module_utils._envelope import errors as envelope_errors
from ansible_collections.envelope.kms.plugins.module_utils._envelope import format as envelope_format
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    DEFAULT_FRAME_LENGTH,
    SIGNED_ALGORITHM,
    Engine,
    EnvelopeError,
    Mismatch,
    PlaintextMatcher,
    inspect_header,
)

REGION = "us-east-1"
CONTEXT = {"app": "billing", "env": "prod"}
F = DEFAULT_FRAME_LENGTH
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


class Keys:
    def __init__(self, kms):
        self.first = kms.create_key(Description="first")["KeyMetadata"]["Arn"]
        self.second = kms.create_key(Description="second")["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName="alias/app", TargetKeyId=self.first)


def new_client(kms_server, region=REGION):
    return boto3.client("kms", endpoint_url=kms_server.url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def keys(kms_server):
    """Keys made once for the module: no test here changes them, and resetting moto per test is slow."""
    kms_server.reset()
    return Keys(new_client(kms_server))


@pytest.fixture
def kms(kms_server, keys):
    """Overrides conftest's `kms`: a fresh client, without resetting the server (keys stay)."""
    return new_client(kms_server)


@pytest.fixture
def engine(kms):
    return Engine(kms)


class Sealed:
    """A small envelope under the first key (two 4 KiB frames and a final one) and its plaintext."""

    def __init__(self, engine, keys, tmp_path):
        self.plaintext = os.urandom(2 * 4096 + 100)
        self.path = tmp_path / "secret.enc"
        engine.encrypt_bytes(self.plaintext, self.path, keys.first, CONTEXT, frame_length=4096)


@pytest.fixture
def sealed(engine, keys, tmp_path):
    return Sealed(engine, keys, tmp_path)


def count_calls(client, operation):
    calls = []
    client.meta.events.register(f"before-call.kms.{operation}", lambda **kwargs: calls.append(operation))
    return calls


def stubbed_client():
    client = boto3.client("kms", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def header_length(data):
    return envelope_format.read_facts(io.BytesIO(data), "test", None)[1]


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def assert_decrypt_refused(engine, source, tmp_path, kind, **checks):
    """Both decrypt paths refuse with `kind`; the old destination stays and no temp file is left."""
    dest = tmp_path / "plain.txt"
    dest.write_bytes(b"old content")
    with pytest.raises(EnvelopeError) as to_file:
        engine.decrypt_file(source, dest, **checks)
    assert to_file.value.kind == kind, str(to_file.value)
    assert dest.read_bytes() == b"old content"
    assert leftovers(tmp_path) == []
    with pytest.raises(EnvelopeError) as to_memory:
        engine.decrypt_bytes(source, **checks)
    assert to_memory.value.kind == kind
    assert "\n" not in str(to_file.value)
    return to_file.value


def tampered(path, offset, tmp_path):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    out = tmp_path / "tampered.enc"
    out.write_bytes(bytes(data))
    return out


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("size", [0, 1, F - 1, F, F + 1, 3 * F])
def test_round_trip_sizes(engine, keys, tmp_path, size):
    plaintext = os.urandom(size)
    facts = engine.encrypt_bytes(plaintext, tmp_path / "out.enc", "app", CONTEXT)
    ciphertext = (tmp_path / "out.enc").read_bytes()
    assert facts.size == len(ciphertext)
    assert facts.sha256 == hashlib.sha256(ciphertext).hexdigest()
    assert facts.sha1 == hashlib.sha1(ciphertext).hexdigest()
    assert facts.key_arns == (keys.first,)
    assert facts.encryption_context == CONTEXT
    assert facts.algorithm == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY" and facts.algorithm_id == 0x0478
    assert facts.frame_length == F and not facts.signed

    engine.decrypt_file(tmp_path / "out.enc", tmp_path / "out.txt", CONTEXT, allowed_key_arns=[keys.first])
    assert (tmp_path / "out.txt").read_bytes() == plaintext
    assert os.stat(tmp_path / "out.txt").st_mode & 0o777 == 0o600
    assert engine.decrypt_bytes(ciphertext, CONTEXT)[0] == plaintext

    # The size formula compare() relies on to skip KMS when sizes already differ.
    suite = Algorithm.get_by_id(facts.algorithm_id)
    low, high = envelope.expected_ciphertext_sizes(header_length(ciphertext), suite, F, size)[0]
    assert low == high == len(ciphertext)
    # The bound the copy action uses when it only knows the remote file's size.
    assert envelope.envelope_could_hold(len(ciphertext), size, F)
    assert not envelope.envelope_could_hold(len(ciphertext), size + (1 << 20), F)


def test_round_trip_50_mib_file_to_file(engine, keys, tmp_path):
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as out:
        while out.tell() < 50 << 20:
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            out.write(chunk)
    facts = engine.encrypt_file(source, tmp_path / "big.enc", keys.first, CONTEXT, mode=0o640, checksums=False)
    assert os.stat(tmp_path / "big.enc").st_mode & 0o777 == 0o640
    assert facts.size == os.path.getsize(tmp_path / "big.enc") > 50 << 20
    assert facts.sha1 is None and facts.sha256 is None
    engine.decrypt_file(tmp_path / "big.enc", tmp_path / "big.out", CONTEXT)
    assert file_sha256(tmp_path / "big.out") == digest.hexdigest()
    assert leftovers(tmp_path) == []


def test_several_wrapping_keys_each_decrypts(engine, keys, tmp_path):
    facts = engine.encrypt_bytes(b"shared secret", tmp_path / "s.enc", ["alias/app", keys.second], CONTEXT)
    assert facts.key_arns == tuple(sorted([keys.first, keys.second]))
    assert inspect_header(tmp_path / "s.enc").key_arns == facts.key_arns
    for only in (keys.first, keys.second):
        plaintext, used = engine.decrypt_bytes(tmp_path / "s.enc", CONTEXT, allowed_key_arns=[only])
        assert plaintext == b"shared secret"


def test_key_in_another_region_uses_a_client_for_that_region(kms, kms_server, keys, tmp_path):
    west = new_client(kms_server, "us-west-2")
    west_key = west.create_key()["KeyMetadata"]["Arn"]
    assert ":us-west-2:" in west_key

    # Default: a sibling client with the same credentials and (custom) endpoint.
    engine = Engine(kms)
    engine.encrypt_bytes(b"dr copy", tmp_path / "dr.enc", [keys.first, west_key])
    assert engine.decrypt_bytes(tmp_path / "dr.enc", allowed_key_arns=[west_key])[0] == b"dr copy"
    assert engine.client_for_region("us-west-2").meta.endpoint_url == kms_server.url

    # Given a factory (AnsibleAWSModule.client with region=...), the engine asks it, once per region.
    asked = []

    def factory(region):
        asked.append(region)
        return west

    engine = Engine(kms, client_for_region=factory)
    assert engine.decrypt_bytes(tmp_path / "dr.enc", allowed_key_arns=[west_key])[0] == b"dr copy"
    assert engine.decrypt_bytes(tmp_path / "dr.enc", allowed_key_arns=[west_key])[0] == b"dr copy"
    assert asked == ["us-west-2"]


def test_signed_suite_round_trip_hides_the_public_key_entry(engine, keys, tmp_path):
    facts = engine.encrypt_bytes(b"signed", tmp_path / "s.enc", keys.first, CONTEXT, algorithm=SIGNED_ALGORITHM)
    assert facts.signed and facts.algorithm_id == 0x0578
    assert facts.encryption_context == CONTEXT
    assert inspect_header(tmp_path / "s.enc").encryption_context == CONTEXT
    assert engine.decrypt_bytes(tmp_path / "s.enc", CONTEXT)[0] == b"signed"
    assert engine.compare(tmp_path / "s.enc", b"signed", [keys.first], CONTEXT).same


def test_one_engine_is_reused_across_files(kms, engine, keys, tmp_path):
    generate = count_calls(kms, "GenerateDataKey")
    for index in range(3):
        engine.encrypt_bytes(b"item %d" % index, tmp_path / f"{index}.enc", "alias/app", CONTEXT)
    assert len(generate) == 3
    assert len(engine._providers) == 1  # one master key provider, built once


def test_providers_do_not_build_a_botocore_session_each(kms, keys, tmp_path, monkeypatch):
    """The library's provider config defaults to a new botocore Session (handler set-up, ~15 ms)
    that our clients make useless: providers share one idle session per process."""
    made = []
    real_init = botocore.session.Session.__init__

    def counting_init(self, *args, **kwargs):
        made.append(kwargs.get("include_builtin_handlers", True))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counting_init)
    for index in range(3):
        engine = Engine(kms)  # a new engine each time: new providers
        engine.encrypt_bytes(b"item %d" % index, tmp_path / f"{index}.enc", keys.first, CONTEXT)
        assert engine.decrypt_bytes(tmp_path / f"{index}.enc", CONTEXT)[0] == b"item %d" % index
    assert True not in made  # no full Session with its builtin handlers
    assert len(made) <= 1  # 0 when an earlier test in this process already made the cached idle session


def test_amazon_aws_retrying_wrapper_is_accepted(kms, keys, tmp_path):
    wrapped = RetryingBotoClientWrapper(kms, AWSRetry.jittered_backoff(retries=2))
    engine = Engine(wrapped)
    engine.encrypt_bytes(b"x", tmp_path / "x.enc", keys.first)
    assert engine.decrypt_bytes(tmp_path / "x.enc")[0] == b"x"
    assert engine.resolve_key_arns(["app", keys.second]) == [keys.first, keys.second]


# ---------------------------------------------------------------------------------------------
# Interoperability with the library's own plain API


def test_interop_with_the_plain_library(kms_server, engine, keys, tmp_path, monkeypatch):
    for name, value in kms_server.environment().items():
        monkeypatch.setenv(name, value)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[keys.first])

    # The library's defaults (4 KiB frames) decrypt with the engine...
    theirs = client.encrypt(source=b"from the library" * 1000, key_provider=provider, encryption_context=CONTEXT)[0]
    (tmp_path / "theirs.enc").write_bytes(theirs)
    assert engine.decrypt_bytes(tmp_path / "theirs.enc", CONTEXT)[0] == b"from the library" * 1000
    assert inspect_header(tmp_path / "theirs.enc").frame_length == 4096

    # ...and the engine's files decrypt with the library.
    engine.encrypt_bytes(b"from the engine", tmp_path / "ours.enc", keys.first, CONTEXT, algorithm=SIGNED_ALGORITHM)
    plaintext, header = client.decrypt(source=(tmp_path / "ours.enc").read_bytes(), key_provider=provider)
    assert plaintext == b"from the engine"
    assert header.encryption_context["app"] == "billing"


# ---------------------------------------------------------------------------------------------
# Header inspection


def test_inspect_header_needs_no_kms(engine, keys, tmp_path):
    engine.encrypt_bytes(b"abc", tmp_path / "a.enc", [keys.first, keys.second], CONTEXT, frame_length=4096)
    facts = inspect_header(tmp_path / "a.enc")  # no client at all: it cannot call KMS
    assert facts.key_arns == tuple(sorted([keys.first, keys.second]))
    assert facts.encryption_context == CONTEXT
    assert facts.algorithm == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
    assert facts.frame_length == 4096
    assert len(facts.message_id) == 64 and facts.data_key_count == 2
    assert facts.size == os.path.getsize(tmp_path / "a.enc")
    assert inspect_header((tmp_path / "a.enc").read_bytes()).message_id == facts.message_id
    assert facts.to_dict()["key_arns"] == list(facts.key_arns)


@pytest.mark.parametrize("content", [b"", b"plain text, not an envelope\n", b"\x02\xff\xff rubbish"])
def test_inspect_header_rejects_non_envelopes(tmp_path, content):
    (tmp_path / "x").write_bytes(content)
    with pytest.raises(EnvelopeError) as error:
        inspect_header(tmp_path / "x")
    assert error.value.kind == "not_envelope"


def test_inspect_header_of_a_truncated_header(sealed):
    path = sealed.path
    with pytest.raises(EnvelopeError) as error:
        inspect_header(path.read_bytes()[:60])
    assert error.value.kind == "corrupt"


# ---------------------------------------------------------------------------------------------
# Refusals: each leaves the old destination and no temp file


def test_tampered_body_byte(engine, sealed, tmp_path):
    path = sealed.path
    error = assert_decrypt_refused(engine, tampered(path, os.path.getsize(path) - 3000, tmp_path), tmp_path, "corrupt")
    assert "tampered" in str(error)


@pytest.mark.parametrize("where", ["message id", "context value", "commitment key", "header tag"])
def test_tampered_header_byte(engine, sealed, tmp_path, where):
    path = sealed.path
    data = path.read_bytes()
    offsets = {
        "message id": 10,
        "context value": data.index(b"billing") + 2,
        "commitment key": header_length(data) - 17,
        "header tag": header_length(data) - 1,
    }
    assert_decrypt_refused(engine, tampered(path, offsets[where], tmp_path), tmp_path, "corrupt")


@pytest.mark.parametrize("keep", ["all but one byte", "all but the final frame", "header only", "half the header"])
def test_truncated(engine, sealed, tmp_path, keep):
    path = sealed.path
    data = path.read_bytes()
    lengths = {
        "all but one byte": len(data) - 1,
        "all but the final frame": len(data) - 150,
        "header only": header_length(data),
        "half the header": header_length(data) // 2,
    }
    short = tmp_path / "short.enc"
    short.write_bytes(data[: lengths[keep]])
    error = assert_decrypt_refused(engine, short, tmp_path, "corrupt")
    assert "truncated" in str(error)


def test_trailing_bytes(engine, sealed, tmp_path):
    path = sealed.path
    longer = tmp_path / "longer.enc"
    longer.write_bytes(path.read_bytes() + b"\0")
    error = assert_decrypt_refused(engine, longer, tmp_path, "trailing_data")
    assert "after the end" in str(error)


def test_not_an_envelope(engine, tmp_path):
    (tmp_path / "plain").write_bytes(b"hello")
    assert_decrypt_refused(engine, tmp_path / "plain", tmp_path, "not_envelope")


@pytest.mark.parametrize(
    "required, reason",
    [({"app": "other"}, "different value for app"), ({"team": "x"}, "missing team")],
)
def test_wrong_context(engine, sealed, tmp_path, required, reason):
    path, plaintext = sealed.path, sealed.plaintext
    error = assert_decrypt_refused(engine, path, tmp_path, "context_mismatch", encryption_context=required)
    assert reason in str(error)
    assert plaintext.hex()[:16] not in str(error)


def test_required_context_is_a_subset(engine, sealed):
    path, plaintext = sealed.path, sealed.plaintext
    assert engine.decrypt_bytes(path, {"app": "billing"})[0] == plaintext  # extra pairs in the file are fine
    assert engine.decrypt_bytes(path, {"env": "prod", "app": "billing"})[0] == plaintext


def test_key_not_allowed(engine, sealed, keys, tmp_path):
    path = sealed.path
    error = assert_decrypt_refused(engine, path, tmp_path, "key_not_allowed", allowed_key_arns=[keys.second])
    assert keys.first in str(error) and keys.second in str(error)


def test_allowed_keys_must_be_key_arns(engine, sealed):
    path = sealed.path
    with pytest.raises(EnvelopeError) as error:
        engine.decrypt_bytes(path, allowed_key_arns=["alias/app"])
    assert error.value.kind == "invalid_argument"


def test_discovery_filter(engine, sealed, tmp_path):
    path, plaintext = sealed.path, sealed.plaintext
    assert engine.decrypt_bytes(path, discovery_account_ids=["123456789012"])[0] == plaintext
    error = assert_decrypt_refused(engine, path, tmp_path, "key_not_allowed", discovery_account_ids=["111122223333"])
    assert "111122223333" in str(error)
    assert_decrypt_refused(engine, path, tmp_path, "key_not_allowed", discovery_account_ids=["123456789012"],
                           discovery_partition="aws-cn")


def test_decrypt_bytes_max_size(engine, sealed):
    path = sealed.path
    with pytest.raises(EnvelopeError) as error:
        engine.decrypt_bytes(path, max_size=100)
    assert error.value.kind == "too_large"


def test_unknown_key_reported_by_kms(engine, keys, tmp_path):
    missing = keys.first[:-12] + "000000000000"
    with pytest.raises(EnvelopeError) as error:
        engine.encrypt_bytes(b"x", tmp_path / "x.enc", missing)
    assert error.value.kind == "key_not_found" and missing in str(error.value)
    (tmp_path / "x.enc").write_bytes(b"old")
    with pytest.raises(EnvelopeError):
        engine.encrypt_bytes(b"x", tmp_path / "x.enc", "alias/nope")
    assert (tmp_path / "x.enc").read_bytes() == b"old"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# KMS errors moto cannot produce: a Stubber returns them (see module docstring)


KMS_ERRORS = [
    ("DisabledException", "key_unusable", "disabled"),
    ("KMSInvalidStateException", "key_unusable", "pending deletion"),
    ("AccessDeniedException", "access_denied", "access denied"),
    ("NotFoundException", "key_not_found", "does not exist"),
    ("ThrottlingException", "throttled", "throttling"),
]


@pytest.mark.parametrize("code, kind, words", KMS_ERRORS)
def test_kms_errors_on_decrypt(sealed, keys, tmp_path, code, kind, words):
    path = sealed.path
    client, stubber = stubbed_client()
    stubber.add_client_error("decrypt", service_error_code=code, service_message=f"{keys.first} says no",
                             http_status_code=400)
    with stubber:
        dest = tmp_path / "plain"
        dest.write_bytes(b"old")
        with pytest.raises(EnvelopeError) as error:
            Engine(client).decrypt_file(path, dest)
    assert error.value.kind == kind
    assert words in str(error.value) and code in str(error.value) and keys.first in str(error.value)
    assert dest.read_bytes() == b"old" and leftovers(tmp_path) == []


@pytest.mark.parametrize("code, kind, words", KMS_ERRORS)
def test_kms_errors_on_encrypt(keys, tmp_path, code, kind, words):
    client, stubber = stubbed_client()
    stubber.add_client_error("generate_data_key", service_error_code=code, service_message="no", http_status_code=400)
    with stubber, pytest.raises(EnvelopeError) as error:
        Engine(client).encrypt_bytes(b"secret", tmp_path / "x.enc", keys.first)
    assert error.value.kind == kind and words in str(error.value)
    assert os.listdir(tmp_path) == []


def test_second_wrapping_key_fails_on_encrypt(keys, tmp_path):
    client, stubber = stubbed_client()
    stubber.add_response("generate_data_key", {"KeyId": keys.first, "Plaintext": b"k" * 32, "CiphertextBlob": b"c"})
    stubber.add_client_error("encrypt", service_error_code="DisabledException", service_message="disabled")
    with stubber, pytest.raises(EnvelopeError) as error:
        Engine(client).encrypt_bytes(b"secret", tmp_path / "x.enc", [keys.first, keys.second])
    assert error.value.kind == "key_unusable" and keys.second in str(error.value)


def test_one_unusable_key_does_not_stop_decryption(kms, keys, tmp_path):
    """Several wrapping keys are for this. KMS answers DisabledException for the first key only
    (a before-call hook answers like a Stubber, but per key: the library's order is a set's)."""
    engine = Engine(kms)
    engine.encrypt_bytes(b"both", tmp_path / "b.enc", [keys.first, keys.second])

    def first_key_disabled(params, **kwargs):
        if json.loads(params["body"]).get("KeyId") == keys.first:
            error = {"Error": {"Code": "DisabledException", "Message": "disabled"}, "ResponseMetadata": {}}
            return AWSResponse(None, 400, {}, None), error
        return None

    kms.meta.events.register("before-call.kms.Decrypt", first_key_disabled)
    plaintext = engine.decrypt_bytes(tmp_path / "b.enc", allowed_key_arns=[keys.first, keys.second])[0]
    assert plaintext == b"both"
    with pytest.raises(EnvelopeError) as error:
        engine.decrypt_bytes(tmp_path / "b.enc", allowed_key_arns=[keys.first])
    assert error.value.kind == "key_unusable"


def test_missing_credentials(kms_server, sealed, keys, tmp_path, monkeypatch):
    path = sealed.path
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = botocore.session.Session().create_client("kms", region_name=REGION, endpoint_url=kms_server.url)
    engine = Engine(client)
    with pytest.raises(EnvelopeError) as on_encrypt:
        engine.encrypt_bytes(b"x", tmp_path / "x.enc", keys.first)
    assert on_encrypt.value.kind == "credentials" and "credentials" in str(on_encrypt.value)
    assert_decrypt_refused(engine, path, tmp_path, "credentials")


@pytest.mark.parametrize(
    "error, kind",
    [
        (MasterKeyProviderError("Key arn:x not allowed by this Master Key Provider"), "key_not_allowed"),
        (MasterKeyProviderError("Key commitment validation failed."), "corrupt"),
        (SerializationError("Header authorization failed"), "corrupt"),
        (ActionNotAllowedError("Configuration conflict"), "policy"),
    ],
)
def test_library_errors_map_to_one_line_kinds(error, kind):
    translated = envelope_errors.translate(error, "cannot decrypt f")
    assert translated.kind == kind and translated.message.startswith("cannot decrypt f: ")


def test_library_discovery_filter_error_is_mapped(engine, sealed):
    """The engine's own preflight normally refuses first; this goes straight to the library's check."""
    path = sealed.path
    policy = envelope.decrypt_policy(None, None, ["111122223333"], None, REGION)
    with pytest.raises(EnvelopeError) as error, open(path, "rb") as stream:
        with envelope_errors.Translated("cannot decrypt", engine._failures):
            with engine._decryptor(stream, policy) as decryptor:
                decryptor.read()
    assert error.value.kind == "key_not_allowed"


# ---------------------------------------------------------------------------------------------
# Idempotence


def test_compare(kms, engine, keys, sealed, tmp_path):
    path, plaintext = sealed.path, sealed.plaintext
    decrypts = count_calls(kms, "Decrypt")

    def compare(content=None, key_arns=None, context=None, **kwargs):
        return engine.compare(path, plaintext if content is None else content, key_arns or [keys.first],
                              CONTEXT if context is None else context, **kwargs)

    assert compare() == envelope.Comparison(True, (), compare().facts, kms_calls=1)
    assert len(decrypts) == 2
    (tmp_path / "wanted").write_bytes(plaintext)
    assert compare(content=str(tmp_path / "wanted")).same

    # Same size, other bytes: only decrypting tells (one Decrypt).
    other = bytearray(plaintext)
    other[-1] ^= 1
    assert compare(content=bytes(other)).reasons == ("content",)
    assert compare(content=bytes(other)).kms_calls == 1

    # Metadata or size differences cost no KMS call.
    before = len(decrypts)
    assert compare(content=plaintext + b"!").reasons == ("content",)
    assert compare(key_arns=[keys.second]).reasons == ("key",)
    assert compare(key_arns=[keys.first, keys.second]).reasons == ("key",)
    assert compare(context={"app": "billing"}).reasons == ("context",)
    assert compare(algorithm=SIGNED_ALGORITHM).reasons == ("algorithm",)
    assert compare(key_arns=[keys.second], context={}).reasons == ("key", "context")
    assert len(decrypts) == before


def test_compare_broken_envelopes_as_different(engine, keys, sealed, tmp_path):
    path, plaintext = sealed.path, sealed.plaintext
    (tmp_path / "junk").write_bytes(b"junk")
    assert engine.compare(tmp_path / "junk", plaintext, [keys.first], CONTEXT).reasons == ("invalid",)
    broken = tampered(path, os.path.getsize(path) - 50, tmp_path)
    assert engine.compare(broken, plaintext, [keys.first], CONTEXT).reasons == ("invalid",)


def test_compare_raises_kms_errors(sealed, keys):
    path, plaintext = sealed.path, sealed.plaintext
    client, stubber = stubbed_client()
    stubber.add_client_error("decrypt", service_error_code="AccessDeniedException", service_message="no")
    with stubber, pytest.raises(EnvelopeError) as error:
        Engine(client).compare(path, plaintext, [keys.first], CONTEXT)
    assert error.value.kind == "access_denied"


# ---------------------------------------------------------------------------------------------
# Rewrap


def test_rewrap_in_place_keeps_mode(engine, keys, sealed, tmp_path):
    path, plaintext = sealed.path, sealed.plaintext
    os.chmod(path, 0o640)
    old, new = engine.rewrap_file(path, keys.second, required_encryption_context=CONTEXT)
    assert old.key_arns == (keys.first,) and new.key_arns == (keys.second,)
    assert new.encryption_context == CONTEXT and new.frame_length == 4096  # the file keeps its own framing
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert engine.decrypt_bytes(path, CONTEXT, allowed_key_arns=[keys.second])[0] == plaintext
    assert leftovers(tmp_path) == []


def test_rewrap_refusal_leaves_the_file(engine, keys, sealed, tmp_path):
    path = sealed.path
    before = path.read_bytes()
    with pytest.raises(EnvelopeError) as error:
        engine.rewrap_file(path, keys.second, required_encryption_context={"app": "other"})
    assert error.value.kind == "context_mismatch"
    longer = tmp_path / "longer.enc"
    longer.write_bytes(before + b"x")
    with pytest.raises(EnvelopeError) as error:
        engine.rewrap_file(longer, keys.second)
    assert error.value.kind == "trailing_data"
    assert path.read_bytes() == before and longer.read_bytes() == before + b"x"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Inputs, import guard, memory


def test_inputs_are_checked(engine, keys, tmp_path):
    assert envelope.normalize_key_id("app") == "alias/app"
    assert envelope.normalize_key_id(keys.first) == keys.first
    assert envelope.normalize_key_id("1234abcd-12ab-34cd-56ef-1234567890ab") == "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert envelope.normalize_context({"n": 3}) == {"n": "3"}
    bad_calls = [
        dict(encryption_context={"aws-crypto-public-key": "x"}),
        dict(encryption_context={"flag": True}),
        dict(algorithm="AES_128_NOPE"),
        dict(frame_length=1000),
        dict(key_ids=[]),
    ]
    for call in bad_calls:
        kwargs = dict(dict(key_ids=keys.first), **call)
        with pytest.raises(EnvelopeError) as error:
            engine.encrypt_bytes(b"x", tmp_path / "x.enc", **kwargs)
        assert error.value.kind == "invalid_argument", call
    with pytest.raises(EnvelopeError) as error:
        engine.encrypt_bytes(b"x", tmp_path, keys.first)
    assert error.value.kind == "invalid_argument"
    with pytest.raises(EnvelopeError):
        engine.decrypt_bytes(tmp_path / "x.enc", allowed_key_arns=[keys.first], discovery_account_ids=["1"])
    assert os.listdir(tmp_path) == []


def test_non_committing_algorithm_refused_by_default_policy(engine, keys, tmp_path):
    with pytest.raises(EnvelopeError) as error:
        engine.encrypt_bytes(b"x", tmp_path / "x.enc", keys.first, algorithm="AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384")
    assert error.value.kind == "policy"


def _run_python(code, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, ".build", "collections"), ROOT]))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importable_without_the_library():
    out = _run_python("""
        import sys
        sys.modules["aws_encryption_sdk"] = None  # as on a host without it
        from ansible_collections.envelope.kms.plugins.module_utils import envelope
        try:
            envelope.Engine(None)
        except envelope.EnvelopeError as error:
            print(envelope.HAS_ESDK, "Traceback" in envelope.ESDK_IMPORT_ERROR, error)
    """)
    assert out.startswith("False True the aws-encryption-sdk Python library")


def test_peak_memory_of_a_256_mib_file_stays_bounded(kms_server, keys, tmp_path):
    source = tmp_path / "big"
    with open(source, "wb") as out:
        out.truncate(256 << 20)  # sparse: content does not matter, size does
    out = _run_python("""
        import json, re, sys, boto3
        # ru_maxrss would count the pytest process this one was forked from (Linux keeps the
        # high-water mark across exec): reset the mark and read VmHWM instead.
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        def peak():
            with open("/proc/self/status") as status:
                return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))  # KiB, like ru_maxrss
        from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
        url, key, src = sys.argv[1:]
        kms = boto3.client("kms", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        engine = Engine(kms)
        engine.encrypt_bytes(b"warm up", src + ".small", key)
        base = peak()
        engine.encrypt_file(src, src + ".enc", key)
        encrypted = peak()
        engine.decrypt_file(src + ".enc", src + ".out", allowed_key_arns=[key])
        decrypted = peak()
        print(json.dumps([base // 1024, encrypted // 1024, decrypted // 1024]))
    """, kms_server.url, keys.first, str(source))
    base, encrypted, decrypted = json.loads(out)
    assert os.path.getsize(str(source) + ".out") == 256 << 20
    assert encrypted < 100 and decrypted < 100, (base, encrypted, decrypted)
    assert encrypted - base < 16 and decrypted - base < 16, (base, encrypted, decrypted)


# ---------------------------------------------------------------------------------------------
# PlaintextMatcher (compare and the decrypt module's idempotence)


def feed_all(matcher, data, size):
    for start in range(0, len(data), size):
        matcher.feed(data[start:start + size])
    return matcher.finish()


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_matcher_same(chunk):
    data = os.urandom(10000)
    matcher = PlaintextMatcher(io.BytesIO(data))
    assert feed_all(matcher, data, chunk) is True
    assert matcher.size == 10000


@pytest.mark.parametrize(
    "expected, plaintext",
    [
        (b"abcdef", b"abcdeX"),  # same size, last byte differs
        (b"abcdef", b"abcdefg"),  # plaintext longer
        (b"abcdefg", b"abcdef"),  # dest longer
        (b"", b"a"),
        (b"a", b""),
    ],
)
def test_matcher_differences_without_stopping(expected, plaintext):
    matcher = PlaintextMatcher(io.BytesIO(expected), stop_on_mismatch=False, keep=3)
    assert feed_all(matcher, plaintext, 2) is False
    assert matcher.size == len(plaintext)
    assert bytes(matcher.kept) == plaintext[:4]  # keep + 1 bytes tell "more than keep" apart


def test_matcher_stops_at_first_difference():
    matcher = PlaintextMatcher(io.BytesIO(b"aaaa" + b"b" * 100))
    matcher.feed(b"aaaa")
    with pytest.raises(Mismatch):
        matcher.feed(b"c" * 100)


def test_matcher_without_expected_file_is_different_and_keeps_nothing_by_default():
    matcher = PlaintextMatcher(None)
    matcher.feed(b"data")
    assert matcher.finish() is False
    assert matcher.kept == b""


@pytest.mark.parametrize("algorithm", [None, SIGNED_ALGORITHM])
@pytest.mark.parametrize("size", [0, 1, 31, 4096, 3 * 4096])
def test_exact_size_rule_from_the_header_and_footer(engine, keys, tmp_path, algorithm, size):
    """The rule compare() and compare_plaintext() use to skip KMS: exact for unsigned and signed
    messages (a signed message's footer says how long its signature is), never a false 'cannot hold'."""
    facts = engine.encrypt_bytes(b"p" * size, tmp_path / "e", keys.first, CONTEXT, algorithm, 4096)
    data = (tmp_path / "e").read_bytes()
    stream = io.BytesIO(data)
    parsed, length = envelope_format.read_facts(stream, "test", None)
    parsed = parsed.with_size(facts.size)
    assert envelope_format.size_could_hold(stream, parsed, length, size)
    assert stream.tell() == 0
    for other in (size + 1, size + 40, size + 4096):
        assert not envelope_format.size_could_hold(stream, parsed, length, other), other
    if size:
        assert not envelope_format.size_could_hold(stream, parsed, length, size - 1)


def test_frame_length_is_a_multiple_of_128_as_the_library_requires(engine, keys, tmp_path):
    for refused in (16, 100, 0, 64 * 1024 * 1024 + 128):
        with pytest.raises(EnvelopeError, match="multiple of 128") as raised:
            engine.encrypt_bytes(b"x", tmp_path / "e", keys.first, frame_length=refused)
        assert raised.value.kind == "invalid_argument"
    assert not os.path.exists(tmp_path / "e")
    assert engine.encrypt_bytes(b"x" * 300, tmp_path / "e", keys.first, frame_length=128).frame_length == 128
