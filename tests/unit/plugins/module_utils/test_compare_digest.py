"""Engine.compare_digest: sameness from an envelope's first bytes and its sha1, without its body
(what envelope.kms.copy asks of a big envelope on a host), against the local KMS endpoint."""

import hashlib
import os
import tempfile

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError
from tests.harness.kms_server import REGION

CONTEXT = {"app": "billing"}
SIGNED = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
FRAME = 4096


@pytest.fixture
def engine(kms):
    return Engine(kms)


def sealed(engine, arn, plaintext, algorithm=None, frame_length=FRAME):
    """The envelope bytes as envelope.kms.copy writes them."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "envelope")
        engine.encrypt_bytes(plaintext, path, [arn], CONTEXT, algorithm, frame_length, checksums=False, durable=False)
        with open(path, "rb") as handle:
            return handle.read()


def digest(engine, arn, envelope, plaintext, prefix_length=16384, **kwargs):
    return engine.compare_digest(envelope[:prefix_length], len(envelope), hashlib.sha1(envelope).hexdigest(),
                                 plaintext, [arn], CONTEXT, **kwargs)


@pytest.mark.parametrize("size", [0, 1, FRAME - 1, FRAME, FRAME + 1, 3 * FRAME, 3 * FRAME + 17])
def test_the_envelope_of_the_same_plaintext_is_the_same_for_every_framing_edge(kms_server, engine, app_key, size):
    plaintext = os.urandom(size)
    envelope = sealed(engine, app_key.arn, plaintext)
    kms_server.start_recording()
    comparison = digest(engine, app_key.arn, envelope, plaintext)
    assert comparison.same and comparison.kms_calls == 1
    assert kms_server.kms_calls() == {"Decrypt": 1}  # no GenerateDataKey, no Encrypt


def test_a_plaintext_path_is_streamed_in_frames(engine, app_key, tmp_path):
    plaintext = os.urandom(5 * FRAME + 3)
    (tmp_path / "plain").write_bytes(plaintext)
    envelope = sealed(engine, app_key.arn, plaintext)
    assert digest(engine, app_key.arn, envelope, str(tmp_path / "plain")).same


def test_one_changed_byte_of_plaintext_or_envelope_is_a_difference(engine, app_key):
    plaintext = os.urandom(2 * FRAME + 5)
    envelope = sealed(engine, app_key.arn, plaintext)
    other = bytearray(plaintext)
    other[FRAME + 1] ^= 1
    assert digest(engine, app_key.arn, envelope, bytes(other)).reasons == ("content",)
    # the host's file differs in its last tag: its sha1 differs, our rebuild does not
    tampered = bytearray(envelope)
    tampered[-1] ^= 1
    comparison = engine.compare_digest(envelope[:16384], len(envelope), hashlib.sha1(bytes(tampered)).hexdigest(),
                                       plaintext, [app_key.arn], CONTEXT)
    assert comparison.reasons == ("content",)


def test_metadata_and_size_differences_cost_no_kms_call(kms_server, kms, engine, app_key):
    plaintext = b"x" * 100
    envelope = sealed(engine, app_key.arn, plaintext)
    other_key = kms.create_key()["KeyMetadata"]["Arn"]
    kms_server.start_recording()
    assert digest(engine, other_key, envelope, plaintext).reasons == ("key",)
    assert engine.compare_digest(envelope, len(envelope), hashlib.sha1(envelope).hexdigest(), plaintext,
                                 [app_key.arn], {"app": "other"}).reasons == ("context",)
    assert digest(engine, app_key.arn, envelope, plaintext + b"more than a frame can hide" * 200).reasons == ("content",)
    assert not kms_server.kms_calls()


def test_a_tampered_header_fails_authentication_and_is_a_difference(engine, app_key):
    plaintext = b"secret" * 10
    envelope = bytearray(sealed(engine, app_key.arn, plaintext))
    envelope[40] ^= 1  # inside the message id: the header's auth tag no longer matches
    comparison = digest(engine, app_key.arn, bytes(envelope), plaintext)
    assert not comparison.same


def test_it_cannot_decide_a_signed_suite_a_short_prefix_or_a_non_envelope_it_can(engine, app_key):
    plaintext = b"y" * 50
    signed = sealed(engine, app_key.arn, plaintext, algorithm=SIGNED)
    assert digest(engine, app_key.arn, signed, plaintext, algorithm=SIGNED) is None
    unsigned = sealed(engine, app_key.arn, plaintext)
    assert digest(engine, app_key.arn, unsigned, plaintext, prefix_length=100) is None  # the header is longer
    junk = b"not an envelope at all" * 100
    assert digest(engine, app_key.arn, junk, plaintext).reasons == ("invalid",)


def test_kms_failures_raise(engine, app_key):
    plaintext = b"z" * 10
    envelope = sealed(engine, app_key.arn, plaintext)
    client = boto3.client("kms", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    stubber.add_client_error("decrypt", service_error_code="AccessDeniedException", service_message="no")
    with stubber, pytest.raises(EnvelopeError) as error:
        digest(Engine(client), app_key.arn, envelope, plaintext)
    assert error.value.kind == "access_denied"
