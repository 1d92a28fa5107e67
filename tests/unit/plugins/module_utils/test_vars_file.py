"""Envelope vars files (module_utils/vars_file.py) and the shared data key, against the local KMS endpoint."""

import base64
import json

import io
import os

import pytest

from tests.harness import esdk
from ansible_collections.envelope.kms.plugins.module_utils import vars_file as vf
from ansible_collections.envelope.kms.plugins.module_utils.envelope import DecryptPolicy, Engine, inspect_header
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError

NAME = "group_vars/prod/secrets.kms.yml"


def write(engine, tree=None, check_mode=False, **request):
    return vf.update_tree(engine, tree or {}, vf.Request(NAME, **request), check_mode=check_mode)


def reload(update, name=NAME):
    return vf.parse(update.text.encode("utf-8"), name)


@pytest.fixture
def engine(kms):
    return Engine(kms)


@pytest.fixture
def made(engine, app_key):
    values = {"db": {"password": "pw-1", "user": "app"}, "token": "t0k-en", "port": 5432, "hosts": ["a", "b"],
              "flag": False, "nothing": None}
    return write(engine, values=values, clear_values={"db_host": "db.internal"}, key_arns=[app_key.arn],
                 encryption_context={"env": "prod"})


def test_values_are_sealed_keys_readable_and_clear_values_clear(made):
    tree = reload(made)
    assert tree["db_host"] == "db.internal"
    sealed = dict(vf.sealed_leaves(tree))
    assert set(sealed) == {("db", "password"), ("db", "user"), ("token",), ("port",), ("hosts",), ("flag",),
                           ("nothing",)}
    assert all(text.startswith("envelope-kms:v1:") for text in sealed.values())
    # the needles hold "-", which base64 text never does, so a random ciphertext cannot contain them
    assert "pw-1" not in made.text and "t0k-en" not in made.text
    assert made.changes["added"] == ["db_host", "db.password", "db.user", "token", "port", "hosts", "flag", "nothing"]


def test_one_generate_data_key_per_file_and_every_value_shares_its_encrypted_data_keys(kms_server, engine, app_key):
    kms_server.start_recording()
    update = write(engine, values={f"v{i}": f"value-{i}" for i in range(20)}, key_arns=[app_key.arn])
    assert kms_server.kms_calls() == {"GenerateDataKey": 1}
    headers = [inspect_header(vf.unseal(text, "t")) for _path, text in vf.sealed_leaves(reload(update))]
    assert {header.key_arns for header in headers} == {(app_key.arn,)}
    assert len({header.message_id for header in headers}) == 20  # each its own message


def test_load_costs_one_decrypt_per_file_and_restores_types(kms_server, kms, made, app_key):
    kms_server.start_recording()
    decrypted = vf.decrypt_tree(Engine(kms), reload(made), NAME, DecryptPolicy.strict([app_key.arn], {"env": "prod"}))
    assert kms_server.kms_calls() == {"Decrypt": 1}
    assert decrypted.tree == {"db_host": "db.internal", "db": {"password": "pw-1", "user": "app"}, "token": "t0k-en",
                              "port": 5432, "hosts": ["a", "b"], "flag": False, "nothing": None}


def test_same_engine_reads_a_second_copy_of_the_file_without_kms(kms_server, engine, made, app_key):
    policy = DecryptPolicy.strict([app_key.arn])
    vf.decrypt_tree(engine, reload(made), NAME, policy)
    kms_server.start_recording()
    vf.decrypt_tree(engine, reload(made, "copy.kms.yml"), "copy.kms.yml", policy)
    assert kms_server.kms_calls() == {}


def test_a_value_decrypts_alone_with_the_plain_library(made, app_key, kms_server):
    text = reload(made)["db"]["password"]
    plaintext, header = esdk.decrypt(kms_server, base64.b64decode(text[len(vf.MARKER):]), [app_key.arn])
    assert json.loads(plaintext) == {"path": ["db", "password"], "value": "pw-1"}
    assert header.encryption_context["env"] == "prod"


