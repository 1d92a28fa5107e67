#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rewrap
short_description: Re-encrypt envelope files on the host under the KMS keys an alias points at now
version_added: 0.1.0
description:
  - The step after a manual key rotation (an alias re-pointed to a new KMS key with M(envelope.kms.alias)).
    Re-encrypts envelope files (AWS Encryption SDK messages, as M(envelope.kms.copy) writes them) in
    place under the key(s) O(key_id) resolves to now, keeping or replacing their encryption context.
  - Idempotent and cheap when there is nothing to do. Each file's header names the keys its data key is
    wrapped under and its encryption context; a file already wrapped under exactly the wanted key ARNs
    with the wanted context is left alone, so an unchanged run costs one KMS C(DescribeKey) per
    O(key_id) and nothing else.
  - A file that needs it is decrypted and encrypted again in one stream (one KMS C(Decrypt) and one
    C(GenerateDataKey), plus one C(Encrypt) per further key). The plaintext is never written to disk.
    The new envelope goes to a temporary file beside the old one and replaces it only once the whole
    old message verified; the file keeps its mode and, when run as root, its owner and group. The
    algorithm suite and frame length of each file are kept.
  - Works on many files at once (O(paths), glob patterns) and reports on each. A file that fails
    (not an envelope, tampered, truncated, a header larger than decrypt accepts, wrapped under a key
    that is not allowed or cannot be used, wrong encryption context, an I/O error, or any other
    error while handling it) is left as it was and gets its own failed entry in RV(results); the
    other files are still rewrapped, and then the task fails with one line naming every file that
    failed. Re-running after fixing the cause only touches the files that still need it.
  - A header is refused from its bytes alone, before any KMS call, when it declares more than 10
    wrapped data keys or a frame length above 64 MiB (67108864 bytes), or when a wrapped key's KMS
    key ARN is not printable UTF-8 text (tampering).
  - Runs on the host with the host's AWS credentials, which need C(kms:DescribeKey) on O(key_id),
    C(kms:Decrypt) on the old keys and C(kms:GenerateDataKey) (and C(kms:Encrypt) for further keys)
    on the new ones. Keep the old KMS key enabled until every file is rewrapped.
  - Envelope vars files (names ending in one of O(vars_file_extensions), as
    M(envelope.kms.vars_file) writes them) are rewrapped too. Every value is re-encrypted under one
    new data key (one KMS C(Decrypt) and one C(GenerateDataKey) per file), keys, clear values and
    order kept. Their file result lists the keys re-encrypted in C(values). Run it on the controller
    (C(delegate_to=localhost)) for the vars files of a repository; YAML vars files need PyYAML
    where the module runs.
author:
  - envelope.kms developers (!UNKNOWN)
requirements:
  - aws-encryption-sdk >= 3.3.0, boto3 and botocore on the host that runs the module, which calls KMS with its own AWS credentials
