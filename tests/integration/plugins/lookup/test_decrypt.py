"""envelope.kms.decrypt (lookup) through the real ansible-playbook against the local KMS endpoint."""

import base64
import os

from tests.harness import esdk

SECRET = "db_password=correct horse battery staple\n"
CONTEXT = {"app": "billing", "env": "prod"}
ACCOUNT = "123456789012"  # moto's default account


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)


def fact_task(name, expression, **extra):
    return {"name": name, "ansible.builtin.set_fact": {"value": expression}, **extra}


def lookup(*terms, **options):
    """The Jinja expression of a lookup call (terms and options given as Python literals)."""
    args = [repr(term) for term in terms] + [f"{key}={value!r}" for key, value in options.items()]
    return "{{ lookup('envelope.kms.decrypt', " + ", ".join(args) + ") }}"


def query(*terms, **options):
    return lookup(*terms, **options).replace("lookup(", "query(", 1)


def test_lookup_decrypts_library_files_with_checks(playbook, kms, kms_server, app_key):
    files = os.path.join(playbook.workdir, "files")
    os.makedirs(files)
    elsewhere = os.path.join(playbook.workdir, "elsewhere")
    os.makedirs(elsewhere)
    big = os.urandom(6000).hex()  # 12 000 bytes: several frames
    blob = bytes(range(256)) * 4
    esdk.encrypt_file(kms_server, app_key["Arn"], SECRET, os.path.join(files, "secret.enc"), CONTEXT)
    esdk.encrypt_file(kms_server, app_key["Arn"], big + "\n", os.path.join(elsewhere, "big.enc"), CONTEXT)
    esdk.encrypt_file(kms_server, app_key["Arn"], blob, os.path.join(files, "blob.enc"), {})
    esdk.encrypt_file(kms_server, app_key["Arn"], "{{ 6 * 7 }}", os.path.join(files, "template.enc"), {})
    with open(os.path.join(files, "secret.enc"), "rb") as handle:
        data = bytearray(handle.read())
    data[-40] ^= 0x01
    write(os.path.join(files, "tampered.enc"), bytes(data))
    other_key = kms.create_key()["KeyMetadata"]
    big_path = os.path.join(elsewhere, "big.enc")

    errors = {
        "tampered": (lookup("tampered.enc"), "tampered or corrupt"),
        "wrong context": (lookup("secret.enc", encryption_context={"app": "other"}),
                          "encryption context does not match the required pairs (different value for app)"),
        "key not allowed": (lookup("secret.enc", allowed_key_arns=[other_key["Arn"]]), "none of the allowed keys"),
        "account not allowed": (lookup("secret.enc", discovery_account_ids=["210987654321"]),
                                "none in the allowed accounts"),
        "binary as text": (lookup("blob.enc"), "is not UTF-8 text: ask for base64 encoding instead"),
        "missing file": (lookup("nothere.enc"), "envelope file 'nothere.enc' not found"),
        "both policies": (lookup("secret.enc", allowed_key_arns=[app_key["Arn"]], discovery_account_ids=[ACCOUNT]),
                          "mutually exclusive"),
    }
    tasks = [
        fact_task("Two files", query("secret.enc", big_path, encryption_context={"app": "billing"},
                                     allowed_key_arns=[app_key["Arn"]])),
        fact_task("Discovery", lookup("secret.enc", discovery_account_ids=[ACCOUNT], rstrip=False)),
        fact_task("Base64", lookup("blob.enc", encoding="base64")),
        fact_task("Template syntax", lookup("template.enc")),
        {"name": "Template syntax reused", "ansible.builtin.set_fact": {"again": "{{ value }}"}},
    ]
    tasks += [fact_task(name, expression, ignore_errors=True) for name, (expression, message) in errors.items()]
    kms_server.start_recording()
    run = playbook.run(tasks)
    calls = kms_server.kms_calls()
    assert run.returncode == 0, run.stdout[-3000:]

    facts = {name: run.result(name)["ansible_facts"] for name in
             ("Two files", "Discovery", "Base64", "Template syntax", "Template syntax reused")}
    assert facts["Two files"]["value"] == [SECRET.rstrip(), big]  # rstrip by default, like the file lookup
    assert facts["Discovery"]["value"] == SECRET
    assert base64.b64decode(facts["Base64"]["value"]) == blob
    assert facts["Template syntax"]["value"] == "{{ 6 * 7 }}", "plaintext must never be templated"
    assert facts["Template syntax reused"]["again"] == "{{ 6 * 7 }}"
    for name, (expression, message) in errors.items():
        result = run.result(name)
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"], (name, result["msg"])
    # One Decrypt per file that got past the header checks (5 decrypted, the tampered one and the
    # binary one refused after decrypting); the context and key checks need no KMS call, and no
    # key is looked up.
    assert calls["Decrypt"] == 7, calls
    assert set(calls) == {"Decrypt"}, calls

    # Nothing written to disk on the controller: no plaintext in any file of the run's folders.
    needles = [SECRET.strip().encode(), big.encode()]
    for root, dirs, names in os.walk(playbook.workdir):
        for name in names:
            with open(os.path.join(root, name), "rb") as handle:
                content = handle.read()
            for needle in needles:
                assert needle not in content, os.path.join(root, name)


def test_lookup_without_the_library(playbook, kms_server, app_key):
    path = esdk.encrypt_file(kms_server, app_key["Arn"], SECRET, os.path.join(playbook.workdir, "s.enc"), {})
    no_esdk = os.path.join(playbook.workdir, "no-esdk")
    os.makedirs(os.path.join(no_esdk, "aws_encryption_sdk"))
    write(os.path.join(no_esdk, "aws_encryption_sdk", "__init__.py"),
          "raise ImportError('No module named aws_encryption_sdk (hidden for this test)')\n")
    playbook.environment = dict(playbook.environment, PYTHONPATH=no_esdk)
    run = playbook.run([fact_task("Lookup", lookup(path))])
    assert run.returncode != 0
    message = run.result("Lookup")["msg"]
    assert ("envelope.kms.decrypt lookup needs the Python library aws-encryption-sdk (>= 3.3.0) on the controller, "
            "which is not installed for ") in message
    assert "-m pip install 'aws-encryption-sdk>=3.3.0'" in message