def test_editing_one_value_changes_only_its_line(kms, made, app_key):
    update = write(Engine(kms), reload(made), values={"token": "new-token", "db": {"password": "pw-1"}},
                   key_arns=[app_key.arn])
    before, after = made.text.splitlines(), update.text.splitlines()
    assert len(before) == len(after)
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    assert len(changed) == 1 and changed[0][1].startswith("token: envelope-kms:v1:")
    assert update.changes["updated"] == ["token"] and update.changes["unchanged"] == ["db.password"]


def test_new_values_join_the_file_data_key_without_generate_data_key(kms_server, kms, made, app_key):
    kms_server.start_recording()
    update = write(Engine(kms), reload(made), values={"extra": "x"}, trusted_key_arns=[app_key.arn])
    assert kms_server.kms_calls() == {"Decrypt": 1}
    kms_server.start_recording()
    decrypted = vf.decrypt_tree(Engine(kms), reload(update), NAME, DecryptPolicy.strict([app_key.arn]))
    assert decrypted.tree["extra"] == "x"
    assert kms_server.kms_calls() == {"Decrypt": 1}


def test_unchanged_request_is_not_a_change(kms, made, app_key):
    again = write(Engine(kms), reload(made), values={"token": "t0k-en"}, clear_values={"db_host": "db.internal"},
                  key_arns=[app_key.arn, app_key.arn])  # a key named twice is one key
    assert not again.changed and again.text == made.text


def test_remove_drops_empty_mappings(kms, made):
    update = write(Engine(kms), reload(made), remove=["db.password", ["db", "user"], "absent"])
    assert "db" not in reload(update) and update.changes["removed"] == ["db.password", "db.user"]


def test_other_keys_rewrap_every_value(kms, made, app_key):
    other = kms.create_key()["KeyMetadata"]["Arn"]
    update = write(Engine(kms), reload(made), key_arns=[other])
    assert sorted(update.changes["rewrapped"]) == sorted(
        ["db.password", "db.user", "token", "port", "hosts", "flag", "nothing"])
    headers = {inspect_header(vf.unseal(text, "t")).key_arns for _p, text in vf.sealed_leaves(reload(update))}
    assert headers == {(other,)}
    decrypted = vf.decrypt_tree(Engine(kms), reload(update), NAME, DecryptPolicy.strict([other], {"env": "prod"}))
    assert decrypted.tree["db"]["password"] == "pw-1"
    with pytest.raises(EnvelopeError, match="not allowed|allowed"):
        vf.decrypt_tree(Engine(kms), reload(update), NAME, DecryptPolicy.strict([app_key.arn]))


def test_swapped_values_fail_naming_file_and_key(kms, made, app_key):
    tree = reload(made)
    tree["token"], tree["db"]["password"] = tree["db"]["password"], tree["token"]
    with pytest.raises(EnvelopeError) as caught:
        vf.decrypt_tree(Engine(kms), tree, NAME, DecryptPolicy.strict([app_key.arn]))
    assert caught.value.message == (f"cannot decrypt {NAME}: key db.password: the value was encrypted for key "
                                    "token: values were moved or swapped")


def test_value_from_another_file_fails(kms, made, app_key):
    other = write(Engine(kms), values={"token": "theirs"}, key_arns=[app_key.arn], encryption_context={"env": "prod"})
    tree = reload(made)
    tree["token"] = reload(other)["token"]
    with pytest.raises(EnvelopeError, match="key token: it is not under this file's data key"):
        vf.decrypt_tree(Engine(kms), tree, NAME, DecryptPolicy.strict([app_key.arn]))


