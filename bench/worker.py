"""One measurement in a fresh process: encrypt or decrypt one file, print a JSON line.

Run by bench/run.py as ``python bench/worker.py '<json spec>'`` under the collection's venv (engine,
raw AES-GCM) or under the aws-encryption-cli venv (cli). Each measurement gets its own process so
that its peak RSS (``ru_maxrss`` of this process) is its own.

The printed line holds:
  seconds     the timed part: the work on a file, after imports and after set-up that a real
              caller does once per process (a boto3 client); KMS round trips made by the work
              itself (GenerateDataKey, Decrypt) are inside it
  kms_seconds engine only: the part of ``seconds`` spent in KMS API calls (to the local moto server)
  client_seconds  engine: making its boto3 client, before ``seconds``; cli: the part of ``seconds``
              spent making botocore sessions and clients (the CLI makes them inside its timed part)
  maxrss_kib  peak resident set size of this process (imports included)

Spec keys: kind (raw | engine | cli), op (encrypt | decrypt), src, dest, and
  raw:    chunk (plaintext bytes per AES-GCM call), key_file (32 raw key bytes, shared by both ops),
          fsync (flush the output to disk before the clock stops, as the engine's decrypt_file does)
  engine: key_arn, endpoint_url, frame_length, collections (path holding ansible_collections),
          checksums / durable (Engine.encrypt_file options; the copy action uses False / False)
  cli:    argv (aws-encryption-cli arguments; it finds the endpoint in AWS_ENDPOINT_URL), fsync (flush
          its output file to disk before the clock stops: decrypts, like decrypt_file)
"""

import json
import os
import resource
import sys
import time

REGION = "us-east-1"
TAG_LENGTH = 16
NONCE_LENGTH = 12


def raw_aes_gcm(spec):
    """AES-256-GCM with cryptography, file to file, one call per chunk: the floor for any format.

    Each chunk is written as nonce + ciphertext + tag (the ESDK frame's content, less its
    sequence number); the nonce is the chunk counter, as the ESDK derives its frame IVs."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    chunk = int(spec["chunk"])
    with open(spec["key_file"], "rb") as handle:
        key = handle.read()
    started = time.perf_counter()
    cipher = AESGCM(key)
    with open(spec["src"], "rb") as source, open(spec["dest"], "wb") as dest:
        sequence = 0
        if spec["op"] == "encrypt":
            while True:
                data = source.read(chunk)
                nonce = sequence.to_bytes(NONCE_LENGTH, "big")
                dest.write(nonce)
                dest.write(cipher.encrypt(nonce, data, None))
                sequence += 1
                if len(data) < chunk:
                    break
        else:
            while True:
                record = source.read(NONCE_LENGTH + chunk + TAG_LENGTH)
                if not record:
                    break
                dest.write(cipher.decrypt(record[:NONCE_LENGTH], record[NONCE_LENGTH:], None))
        if spec.get("fsync"):
            dest.flush()
            os.fsync(dest.fileno())
    return time.perf_counter() - started


def engine(spec):
    """The collection's Engine, as the copy action drives it (one boto3 client per process)."""
    sys.path.insert(0, spec["collections"])
    import boto3
    from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine

    started = time.perf_counter()
    client = boto3.client("kms", region_name=REGION, endpoint_url=spec["endpoint_url"])
    client_seconds = time.perf_counter() - started
    kms_timer = KmsTimer(client)
    started = time.perf_counter()
    envelope = Engine(client)
    if spec["op"] == "encrypt":
        envelope.encrypt_file(spec["src"], spec["dest"], [spec["key_arn"]], frame_length=spec["frame_length"],
                              checksums=spec["checksums"], durable=spec["durable"])
    else:
        envelope.decrypt_file(spec["src"], spec["dest"], allowed_key_arns=[spec["key_arn"]])
    return time.perf_counter() - started, dict(kms_seconds=kms_timer.seconds, client_seconds=client_seconds)


class KmsTimer:
    """Adds up the wall time of the KMS API calls a client makes (botocore before/after-call events)."""

    def __init__(self, client):
        self.seconds = 0.0
        self.calls = 0
        self._started = None
        client.meta.events.register("before-call.kms", self.before)
        client.meta.events.register("after-call.kms", self.after)

    def before(self, **kwargs):
        self._started = time.perf_counter()

    def after(self, **kwargs):
        self.seconds += time.perf_counter() - self._started
        self.calls += 1


def cli(spec):
    """aws-encryption-cli in this process: its cli() entry point after its imports. The part of it
    spent making botocore sessions and clients is reported as client_seconds (the engine's
    client_seconds is the same work: a session and a KMS client)."""
    import aws_encryption_sdk_cli
    import botocore.session

    timer = SetUpTimer(botocore.session.Session, ("__init__", "create_client"))
    started = time.perf_counter()
    error = aws_encryption_sdk_cli.cli(spec["argv"])
    if not error and spec.get("fsync"):
        # like for like with decrypt_file, which makes its output durable before it returns
        with open(spec["dest"], "rb") as handle:
            os.fsync(handle.fileno())
    elapsed = time.perf_counter() - started
    if error:
        raise SystemExit(f"aws-encryption-cli failed: {error}")
    return elapsed, dict(client_seconds=timer.seconds)


class SetUpTimer:
    """Adds up the wall time spent in some methods of a class (outermost calls only: creating a
    client may make a session). Measurement only, in the bench's own worker process."""

    def __init__(self, cls, names):
        self.seconds = 0.0
        self._depth = 0
        for name in names:
            setattr(cls, name, self._timed(getattr(cls, name)))

    def _timed(self, method):
        def wrapper(*args, **kwargs):
            self._depth += 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started
        return wrapper


