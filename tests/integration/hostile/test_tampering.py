"""Hostile input, tampering: every damaged envelope is refused with one line and nothing written.

Envelopes are made by the collection's Engine against the moto server, in four shapes: unsigned
(AES_256_GCM_HKDF_SHA512_COMMIT_KEY) and signed (..._ECDSA_P384), six 128-byte frames of a
700-byte plaintext under two wrapping keys, or one (final) frame of 100 bytes under one key.
Mutations: each byte flipped (xor 0x01 and xor 0xff) at every offset of the header (wrapped data
keys included), of the first, a middle and the final frame, and of the footer (the other two full
frames are alike to those and are skipped); truncation at every frame boundary and at points
inside the header, the frames and the footer; bytes after the message; two messages concatenated;
frames spliced between two messages under the same key, context and frame length; and 200 random
mutations drawn by hypothesis (derandomized: the same ones on every run).

Each mutated file is decrypted in-process: ``Engine.decrypt_file`` with no decrypt policy (the
module's default, discovery) to a dest holding old content, which must stay byte-identical with
no new file in its directory; and ``Engine.decrypt_bytes`` with the strict policy (both wrapping
key ARNs allowed, the context required). Both must raise EnvelopeError with one line. In the
byte-flip sweep, decrypt_file gets every mutation and decrypt_bytes every header mutation but
only one body offset in 8 (BODY_SAMPLE): past the header both run the same code, and the sweep
must stay within its time budget.

Speed: a body byte flipped leaves the header, so the library's KMS Decrypt call, unchanged.
``tamper.KmsMemo`` answers a call already made with exactly the same arguments with the server's
earlier answer (or error) instead of calling again (the engine and library run unchanged); every
distinct call, and so every header mutation that reaches KMS, goes to moto. The plugin tests use no
memo. The byte-flip sweep (about a minute, most of it the ~1200 distinct KMS calls and the file
writes) and the plugin sample (21 module runs, about 40 s) are marked slow.
"""

import os
import shutil

import hypothesis
import pytest
from hypothesis import strategies as st

from ansible_collections.envelope.kms.plugins.module_utils.envelope import SIGNED_ALGORITHM, Engine
from tests.harness import tamper

CATEGORY = "tampering"
CONTEXT = {"app": "billing", "env": "prod"}
FRAME = 128
MASKS = (0x01, 0xFF)
BODY_SAMPLE = 8  # body offsets decrypted in memory too: 1 in 8 (every one goes to a file)
MARKER = b"TOPSECRET"
VARIANTS = {
    "unsigned, 6 frames, 2 keys": dict(algorithm=None, size=700, keys=2),
    "signed, 6 frames, 2 keys": dict(algorithm=SIGNED_ALGORITHM, size=700, keys=2),
    "unsigned, 1 frame, 1 key": dict(algorithm=None, size=100, keys=1),
    "signed, 1 frame, 1 key": dict(algorithm=SIGNED_ALGORITHM, size=100, keys=1),
}
MULTI_FRAME = [name for name, variant in VARIANTS.items() if variant["size"] > FRAME]