def test_tampered_value_fails_and_names_the_key(kms, made, app_key):
    tree = reload(made)
    raw = bytearray(vf.unseal(tree["token"], "t"))
    raw[-40] ^= 1
    tree["token"] = vf.seal(bytes(raw))
    with pytest.raises(EnvelopeError, match=f"^cannot decrypt {NAME}: key token: "):
        vf.decrypt_tree(Engine(kms), tree, NAME, DecryptPolicy.strict([app_key.arn]))


def test_wrong_context_is_refused_before_kms(kms_server, kms, made, app_key):
    kms_server.start_recording()
    with pytest.raises(EnvelopeError, match="key db.password: .*env"):
        vf.decrypt_tree(Engine(kms), reload(made), NAME, DecryptPolicy.strict([app_key.arn], {"env": "staging"}))
    assert kms_server.kms_calls()["Decrypt"] == 0


def test_envelope_file_pasted_as_a_value_is_refused(kms, made, app_key, tmp_path):
    engine = Engine(kms)
    tree = reload(made)
    dest = os.path.join(tmp_path, "file.enc")
    engine.encrypt_bytes(b"raw file", dest, [app_key.arn], {"env": "prod"})
    with io.open(dest, "rb") as handle:
        tree["token"] = vf.seal(handle.read())
    with pytest.raises(EnvelopeError, match="key token: .*(not under this file's data key|not an envelope vars value)"):
        vf.decrypt_tree(engine, tree, NAME, DecryptPolicy.strict([app_key.arn]))


@pytest.mark.parametrize("request_args, message", [
    (dict(values="x"), "values must be a mapping"),
    (dict(values={"a": {1: "x"}}), "every key must be a non-empty string"),
    (dict(values={"a": b"bytes"}), "cannot be stored"),
    (dict(values={"a": float("nan")}), "cannot be stored"),
    (dict(values={"a": "x"}, clear_values={"a": "y"}), "in both values and clear_values"),
    (dict(values={"a": "x"}, remove=["a"]), "both set and removed"),
    (dict(remove=[""]), "invalid key path"),
    (dict(remove=[5]), "a key path must be"),
    (dict(clear_values={"a": "envelope-kms:v1:AAAA"}), "starts with envelope-kms:v1:"),
    (dict(encryption_context={"aws-crypto-x": "1"}), "reserved"),
])
def test_bad_requests_fail_before_any_kms_call(request_args, message):
    with pytest.raises(InputError, match=message):
        vf.Request(NAME, **request_args)


def test_key_id_required_for_a_file_without_encrypted_values(kms_server, kms):
    kms_server.start_recording()
    with pytest.raises(InputError, match="key_id is required"):
        write(Engine(kms), {"clear": 1}, values={"a": "x"})
    assert kms_server.kms_calls() == {}


def test_value_under_a_mapping_and_mapping_over_a_value_are_refused_before_kms(kms_server, kms, made, app_key):
    kms_server.start_recording()
    with pytest.raises(InputError, match="key token holds a value, not a mapping"):
        write(Engine(kms), reload(made), values={"token": {"inner": "x"}}, key_arns=[app_key.arn])
    with pytest.raises(InputError, match="key db is a mapping in the file"):
        write(Engine(kms), reload(made), clear_values={"db": "flat"})
    assert "Decrypt" not in kms_server.kms_calls()


def test_new_secrets_never_join_a_file_under_keys_nobody_vouched_for(kms_server, kms, made, app_key):
    """A file replaced in the repository by one under someone else's key must not receive new secrets."""
    other = kms.create_key()["KeyMetadata"]["Arn"]
    kms_server.start_recording()
    with pytest.raises(InputError, match="give key_id .or allowed_key_arns. to add or change encrypted values"):
        write(Engine(kms), reload(made), values={"token": "new"})
    with pytest.raises(InputError, match=f"the file is wrapped under {app_key.arn}, not in allowed_key_arns"):
        write(Engine(kms), reload(made), values={"token": "new"}, trusted_key_arns=[other])
    assert kms_server.kms_calls() == {}
    # key_id names another key: everything is rewrapped under it, nothing joins the old data key
    update = write(Engine(kms), reload(made), values={"token": "new"}, key_arns=[other])
    assert {inspect_header(vf.unseal(text, "t")).key_arns for _p, text in vf.sealed_leaves(reload(update))} == {(other,)}
    # removals and clear values need no key
    assert write(Engine(kms), reload(made), remove=["token"], clear_values={"note": "x"}).changed


