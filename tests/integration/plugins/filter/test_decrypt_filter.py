"""envelope.kms.decrypt (filter) through the real ansible-playbook against the local KMS endpoint.

The inline values sit in a plain vars file (loaded with vars_files, not by the vars plugin): one
envelope-kms:v1: value taken from an envelope vars file, and a bare base64 message written by the
reference library.
"""

import base64
import os

import yaml

from tests.harness import esdk
from tests.harness.vars_files import sealed_value, write_text, write_vars_file

PASSWORD = "flt-password-8e0a4c19d2"
BARE = "bare message text 5b7f"
CONTEXT = {"app": "billing"}


def fact(name, expression, **extra):
    return {"name": name, "ansible.builtin.set_fact": {"value": "{{ " + expression + " }}"}, **extra}


def test_filter_inline_and_bare_values_and_refusals(playbook, kms, kms_server, app_key):
    source = os.path.join(playbook.workdir, "source.kms.yml")
    write_vars_file(kms, source, {"db": {"password": PASSWORD}, "tpl": "{{ 6*7 }}"}, key_arns=[app_key.arn],
                    encryption_context=CONTEXT)
    bare = base64.b64encode(esdk.encrypt(kms_server, app_key.arn, BARE, CONTEXT)).decode()
    write_text(os.path.join(playbook.workdir, "plain_vars.yml"), yaml.safe_dump({
        "inline_password": sealed_value(source, "db.password"),
        "inline_template": sealed_value(source, "tpl"),
        "bare_message": bare,
    }))
    errors = {
        "Key mismatch": ("inline_password | envelope.kms.decrypt(key='db.user')",
                         "cannot decrypt the value of db.user: the value was encrypted for key db.password"),
        "Wrong context": ("inline_password | envelope.kms.decrypt(encryption_context={'app': 'other'})",
                          "encryption context does not match the required pairs"),
        "Unknown option": ("inline_password | envelope.kms.decrypt(colour='red')",
                           "envelope.kms.decrypt filter: unknown option(s) colour"),
        "Key on a bare message": ("bare_message | envelope.kms.decrypt(key='db.password')",
                                  "key= checks the key path bound in an envelope-kms:v1: value"),
    }
    tasks = [
        fact("Inline", "inline_password | envelope.kms.decrypt"),
        fact("Inline checked", "inline_password | envelope.kms.decrypt(key='db.password', encryption_context="
                               "{'app': 'billing'}, allowed_key_arns=['" + app_key.arn + "'])"),
        fact("One ARN as a string", "inline_password | envelope.kms.decrypt(allowed_key_arns='" + app_key.arn + "')"),
        fact("Template syntax", "inline_template | envelope.kms.decrypt"),
        fact("Bare", "bare_message | envelope.kms.decrypt"),
    ] + [fact(name, expression, ignore_errors=True) for name, (expression, _message) in errors.items()]
    play = [{"name": "Filter", "hosts": "targets", "gather_facts": False, "vars_files": ["plain_vars.yml"],
             "tasks": tasks}]

    kms_server.start_recording()
    run = playbook.run(yaml.safe_dump(play, sort_keys=False))
    calls = kms_server.kms_calls()

    assert run.returncode == 0, run.stdout[-3000:]
    assert run.result("Inline")["ansible_facts"]["value"] == PASSWORD
    assert run.result("Inline checked")["ansible_facts"]["value"] == PASSWORD
    assert run.result("One ARN as a string")["ansible_facts"]["value"] == PASSWORD
    assert run.result("Template syntax")["ansible_facts"]["value"] == "{{ 6*7 }}"  # never templated
    assert run.result("Bare")["ansible_facts"]["value"] == BARE
    for name, (_expression, message) in errors.items():
        result = run.result(name)
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"] and PASSWORD not in result["msg"], (name, result["msg"])
    # one Decrypt per task (each runs in its own worker) that got past the header checks: 5 successes, the key mismatch (found in
    # the authenticated plaintext) and the key= on a bare message; the wrong context is refused on
    # the header and an unknown option before anything
    assert calls == {"Decrypt": 7}, calls
