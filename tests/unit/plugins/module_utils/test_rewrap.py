"""Rewrap: path selection, the header-only plan and results.

The module's main() with a stubbed KMS (a disabled old key, which moto cannot play) is in
tests/unit/plugins/modules/test_rewrap.py.
"""

import glob
import os

import pytest
import yaml

from ansible_collections.envelope.kms.plugins.module_utils import rewrap as plan
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
    DEFAULT_MAX_FRAME_LENGTH,
    EnvelopeError,
    EnvelopeFacts,
    decrypt_policy,
)
from tests.harness.time_limit import TimeLimit

A = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
B = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
OTHER_ACCOUNT = "arn:aws:kms:us-east-1:444455556666:key/11111111-2222-3333-4444-555555555555"
CONTEXT = {"app": "billing"}


def facts(key_arns=(A,), context=None, data_key_count=None):
    return EnvelopeFacts(key_arns=tuple(sorted(key_arns)), encryption_context=dict(CONTEXT if context is None else context),
                         algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY", algorithm_id=0x0478, signed=False,
                         frame_length=262144, message_id="00",
                         data_key_count=len(key_arns) if data_key_count is None else data_key_count)


# --- paths ---------------------------------------------------------------------------------------


def touch(path, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def test_expand_paths_order_patterns_links_and_problems(tmp_path):
    b = touch(tmp_path / "b.enc")
    a = touch(tmp_path / "a.enc")
    deep = touch(tmp_path / "sub" / "deeper" / "c.enc")
    os.symlink(a, tmp_path / "link.enc")
    os.makedirs(tmp_path / "dir.enc")
    entries, unmatched = plan.expand_paths([
        str(tmp_path / "missing.enc"), b, str(tmp_path / "*.enc"), str(tmp_path / "**" / "*.enc"),
        str(tmp_path / "sub"), str(tmp_path / "*.none"),
    ])
    assert entries == [
        (str(tmp_path / "missing.enc"), None, f"cannot rewrap {tmp_path / 'missing.enc'}: no such file"),
        (b, b, None),
        (a, a, None),  # the pattern's matches, sorted; b.enc already there; link.enc is a.enc; dir.enc skipped
        (deep, deep, None),
        (str(tmp_path / "sub"), None, f"cannot rewrap {tmp_path / 'sub'}: not a regular file"),
    ]
    assert unmatched == [str(tmp_path / "*.none")]


def test_expand_paths_follows_a_link_given_by_name(tmp_path):
    target = touch(tmp_path / "real" / "a.enc")
    os.symlink(target, tmp_path / "link.enc")
    assert plan.expand_paths([str(tmp_path / "link.enc")]) == ([(str(tmp_path / "link.enc"), target, None)], [])


def test_double_star_does_not_follow_directory_link_loops(tmp_path):
    """Two loops (a/loop -> .., b/loop -> ..): glob.glob(recursive=True) follows them into an ever
    longer path and never finishes; ** does not enter links to directories."""
    x = touch(tmp_path / "a" / "x.enc")
    y = touch(tmp_path / "b" / "deep" / "y.enc")
    os.symlink("..", tmp_path / "a" / "loop")
    os.symlink("..", tmp_path / "b" / "loop")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    touch(outside / "z.enc")
    os.symlink(outside, tmp_path / "elsewhere")  # a link to a directory out of the tree: not entered by **
    with TimeLimit(20):
        entries, unmatched = plan.expand_paths([str(tmp_path / "**" / "*.enc"), str(tmp_path / "**")])
    assert entries == [(x, x, None), (y, y, None)]
    assert unmatched == []
    # a link named in the pattern, or matched by a one-level wildcard, is followed as any path is
    with TimeLimit(20):
        assert plan.expand_paths([str(tmp_path / "elsewhere" / "**" / "*.enc")])[0] == [
            (str(tmp_path / "elsewhere" / "z.enc"), str(outside / "z.enc"), None)]
        assert plan.expand_paths([str(tmp_path / "*" / "loop" / "a" / "*.enc")])[0] == [
            (str(tmp_path / "a" / "loop" / "a" / "x.enc"), x, None)]


def test_a_link_to_a_file_matched_by_double_star_is_followed_once(tmp_path):
    target = touch(tmp_path / "real" / "a.enc")
    os.makedirs(tmp_path / "links")
    os.symlink(target, tmp_path / "links" / "a.enc")
    os.symlink(tmp_path / "real" / "missing.enc", tmp_path / "links" / "dangling.enc")
    entries, unmatched = plan.expand_paths([str(tmp_path / "links" / "**" / "*.enc"), str(tmp_path / "**" / "*.enc")])
    assert entries == [(str(tmp_path / "links" / "a.enc"), target, None)]  # the dangling link is no file
    assert unmatched == []


def test_the_walk_matches_glob_on_a_tree_without_links(tmp_path, monkeypatch):
    """Same files as glob.glob(recursive=True) where glob ends: hidden names, relative patterns,
    character classes, ** at the start, middle and end, a pattern ending in a separator."""
    for name in ("a.enc", "b.txt", ".hidden.enc", "d1/c.enc", "d1/.h/e.enc", "d1/d2/f.enc", "d1/d2/g.txt",
                 ".hd/h.enc", "d3/d1/i.enc", "x[1].enc"):
        touch(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    patterns = ["*.enc", "**/*.enc", "**", "d1/**", "d1/**/*.txt", "**/d1/*.enc", "*/*.enc", ".*", "**/.*.enc",
                "d1/.*/*", "[ab].*", "x[[]1].enc", "?.enc", "d1/*/", "**/d2/**/*.enc", "**/*/*.enc", "**/**/*.txt",
                "d*/**/d2/*.txt"]
    for pattern in patterns + [str(tmp_path / pattern) for pattern in patterns]:
        expected = sorted({path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path)})
        got = [path for path, real, problem in plan.expand_paths([pattern])[0]]
        assert got == expected, pattern


def test_bounds_fail_with_one_line(tmp_path):
    for n in range(3):
        touch(tmp_path / f"d{n}" / f"{n}.enc")
    assert len(plan.expand_paths([str(tmp_path / "**" / "*.enc")], max_files=3)[0]) == 3
    with pytest.raises(EnvelopeError) as raised:
        plan.expand_paths([str(tmp_path / "**" / "*.enc")], max_files=2)
    assert raised.value.kind == "too_large"
    assert raised.value.message == (f"cannot rewrap {tmp_path / '**' / '*.enc'}: the paths select more than 2 files, "
                                    "the most one task rewraps; split the task or narrow the patterns")
    with pytest.raises(EnvelopeError, match="select more than 2 files"):  # plain paths count too
        plan.expand_paths([str(tmp_path / "d0" / "0.enc"), str(tmp_path / "d1" / "1.enc"), str(tmp_path / "d2" / "2.enc")],
                          max_files=2)
    assert len(plan.expand_paths([str(tmp_path / "**" / "*.enc")], max_directories=4)[0]) == 3  # tmp_path and 3
    with pytest.raises(EnvelopeError) as raised:
        plan.expand_paths([str(tmp_path / "**" / "*.enc")], max_directories=3)
    assert raised.value.kind == "too_large"
    assert raised.value.message == (f"cannot rewrap {tmp_path / '**' / '*.enc'}: the patterns reach more than 3 "
                                    "directories, the most one task reads; narrow the patterns")


def test_the_bounds_and_link_rules_are_documented():
    from ansible_collections.envelope.kms.plugins.modules import rewrap as rewrap_module

    options = yaml.safe_load(rewrap_module.DOCUMENTATION)["options"]
    text = " ".join(options["paths"]["description"])
    assert f"at most {plan.MAX_FILES} files" in text
    assert f"at most {plan.MAX_DIRECTORIES} directories" in text
    assert "never enters a symbolic link to a directory" in text
    assert "A symbolic link to a file, given by name or matched by a pattern, is followed" in text
    description = " ".join(yaml.safe_load(rewrap_module.DOCUMENTATION)["description"])
    assert f"more than {DEFAULT_MAX_ENCRYPTED_DATA_KEYS} wrapped data keys" in description
    assert f"a frame length above 64 MiB ({DEFAULT_MAX_FRAME_LENGTH} bytes)" in description
    assert DEFAULT_MAX_FRAME_LENGTH == 64 * 1024 * 1024


def test_is_pattern():
    assert plan.is_pattern("/etc/*.enc") and plan.is_pattern("/etc/a?.enc") and plan.is_pattern("/etc/[ab].enc")
    assert not plan.is_pattern("/etc/app.enc")


# --- plan ----------------------------------------------------------------------------------------


def test_desired_context_keeps_or_replaces():
    assert plan.desired_context(facts(), None) == CONTEXT
    assert plan.desired_context(facts(), {}) == {}
    assert plan.desired_context(facts(), {"n": 1}) == {"n": "1"}
    with pytest.raises(EnvelopeError, match="reserved"):
        plan.desired_context(facts(), {"aws-crypto-public-key": "x"})


@pytest.mark.parametrize("found, key_arns, context, reasons", [
    (facts(), [A], CONTEXT, []),
    (facts(), [B], CONTEXT, ["key"]),
    (facts(), [A, B], CONTEXT, ["key"]),
    (facts([A, B]), [A], CONTEXT, ["key"]),
    (facts([A], data_key_count=2), [A], CONTEXT, ["key"]),  # also wrapped under a non-KMS key
    (facts(), [A], {}, ["context"]),
    (facts(), [B], {"app": "other"}, ["key", "context"]),
    (facts([B, A]), [A, B], CONTEXT, []),
])
def test_wrapped_as(found, key_arns, context, reasons):
    assert found.wrapped_as(key_arns, context) == reasons


@pytest.mark.parametrize("found, required, allowed, accounts, problem", [
    (facts(), {}, [], [], None),
    (facts(), {"app": "billing"}, [], [], None),
    (facts(context={"app": "billing", "env": "prod"}), {"app": "billing"}, [], [], None),
    (facts(), {"env": "prod"}, [], [], "encryption context does not match the required pairs (missing env)"),
    (facts(), {"app": "other", "env": "x"}, [], [],
     "does not match the required pairs (missing env; different value for app)"),
    (facts([A, B]), {}, [B], [], None),
    (facts(), {}, [B], [], f"wrapped under {A}, none of the allowed keys {B}"),
    (facts(), {}, [], ["111122223333"], None),
    (facts([OTHER_ACCOUNT]), {}, [], ["111122223333"],
     f"wrapped under {OTHER_ACCOUNT}, none in the allowed accounts 111122223333 (partition aws)"),
])
def test_precondition_problem(found, required, allowed, accounts, problem):
    policy = decrypt_policy(required, allowed, accounts, None, "us-east-1")
    message = plan.precondition_problem("/f", found, policy)
    if problem is None:
        assert message is None
    else:
        assert message.startswith("cannot rewrap /f: ") and problem in message


def test_precondition_context_too_large_for_the_files_suite():
    """A context that fits an unsigned header may not fit a signed one (its public key is in the
    context too): refused for that file, from its header, before any KMS call."""
    policy = decrypt_policy({}, [], [], None, "us-east-1")
    fits_unsigned = {"k": "v" * (65535 - 2 - 4 - 1)}
    assert plan.precondition_problem("/f", facts(), policy, fits_unsigned) is None
    signed = EnvelopeFacts(**dict(facts().to_dict(), key_arns=(A,), signed=True, algorithm_id=0x0578,
                                  algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"))
    assert plan.precondition_problem("/f", signed, policy, fits_unsigned).startswith(
        "cannot rewrap /f: the encryption context is larger than the 65535 bytes an envelope header holds")
    assert plan.precondition_problem("/f", signed, policy, CONTEXT) is None
    with pytest.raises(EnvelopeError, match="^cannot rewrap: the encryption context is larger"):
        plan.check_wanted_context({"k": "v" * 65535})
    plan.check_wanted_context(None)
    plan.check_wanted_context(fits_unsigned)


def test_error_message_is_one_line_for_anything():
    assert plan.error_message(EnvelopeError("cannot rewrap /f: tampered", "corrupt")) == "cannot rewrap /f: tampered"
    assert plan.error_message(PermissionError(13, "Permission denied", "/f")) == "Permission denied"
    assert plan.error_message(KeyError("x\ny")) == "unexpected error (KeyError: 'x\\ny')"
    assert plan.error_message(RuntimeError("a\n  b")) == "unexpected error (RuntimeError: a b)"
    assert plan.error_message(RuntimeError()) == "unexpected error (RuntimeError)"
    assert len(plan.error_message(RuntimeError("x" * 5000))) < 400


def test_precondition_partition():
    """The discovery partition follows the region: an aws ARN is outside aws-cn's accounts."""
    china = decrypt_policy({}, [], ["111122223333"], None, "cn-north-1")
    assert china.discovery_partition == "aws-cn"
    assert plan.precondition_problem("/f", facts(), china) is not None
    assert decrypt_policy({}, [], ["111122223333"], None, "us-gov-west-1").discovery_partition == "aws-us-gov"
    assert plan.precondition_problem("/f", facts(), decrypt_policy({}, [], ["111122223333"], None, "eu-west-1")) is None


def test_results_and_diff():
    before = facts([A])
    predicted = plan.file_result("/f", before, [B], {"app": "new"}, changed=True)
    assert predicted == dict(path="/f", changed=True, failed=False, previous_key_arns=[A],
                             previous_encryption_context=CONTEXT, key_arns=[B], encryption_context={"app": "new"},
                             algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY")
    done = plan.file_result("/f", before, [B], {"app": "new"}, changed=True, new_facts=facts([B], {"app": "new"}))
    assert done == predicted
    diff = plan.file_diff(done)
    assert diff == dict(before_header="/f (envelope)", after_header="/f (envelope)",
                        before=f'encryption_context: {{"app": "billing"}}\nkey_arns: ["{A}"]\n',
                        after=f'encryption_context: {{"app": "new"}}\nkey_arns: ["{B}"]\n')
    failed = plan.failed_result("/g", "cannot rewrap /g: no such file")
    assert failed == dict(path="/g", changed=False, failed=True, msg="cannot rewrap /g: no such file")
    assert plan.failure_message([failed], 3) == (
        "1 of 3 files could not be rewrapped (left as they were): cannot rewrap /g: no such file")