def test_clear_values_compare_by_json_type(kms, made):
    tree = reload(write(Engine(kms), reload(made), clear_values={"cn": None, "lst": [1]}))
    assert not write(Engine(kms), tree, clear_values={"cn": None, "lst": [1]}).changed
    update = write(Engine(kms), tree, clear_values={"lst": [True]})
    assert update.changes["updated"] == ["lst"] and reload(update)["lst"] == [True]


def test_a_rewrap_reports_unchanged_values_as_rewrapped(kms, made):
    other = kms.create_key()["KeyMetadata"]["Arn"]
    update = write(Engine(kms), reload(made), values={"token": "t0k-en"}, key_arns=[other])
    assert "token" in update.changes["rewrapped"] and not update.changes["updated"]


def test_check_mode_encrypts_nothing(kms_server, kms, app_key):
    kms_server.start_recording()
    update = write(Engine(kms), values={"a": "x"}, key_arns=[app_key.arn], check_mode=True)
    assert update.changes["added"] == ["a"] and "GenerateDataKey" not in kms_server.kms_calls()
    assert "x" not in vf.summary(update.tree)


@pytest.mark.parametrize("text, message", [
    (b"- a\n- b\n", "must hold a mapping"),
    (b"a: [\n", "not valid YAML"),
    (b"\xff\xfe", "not UTF-8"),
    (b"1: x\n", "is not a string"),
])
def test_parse_refusals(text, message):
    with pytest.raises(EnvelopeError, match=message):
        vf.parse(text, NAME)


def test_json_files_round_trip(kms, app_key):
    update = vf.update_tree(Engine(kms), {}, vf.Request("x.kms.json", values={"a": "1"}, clear_values={"b": 2},
                                                        key_arns=[app_key.arn]))
    tree = json.loads(update.text)
    assert tree["b"] == 2 and tree["a"].startswith(vf.MARKER)
    assert vf.decrypt_tree(Engine(kms), vf.parse(update.text.encode(), "x.kms.json"), "x.kms.json",
                           DecryptPolicy.strict([app_key.arn])).tree == {"a": "1", "b": 2}


def test_summary_never_shows_values(made):
    text = vf.summary(reload(made))
    assert "pw-1" not in text and "db.internal" not in text
    assert "db.password: encrypted " in text and "db_host: clear " in text


def test_dotted_quotes_keys_with_dots():
    assert vf.dotted(("a.b", "c")) == '"a.b".c'
    assert vf.key_path(["a.b", "c"]) == ("a.b", "c")
    assert vf.key_path("db.password") == ("db", "password")


def test_several_wrapping_keys_each_unwraps_the_file(kms_server, kms, app_key):
    dr_key = kms.create_key()["KeyMetadata"]["Arn"]
    kms_server.start_recording()
    update = write(Engine(kms), values={"a": "x", "b": "y"}, key_arns=[app_key.arn, dr_key])
    assert kms_server.kms_calls() == {"GenerateDataKey": 1, "Encrypt": 1}  # one data key, wrapped twice
    for only in (app_key.arn, dr_key):
        decrypted = vf.decrypt_tree(Engine(kms), reload(update), NAME, DecryptPolicy.strict([only]))
        assert decrypted.tree == {"a": "x", "b": "y"}
    assert inspect_header(vf.unseal(reload(update)["a"], "t")).key_arns == tuple(sorted([app_key.arn, dr_key]))