def analysis(spec):
    """Why the engine costs what it costs, in one process (imports and client made once):

    * frame sweep: engine encrypt (as copy does) and decrypt_to (no fsync) against raw AES-GCM with
      the same chunk, for each frame length, rounds interleaved, medians;
    * a cProfile of one engine encrypt and one decrypt at the default frame length (own time per
      function: where the library spends it).
    Returns a dict instead of seconds (printed as is)."""
    import cProfile
    import pstats
    import statistics

    sys.path.insert(0, spec["collections"])
    import boto3
    from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine

    client = boto3.client("kms", region_name=REGION, endpoint_url=spec["endpoint_url"])
    envelope = Engine(client)
    folder = os.path.dirname(spec["dest"])
    encrypted = os.path.join(folder, "analysis.enc")
    decrypted = os.path.join(folder, "analysis.dec")
    raw_out = os.path.join(folder, "analysis.raw")

    def clean():
        for path in (encrypted, decrypted, raw_out):
            if os.path.exists(path):
                os.unlink(path)

    def engine_encrypt(frame):
        clean()
        started = time.perf_counter()
        envelope.encrypt_file(spec["src"], encrypted, [spec["key_arn"]], frame_length=frame, checksums=False,
                              durable=False)
        return time.perf_counter() - started

    def engine_decrypt():
        started = time.perf_counter()
        with open(decrypted, "wb") as handle:
            envelope.decrypt_to(encrypted, handle.write, allowed_key_arns=[spec["key_arn"]])
        return time.perf_counter() - started

    def raw(frame, op):
        source, dest = (spec["src"], raw_out) if op == "encrypt" else (raw_out, decrypted)
        if os.path.exists(dest):
            os.unlink(dest)
        return raw_aes_gcm(dict(op=op, src=source, dest=dest, chunk=frame, key_file=spec["key_file"]))

    engine_encrypt(spec["frames"][0])  # warm up: provider, KMS connection, page cache
    times = {}
    for round_index in range(spec["rounds"]):
        frames = spec["frames"] if round_index % 2 == 0 else list(reversed(spec["frames"]))
        for frame in frames:
            times.setdefault(frame, {"raw_encrypt": [], "raw_decrypt": [], "encrypt": [], "decrypt": []})
            times[frame]["raw_encrypt"].append(raw(frame, "encrypt"))
            times[frame]["raw_decrypt"].append(raw(frame, "decrypt"))
            times[frame]["encrypt"].append(engine_encrypt(frame))
            times[frame]["decrypt"].append(engine_decrypt())
    sweep = {str(frame): {name: statistics.median(values) for name, values in parts.items()}
             for frame, parts in times.items()}

    profiles = {}
    for op in ("encrypt", "decrypt"):
        if op == "encrypt":
            clean()
        profile = cProfile.Profile()
        if op == "encrypt":
            profile.runcall(envelope.encrypt_file, spec["src"], encrypted, [spec["key_arn"]],
                            frame_length=spec["frame_length"], checksums=False, durable=False)
        else:
            profile.runcall(engine_decrypt)
        stats = pstats.Stats(profile).stats
        total = sum(value[2] for value in stats.values())
        top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:10]
        profiles[op] = dict(total_seconds=total, top_own_time=[
            dict(function=f"{os.path.basename(key[0])}:{key[1]}({key[2]})", own_seconds=value[2], calls=value[1])
            for key, value in top])
    clean()
    return dict(frame_sweep=sweep, profiles=profiles, fixed_costs=fixed_costs(spec, client))


def fixed_costs(spec, client):
    """Per-message and per-process costs that do not depend on the size (medians of 5, seconds)."""
    import statistics

    import botocore.session
    from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
    from ansible_collections.envelope.kms.plugins.module_utils._envelope import providers

    def timed(call):
        values = []
        while len(values) < 5:
            started = time.perf_counter()
            call()
            values.append(time.perf_counter() - started)
        return statistics.median(values)

    wrapped = client.encrypt(KeyId=spec["key_arn"], Plaintext=b"k" * 32)["CiphertextBlob"]

    return {
        # the ESDK's KMS provider config makes a botocore Session by default, even with our clients
        "engine key provider set-up": timed(lambda: Engine(client)._provider(providers.encrypt_provider_spec([spec["key_arn"]]))),
        "botocore Session()": timed(botocore.session.Session),
        "botocore Session(include_builtin_handlers=False)": timed(
            lambda: botocore.session.Session(include_builtin_handlers=False)),
        "KMS GenerateDataKey round trip (moto)": timed(
            lambda: client.generate_data_key(KeyId=spec["key_arn"], KeySpec="AES_256")),
        "KMS Decrypt round trip (moto)": timed(lambda: client.decrypt(CiphertextBlob=wrapped)),
    }


KINDS = {"raw": raw_aes_gcm, "engine": engine, "cli": cli, "analysis": analysis}


def main():
    spec = json.loads(sys.argv[1])
    if spec["kind"] == "analysis":
        print(json.dumps(analysis(spec)))
        return
    seconds = KINDS[spec["kind"]](spec)
    extra = {}
    if isinstance(seconds, tuple):
        seconds, extra = seconds
    if not os.path.exists(spec["dest"]):
        raise SystemExit(f"no output written to {spec['dest']}")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(extra, seconds=seconds, maxrss_kib=maxrss)))


if __name__ == "__main__":
    main()