def plaintext(size, salt):
    """Recognisable text (MARKER) so a message that leaked plaintext would show it."""
    unit = MARKER + f"-{salt}-".encode() + os.urandom(8).hex().encode() + b"\n"
    return (unit * (size // len(unit) + 1))[:size]


class World:
    """Two wrapping keys and a third one to rewrap to, an engine with a KMS memo, envelopes."""

    def __init__(self, kms, workdir):
        self.kms = kms
        self.workdir = str(workdir)
        self.arns = [kms.create_key(Description=name)["KeyMetadata"]["Arn"] for name in ("first", "second", "other")]
        kms.create_alias(AliasName="alias/app", TargetKeyId=self.arns[0])
        kms.create_alias(AliasName="alias/other", TargetKeyId=self.arns[2])
        self.memo = tamper.KmsMemo(kms)
        self.engine = Engine(kms)
        self.refusals = tamper.Refusals(self.engine, os.path.join(self.workdir, "engine"), secret=MARKER)
        self.plaintexts = {}

    def strict(self, keys=2):
        return dict(allowed_key_arns=self.arns[:keys], encryption_context=CONTEXT)

    def envelope(self, name, salt="a"):
        """A fresh envelope of the VARIANTS shape ``name`` (bytes), checked to decrypt."""
        variant = VARIANTS[name]
        secret = plaintext(variant["size"], salt)
        path = os.path.join(self.workdir, "made.enc")
        self.engine.encrypt_bytes(secret, path, self.arns[:variant["keys"]], CONTEXT, algorithm=variant["algorithm"],
                                  frame_length=FRAME)
        with open(path, "rb") as handle:
            data = handle.read()
        assert self.engine.decrypt_bytes(data, **self.strict(variant["keys"]))[0] == secret  # the control
        self.plaintexts[data] = secret
        return data

    def problem(self, data, keys=2, in_memory=True):
        """None when both decrypt paths refuse ``data`` cleanly (module docstring); without
        ``in_memory`` only decrypt_file is tried."""
        return self.refusals.problem(data, to_file={}, in_memory=self.strict(keys) if in_memory else None)


@pytest.fixture
def world(kms, tmp_path):
    return World(kms, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_byte_flipped(world, tally, name):
    data = world.envelope(name)
    layout = tamper.Layout(data)
    keys = VARIANTS[name]["keys"]
    # The check can fail: the intact envelope decrypts, and the changed dest is noticed (and restored).
    control = world.problem(data, keys)
    assert "decrypted without an error" in control and "dest changed" in control, control
    # The final frame's content length field has its own test (test_final_frame_content_length_altered).
    offsets = [offset for offset in layout.sweep_offsets() if not layout.segment_of(offset).endswith(".content_length")]
    for offset in offsets:
        # decrypt_bytes differs from decrypt_file in its policy (strict) and its sink: every header
        # byte goes through both; a body byte reaches the same code either way, so 1 in 8 does.
        in_memory = offset < layout.header_end or offset % BODY_SAMPLE == 0
        for mask in MASKS:
            problem = world.problem(tamper.flipped(data, offset, mask), keys, in_memory)
            tally.case(CATEGORY, problem is None,
                       f"{name}: byte {offset} ({layout.segment_of(offset)}) xor {mask:#04x}: {problem}")
    tally.check()
    # The sweep really crossed every part of the message, and the original still decrypts.
    covered = {layout.segment_of(offset).split(".")[0] for offset in offsets}
    assert {"version", "suite_id", "message_id", "encryption_context", "data_key[0]", "header_auth_tag",
            layout.frames[-1].name.split(" ")[0]} <= covered, covered
    assert (layout.footer is not None) == name.startswith("signed")
    assert world.engine.decrypt_bytes(data, **world.strict(keys))[0] == world.plaintexts[data]
    assert {"corrupt", "not_envelope"} <= set(world.refusals.kinds), world.refusals.kinds


def test_final_frame_content_length_altered(world, playbook, tally):
    """Every flip of the final frame's 4-byte content length field (engine, each shape), and one such
    file through the decrypt module, the lookup and rewrap: refused as tampering, in true words."""
    sample = None
    for name in VARIANTS:
        data = world.envelope(name)
        layout = tamper.Layout(data)
        field = next(segment for segment in layout.segments if segment.name.endswith(".content_length"))
        for offset in field:
            for mask in MASKS:
                mutated = tamper.flipped(data, offset, mask)
                problem = world.problem(mutated, VARIANTS[name]["keys"])
                tally.case(CATEGORY, problem is None, f"{name}: byte {offset} ({field.name}) xor {mask:#04x}: {problem}")
                if offset == field.end - 2 and mask == 0x01 and name.startswith("signed, 6"):
                    sample = mutated  # 60 -> 316 bytes, more than the 128-byte frames
    host = os.path.join(playbook.workdir, "hosts", "localhost")
    src, copy, dest = (os.path.join(host, name) for name in ("length.enc", "length-copy.enc", "plain.txt"))
    for path, data in ((src, sample), (copy, sample), (dest, b"old\n")):
        with open(path, "wb") as handle:
            handle.write(data)
    before = tamper.listing(host)
    run = playbook.run([
        {"name": "Decrypt", "envelope.kms.decrypt": {"src": src, "dest": dest}, "ignore_errors": True},
        {"name": "Lookup", "ansible.builtin.set_fact": {"value": "{{ lookup('envelope.kms.decrypt', '%s') }}" % src},
         "ignore_errors": True},
        {"name": "Rewrap", "envelope.kms.rewrap": {"path": copy, "key_id": "alias/other"}, "ignore_errors": True},
    ])
    for task in ("Decrypt", "Lookup", "Rewrap"):
        problem = tamper.task_problem(run.result(task))
        tally.case(CATEGORY, problem is None, f"{task}: final frame content length 316: {problem}")
    tally.case(CATEGORY, tamper.listing(host) == before, "files changed")
    tally.check()


def test_truncated_at_every_frame_boundary_and_inside(world, tally):
    lengths = []
    for name in VARIANTS:
        data = world.envelope(name)
        layout = tamper.Layout(data)
        boundaries = {layout.header_end} | {frame.end for frame in layout.frames}
        points = layout.truncation_points()
        assert boundaries - {len(data)} <= {length for label, length in points}
        for label, length in points:
            problem = world.problem(data[:length], VARIANTS[name]["keys"])
            tally.case(CATEGORY, problem is None, f"{name}: truncated to {length} bytes ({label}): {problem}")
            lengths.append(length)
    tally.check()
    assert len(lengths) > 100


def test_bytes_after_the_message_and_concatenated_messages(world, tally):
    for name in VARIANTS:
        first = world.envelope(name, "first")
        second = world.envelope(name, "second")
        other_shape = world.envelope(next(other for other in VARIANTS if other != name), "third")
        cases = {
            "one zero byte after the message": first + b"\x00",
            "one 0x02 byte (a version byte) after the message": first + b"\x02",
            "a line feed after the message": first + b"\n",
            "a whole second message after the message": first + second,
            "the same message twice": first + first,
            "a message of another shape after the message": first + other_shape,
            "one byte before the message": b"\x00" + first,
            "the message with its last byte repeated": first + first[-1:],
        }
        for label, data in cases.items():
            problem = world.problem(data, VARIANTS[name]["keys"])
            tally.case(CATEGORY, problem is None, f"{name}: {label}: {problem}")
    tally.check()
    assert world.refusals.kinds.get("trailing_data", 0) >= 2 * 5 * len(VARIANTS)


@pytest.mark.parametrize("name", MULTI_FRAME)
def test_frames_spliced_between_two_messages(world, tally, name):
    first = world.envelope(name, "first")
    second = world.envelope(name, "second")
    assert tamper.Layout(first).frame_length == tamper.Layout(second).frame_length == FRAME
    cases = tamper.frame_mutations(first, second) + tamper.frame_mutations(second, first)
    for label, data in cases:
        problem = world.problem(data)
        tally.case(CATEGORY, problem is None, f"{name}: {label}: {problem}")
    tally.check()
    assert len(cases) >= 18


# -- random mutations (hypothesis): flips, overwrites, deletions, insertions, repeats, truncation

POSITION = st.integers(min_value=0, max_value=1 << 16)
OPERATION = st.one_of(
    st.tuples(st.just("flip"), POSITION, st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("set"), POSITION, st.integers(min_value=0, max_value=255)),
    st.tuples(st.just("delete"), POSITION, st.integers(min_value=1, max_value=64)),
    st.tuples(st.just("insert"), POSITION, st.binary(min_size=1, max_size=32)),
    st.tuples(st.just("repeat"), POSITION, st.integers(min_value=1, max_value=200)),
    st.tuples(st.just("truncate"), POSITION, st.just(0)),
)


def mutate(data, operations):
    mutated = bytearray(data)
    for kind, position, argument in operations:
        at = position % (len(mutated) + 1)
        if kind == "flip" and at < len(mutated):
            mutated[at] ^= argument
        elif kind == "set" and at < len(mutated):
            mutated[at] = argument
        elif kind == "delete":
            del mutated[at:at + argument]
        elif kind == "insert":
            mutated[at:at] = argument
        elif kind == "repeat":
            mutated[at:at] = mutated[at:at + argument]
        elif kind == "truncate":
            del mutated[at:]
    return bytes(mutated)


@pytest.fixture
def samples(world):
    return [(name, world.envelope(name)) for name in VARIANTS]


@hypothesis.settings(max_examples=200, derandomize=True, database=None, deadline=None, print_blob=False,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture,
                                            hypothesis.HealthCheck.too_slow])
@hypothesis.given(choice=st.integers(min_value=0, max_value=len(VARIANTS) - 1),
                  operations=st.lists(OPERATION, min_size=1, max_size=4))
def test_random_mutations(world, samples, tally, choice, operations):
    name, data = samples[choice]
    mutated = mutate(data, operations)
    hypothesis.assume(mutated != data)
    problem = world.problem(mutated, VARIANTS[name]["keys"])
    tally.case(CATEGORY, problem is None, f"{name}: {operations}: {problem}")
    assert problem is None, problem


# -- the real plugins on a sample: decrypt module, lookup, rewrap in one ansible-playbook run


def plugin_sample(world):
    """(label, bytes): 21 mutations covering each part of a message, signed and unsigned."""
    signed = world.envelope("signed, 6 frames, 2 keys", "plugin")
    layout = tamper.Layout(signed)
    unsigned = world.envelope("unsigned, 6 frames, 2 keys", "plugin")
    plain_layout = tamper.Layout(unsigned)

    def where(name, layout_=layout):
        segment = next(segment for segment in layout_.segments if segment.name == name)
        return (segment.start + segment.end) // 2

    flips = [
        ("version", 0x01), ("message_id", 0xFF), ("encryption_context", 0x01), ("data_key[0].provider_id", 0x01),
        ("data_key[1].key_info", 0x01), ("data_key[0].wrapped_key", 0xFF), ("frame_length", 0x01),
        ("header_auth_tag", 0x01), ("frame[0].iv", 0x01), ("frame[3].tag", 0x01),
        ("frame[5].content", 0x01), ("footer.signature_length", 0x01), ("footer.signature", 0xFF),
    ]
    cases = [(f"signed {name} xor {mask:#04x}", tamper.flipped(signed, where(name), mask)) for name, mask in flips]
    # The content length one more (60 -> 61), within the frame length; lengths beyond it are
    # test_final_frame_content_length_altered's.
    length_field = next(segment for segment in layout.segments if segment.name == "frame[5].content_length")
    cases.append(("signed frame[5].content_length + 1", tamper.flipped(signed, length_field.end - 1, 0x01)))
    cases += [
        ("unsigned frame[5].tag xor 0x01", tamper.flipped(unsigned, where("frame[5].tag", plain_layout), 0x01)),
        ("truncated to the header", signed[:layout.header_end]),
        ("truncated inside the final frame", signed[:layout.frames[-1].end - 5]),
        ("truncated before the footer", signed[:layout.footer.start]),
        ("one byte after the message", signed + b"\x00"),
        ("a second message after the message", unsigned + world.envelope("unsigned, 6 frames, 2 keys", "2")),
    ]
    spliced = dict(tamper.frame_mutations(signed, world.envelope("signed, 6 frames, 2 keys", "3")))
    cases.append(("frame 3 from another message", spliced["frame 3 from another message"]))
    return cases


def write_files(directory, cases):
    os.makedirs(directory, exist_ok=True)
    paths = []
    for index, (label, data) in enumerate(cases):
        path = os.path.join(directory, f"{index:02d}.enc")
        with open(path, "wb") as handle:
            handle.write(data)
        paths.append(path)
    return paths


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


@pytest.mark.slow
def test_plugins_refuse_a_sample_of_damaged_files(world, playbook, tally):
    """The decrypt module (dest: an existing plaintext file), the lookup and rewrap (to another
    key, on copies) each fail every damaged file with one line, and write nothing."""
    cases = plugin_sample(world)
    host = os.path.join(playbook.workdir, "hosts", "localhost")
    sources = write_files(os.path.join(host, "damaged"), cases)
    copies = os.path.join(host, "rewrap")
    shutil.copytree(os.path.join(host, "damaged"), copies)
    plain = os.path.join(host, "plain")
    os.makedirs(plain)
    dest = os.path.join(plain, "current.txt")
    with open(dest, "wb") as handle:
        handle.write(b"old plaintext, must survive\n")
    before = {directory: tamper.listing(directory) for directory in (plain, copies, os.path.dirname(sources[0]))}
    copied = {name: read(os.path.join(copies, name)) for name in sorted(os.listdir(copies))}
    rewrapped = [os.path.join(copies, os.path.basename(path)) for path in sources]

    tasks = [
        {"name": "Decrypt", "envelope.kms.decrypt": {"src": "{{ item }}", "dest": dest}, "loop": sources,
         "ignore_errors": True},
        {"name": "Lookup", "ansible.builtin.set_fact": {"looked_up": "{{ lookup('envelope.kms.decrypt', item) }}"},
         "loop": sources, "ignore_errors": True},
        # One run of rewrap for all the copies (its files fail one by one, each with its own result).
        {"name": "Rewrap", "envelope.kms.rewrap": {"paths": rewrapped, "key_id": "alias/other"},
         "ignore_errors": True},
    ]
    run = playbook.run(tasks)
    for task in ("Decrypt", "Lookup"):
        results = tamper.item_results(run.result(task))
        assert len(results) == len(cases), (task, len(results))
        for (label, data), result in zip(cases, results):
            problem = tamper.task_problem(result)
            tally.case(CATEGORY, problem is None, f"{task}: {label}: {problem}")
    rewrap = run.result("Rewrap")
    tally.case(CATEGORY, tamper.task_problem(rewrap) is None, f"Rewrap: {tamper.task_problem(rewrap)}")
    per_file = {result.get("path"): result for result in rewrap.get("results", ())}
    for (label, data), path in zip(cases, rewrapped):
        problem = tamper.task_problem(per_file[path]) if path in per_file else "no result for the file"
        tally.case(CATEGORY, problem is None, f"Rewrap: {label}: {problem}")
    for directory, entries in before.items():
        tally.case(CATEGORY, tamper.listing(directory) == entries, f"{directory} changed")
    tally.case(CATEGORY, read(dest) == b"old plaintext, must survive\n", "the decrypt module changed dest")
    for name, data in copied.items():
        tally.case(CATEGORY, read(os.path.join(copies, name)) == data, f"rewrap changed {name}")
    tally.case(CATEGORY, MARKER.decode() not in run.stdout + run.stderr, "plaintext in the playbook output")
    tally.check()