options:
  path:
    description:
      - One envelope file to rewrap, or a glob pattern (C(*), C(?), C([...]), C(**) for any depth),
        with the rules of O(paths).
      - Mutually exclusive with O(paths).
    type: path
  paths:
    description:
      - Envelope files and glob patterns, as in O(path).
      - A pattern selects regular files only; a pattern that matches nothing gives a warning; a plain
        path that does not exist is a failure for that path.
      - C(**) (a whole path part) matches any number of directories, but never enters a symbolic link
        to a directory, nor a directory it has already read (a bind mount of a parent), so a link loop
        such as C(certs/loop -> ..) cannot make the walk endless. To rewrap files behind a directory
        link, name the link in the pattern (C(/etc/app/current/**/*.enc)). The other wildcards match
        one name each and follow links as any path does.
      - Names starting with a dot are matched only by a pattern part that starts with a dot, and
        C(**) does not enter hidden directories (as the shell and Python's C(glob) do).
      - A symbolic link to a file, given by name or matched by a pattern, is followed; the file it
        points at is rewritten and the link stays. A file reached twice (by two patterns, or by a link
        and its target) is handled once.
      - One task selects at most 10000 files and reads at most 100000 directories while expanding its
        patterns; past either bound it fails with a message naming the bound, before any KMS call and
        before any file is changed. Split the task or narrow the patterns.
    type: list
    elements: path
  key_id:
    description:
      - The KMS key(s) every file must end up wrapped under, as key ids, key ARNs, alias names or alias
        ARNs, resolved to key ARNs when the task runs.
      - A file wrapped under exactly these keys (no more, no fewer) keeps its wrapping.
      - Required. A null (or empty) key id is only accepted in check mode, see the notes.
    type: list
    elements: str
  vars_file_extensions:
    description:
      - Files whose names end in one of these are envelope vars files (YAML, or JSON for a name ending
        in C(.json)), rewrapped value by value; any other file is an envelope file.
    type: list
    elements: str
    default: [".kms.yml", ".kms.yaml", ".kms.json"]
  encryption_context:
    description:
      - The encryption context the files must end up with.
      - Not given, each file keeps its own. Given (even V({})), it replaces each file's context, and a file
        with another context is rewrapped.
    type: dict
  required_encryption_context:
    description:
      - Pairs a file must carry before it is rewrapped (extra pairs are fine). A file that needs
        rewrapping and lacks them fails. Files that are already as wanted are not checked.
      - Use it to make sure only the files of one application are re-encrypted, since decryption itself
        accepts any context.
    type: dict
    default: {}
  backup:
    description:
      - Keep a copy of each file, with a timestamp in its name, before rewrapping it. The copy can still
        be decrypted with the old key only.
    type: bool
    default: false
notes:
  - Check mode only reads headers, with no KMS call beyond C(DescribeKey), so it cannot notice a
    tampered body or a key that cannot decrypt; it reports which files would change.
  - Diffs show each changed file's key ARNs and encryption context before and after, never content.
  - In check mode a task that would create a key returns its id and ARN as null. Given such a null
    O(key_id) (or a list entry), or one that names no key, the module warns, naming the key, and
    reports every file as to be rewrapped, since no file can be wrapped under a key that does not
    exist yet; that key shows as null in RV(key_arns). A null O(allowed_key_arns), or its null
    entries, are left out, with a warning. Outside check mode all of these are errors, before any
    KMS call.
extends_documentation_fragment:
  - envelope.kms.decrypt_policy.keys
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Manual rotation, re-point the alias to the new key
  envelope.kms.alias:
    name: alias/app-secrets
    target_key_id: alias/app-secrets-v2

- name: Rewrap every secret of the application under the key the alias points at now
  envelope.kms.rewrap:
    paths:
      - /etc/app/*.enc
      - /etc/app/certs/**/*.enc
    key_id: alias/app-secrets
    required_encryption_context:
      app: billing
  register: rewrapped

- name: Show which files were re-encrypted
  ansible.builtin.debug:
    msg: "{{ rewrapped.results | selectattr('changed') | map(attribute='path') | list }}"

- name: Add a disaster recovery key in another region, and a new encryption context
  envelope.kms.rewrap:
    path: /etc/app/db-password.enc
    key_id:
      - alias/app-secrets
      - arn:aws:kms:eu-west-1:111122223333:alias/app-secrets-dr
    encryption_context:
      app: billing
      env: prod
"""

RETURN = r"""
key_arns:
  description:
    - The key ARNs that O(key_id) resolved to, sorted.
    - In check mode a key not known yet (see the notes) is null, after the others.
  returned: always
  type: list
  elements: str
  sample: ["arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"]
results:
  description:
    - One entry per file, in the order of O(path) or O(paths) (each pattern's matches sorted).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file, as given or as matched by a pattern.
      type: str
      returned: always
      sample: /etc/app/app.env.enc
    changed:
      description: Whether the file was (in check mode, would be) rewrapped.
      type: bool
      returned: always
      sample: true
    failed:
      description: Whether this file failed; it is then left as it was.
      type: bool
      returned: always
      sample: false
    msg:
      description: Why the file failed.
      type: str
      returned: when failed
      sample: "cannot rewrap /etc/app/app.env.enc: the envelope is tampered or corrupt (a frame failed authentication)"
    previous_key_arns:
      description: The KMS key ARNs the file was wrapped under before the task, from its header.
      type: list
      elements: str
      returned: when the header could be read
      sample: ["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
    previous_encryption_context:
      description: The file's encryption context before the task.
      type: dict
      returned: when the header could be read
      sample: {"app": "billing"}
    key_arns:
      description: The KMS key ARNs the file is wrapped under after the task.
      type: list
      elements: str
      returned: unless failed
      sample: ["arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"]
    encryption_context:
      description: The file's encryption context after the task.
      type: dict
      returned: unless failed
      sample: {"app": "billing"}
    algorithm:
      description: The file's algorithm suite (kept by the rewrap).
      type: str
      returned: unless failed
      sample: AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    values:
      description: For an envelope vars file, the keys whose values were (or, in check mode, would be) re-encrypted.
      type: list
      elements: str
      returned: for envelope vars files
      sample: [db.password, api.token]
    backup_file:
      description: The copy of the old file, when O(backup=true) made one.
      type: str
      returned: when rewrapped with O(backup=true)
      sample: /etc/app/app.env.enc.2160.2026-11-29@17:00:00~
"""

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils import rewrap as plan
from ansible_collections.envelope.kms.plugins.module_utils import vars_file
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    ESDK_IMPORT_ERROR,
    HAS_ESDK,
    DecryptPolicy,
    Engine,
    EnvelopeError,
    decrypt_policy_argument_spec,
    inspect_header,
    normalize_context,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.kms import given_as_null, known_key_arns


def _named(message, path, real):
    """Engine messages start with the path they were given (the real path): name the file as the user did."""
    if message.startswith("cannot rewrap "):
        return message.replace(f"cannot rewrap {real}:", f"cannot rewrap {path}:", 1)
    if message.startswith(f"{real}: "):
        message = message[len(real) + 2:]
    return f"cannot rewrap {path}: {message}"


def rewrap_one(module, engine, path, real, key_arns, options):
    """The result entry for one file: leave it, predict it (check mode) or rewrap it. Whatever goes
    wrong with this file (an envelope error, an OS error, an unexpected library exception) is this
    file's failed result: the other files still get their turn."""
    if plan.is_vars_file(real, options["vars_file_extensions"]):
        try:
            return _rewrap_vars_file(module, engine, path, real, key_arns, options)
        except Exception as error:  # pylint: disable=broad-exception-caught
            return plan.failed_result(path, _named(plan.error_message(error), path, real))
    try:
        facts = inspect_header(real)
    except Exception as error:  # pylint: disable=broad-exception-caught
        return plan.failed_result(path, _named(plan.error_message(error), path, real))
    try:
        return _plan_and_rewrap(module, engine, path, real, facts, key_arns, options)
    except Exception as error:  # pylint: disable=broad-exception-caught
        return plan.failed_result(path, _named(plan.error_message(error), path, real), facts)


def _plan_and_rewrap(module, engine, path, real, facts, key_arns, options):
    context = plan.desired_context(facts, options["encryption_context"])
    if not facts.wrapped_as(key_arns, context):
        return plan.file_result(path, facts, key_arns, context, changed=False)
    problem = plan.precondition_problem(path, facts, options["policy"], context)
    if problem:
        return plan.failed_result(path, problem, facts)
    if module.check_mode:
        return plan.file_result(path, facts, key_arns, context, changed=True)
    backup_file = _backup(module, real) if options["backup"] else None
    try:
        old, new = engine.rewrap_file(real, key_arns, encryption_context=options["encryption_context"],
                                      required_encryption_context=options["policy"])
    except Exception:
        if backup_file:
            module.cleanup(backup_file)  # a copy of a file that did not change
        raise
    result = plan.file_result(path, old, key_arns, context, changed=True, new_facts=new)
    if backup_file:
        result["backup_file"] = backup_file
    return result


def _rewrap_vars_file(module, engine, path, real, key_arns, options):
    """An envelope vars file: every value re-encrypted under one new data key, in place."""
    backups = []

    def backup():
        if options["backup"]:
            backups.append(_backup(module, real))

    try:
        old, new, update = vars_file.rewrap_file(engine, real, key_arns, options["encryption_context"],
                                                 options["policy"], check_mode=module.check_mode,
                                                 before_write=backup)
    except Exception:
        for backup_file in backups:
            module.cleanup(backup_file)
        raise
    if old is None:
        return dict(path=path, changed=False, failed=False, previous_key_arns=[], previous_encryption_context={},
                    key_arns=[], encryption_context={}, algorithm=None, values=[])
    context = plan.desired_context(old, options["encryption_context"])
    result = plan.file_result(path, old, key_arns, context, changed=update is not None, new_facts=new)
    result["values"] = update.changes["rewrapped"] if update is not None else []
    if backups:
        result["backup_file"] = backups[0]
    return result


def _backup(module, real):
    """module.backup_local, whose failure (a bare Exception in ansible-core 2.19) is this file's."""
    try:
        return module.backup_local(real)
    except Exception as error:  # pylint: disable=broad-exception-caught
        cause = error.__cause__ or error
        reason = getattr(cause, "strerror", None) or plan.one_line(cause)
        raise EnvelopeError(f"cannot rewrap {real}: cannot make the backup copy ({reason})", "io_error", real) from error


def main():
    policy_spec = decrypt_policy_argument_spec("required_encryption_context", context_default={})
    module = AnsibleAWSModule(
        argument_spec=dict(
            path=dict(type="path"),
            paths=dict(type="list", elements="path"),
            key_id=dict(type="list", elements="str"),  # required: see wanted_key_ids (null accepted in check mode)
            encryption_context=dict(type="dict"),
            backup=dict(type="bool", default=False),
            vars_file_extensions=dict(type="list", elements="str", default=list(vars_file.DEFAULT_EXTENSIONS)),
            **policy_spec["argument_spec"],
        ),
        mutually_exclusive=[("path", "paths")] + policy_spec["mutually_exclusive"],
        required_one_of=[("path", "paths")],
        required_by=policy_spec["required_by"],
        supports_check_mode=True,
    )
    if not HAS_ESDK:
        module.fail_json(msg=missing_required_lib("aws-encryption-sdk"), exception=ESDK_IMPORT_ERROR)
    params = module.params
    with module_errors(module, "cannot rewrap"):
        given = params["key_id"] is not None or given_as_null("key_id")
        key_ids = plan.wanted_key_ids(params["key_id"], given, module.check_mode)
        allowed_null = params["allowed_key_arns"] is None and given_as_null("allowed_key_arns")
        params["allowed_key_arns"] = known_key_arns(params["allowed_key_arns"], "allowed_key_arns", module.check_mode,
                                                    warn, allowed_null)
        options = dict(
            encryption_context=(None if params["encryption_context"] is None
                                else normalize_context(params["encryption_context"])),
            # validated once up front, before any client is made; the header checks of every file use it
            policy=DecryptPolicy.from_options(params, context_option="required_encryption_context"),
            backup=params["backup"],
            vars_file_extensions=tuple(params["vars_file_extensions"]),
        )
        plan.check_wanted_context(options["encryption_context"])
        # The files first (bounded: see MAX_FILES), so a pattern too wide fails before any KMS call.
        entries, unmatched = plan.expand_paths([params["path"]] if params["path"] else params["paths"])
        engine = Engine.for_aws(module)  # makes clients, calls nothing
        options["policy"] = engine.policy(options["policy"])  # the partition of the engine's region
        key_arns = plan.resolve_key_arns(engine.resolve_key_arn, key_ids, module.check_mode, warn)

    for pattern in unmatched:
        warn(f"{pattern} matched no files")  # not module.warn: see key_rotation.py
    results = [plan.failed_result(path, problem) if problem else rewrap_one(module, engine, path, real, key_arns, options)
               for path, real, problem in entries]

    changed = any(result["changed"] for result in results)
    results = [plan.shown_result(result) for result in results]
    outcome = dict(changed=changed, key_arns=plan.shown_arns(key_arns), results=results)
    if module._diff:
        outcome["diff"] = [plan.file_diff(result) for result in results if result["changed"]]
    failures = [result for result in results if result["failed"]]
    if failures:
        module.fail_json(msg=plan.failure_message(failures, len(results)), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
