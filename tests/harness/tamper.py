"""Hostile inputs for the envelope engine and the plugins: where the parts of a message are, mutated
copies of it, the "refused cleanly" checks, a memo of KMS answers, KMS calls per task, and a
playbook run that cannot hang.

``Layout(data)`` names every byte of an AWS Encryption SDK message (v2 header, framed body, footer)
so a test can say "flip each byte of the second wrapped data key" or "truncate at every frame
boundary". The offsets are parsed here, independently of the collection, and cross-checked with the
library's own header parser.

``Refusals(engine, workdir).problem(data)`` is the engine-side check: decrypting must raise
``EnvelopeError`` with one true line (no traceback, no plaintext), leave an existing dest
byte-identical and leave no file behind in dest's directory. ``task_problem(result)`` is the same
for a task's result; ``kms_calls_by_access_key`` tells which task (each with an access key of its
own) made which KMS calls; ``run_bounded`` runs a playbook with a time limit, FIFOs released.
"""

import collections
import copy
import io
import json
import os
import re
import stat
import struct
import urllib.request

import botocore.exceptions
from aws_encryption_sdk.identifiers import Algorithm
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

from ansible_collections.envelope.kms.plugins.module_utils.envelope import EnvelopeError
from tests.harness.playbook import PlaybookTimeout, release_fifo, run_bounded  # noqa: F401  # pylint: disable=unused-import

FINAL_FRAME_MARKER = 0xFFFFFFFF


class Segment:
    """A named byte range [start, end) of a message."""

    def __init__(self, name, start, end):
        self.name, self.start, self.end = name, start, end

    def __len__(self):
        return self.end - self.start

    def __iter__(self):
        return iter(range(self.start, self.end))

    def __repr__(self):
        return f"{self.name}[{self.start}:{self.end}]"


class Layout:
    """The parts of a v2 framed message: ``segments`` (every byte in exactly one, in order),
    ``data_keys`` (one dict of segments per wrapped key), ``frames`` (Segment per frame, the last
    being the final frame), ``header_end``, ``footer`` (None when unsigned)."""

    def __init__(self, data):
        self.data = bytes(data)
        self.segments = []
        self.data_keys = []
        self.frames = []
        reader = _Reader(self.data, self.segments)
        version = reader.take("version", 1)
        if self.data[version.start] != 2:
            raise ValueError("only v2 messages (the committing suites) are laid out here")
        suite = reader.take("suite_id", 2)
        self.algorithm = Algorithm.get_by_id(struct.unpack(">H", self.data[suite.start:suite.end])[0])
        reader.take("message_id", 32)
        aad_length = reader.number("aad_length", 2)
        reader.take("encryption_context", aad_length)
        count = reader.number("data_key_count", 2)
        for index in range(count):
            key = {}
            for part in ("provider_id", "key_info", "wrapped_key"):
                length = reader.number(f"data_key[{index}].{part}_length", 2)
                key[part] = reader.take(f"data_key[{index}].{part}", length)
            self.data_keys.append(key)
        reader.take("content_type", 1)
        self.frame_length = reader.number("frame_length", 4)
        reader.take("suite_data", self.algorithm.algorithm_suite_data_length())
        reader.take("header_auth_tag", self.algorithm.auth_len)
        self.header_end = reader.position
        self._check_header()
        iv_len, tag_len = self.algorithm.iv_len, self.algorithm.auth_len
        while True:
            start = reader.position
            marker = struct.unpack(">I", self.data[start:start + 4])[0]
            index = len(self.frames)
            if marker == FINAL_FRAME_MARKER:
                reader.take(f"frame[{index}].final_marker", 4)
                reader.take(f"frame[{index}].sequence_number", 4)
                reader.take(f"frame[{index}].iv", iv_len)
                content = reader.number(f"frame[{index}].content_length", 4)
                reader.take(f"frame[{index}].content", content)
                reader.take(f"frame[{index}].tag", tag_len)
                self.frames.append(Segment(f"frame[{index}] (final)", start, reader.position))
                break
            reader.take(f"frame[{index}].sequence_number", 4)
            reader.take(f"frame[{index}].iv", iv_len)
            reader.take(f"frame[{index}].content", self.frame_length)
            reader.take(f"frame[{index}].tag", tag_len)
            self.frames.append(Segment(f"frame[{index}]", start, reader.position))
        self.footer = None
        if self.algorithm.is_signing():
            start = reader.position
            signature = reader.number("footer.signature_length", 2)
            reader.take("footer.signature", signature)
            self.footer = Segment("footer", start, reader.position)
        if reader.position != len(self.data):
            raise ValueError(f"{len(self.data) - reader.position} bytes after the footer")

    def _check_header(self):
        header, raw = deserialize_header(io.BytesIO(self.data), None)
        assert len(raw) + self.algorithm.auth_len == self.header_end, "layout disagrees with the library's parser"
        assert len(header.encrypted_data_keys) == len(self.data_keys)
        assert header.frame_length == self.frame_length

    def segment_of(self, offset):
        for segment in self.segments:
            if segment.start <= offset < segment.end:
                return segment.name
        raise IndexError(offset)

    def sample_frames(self):
        """The first, a middle and the final frame (each once)."""
        picks = [0, len(self.frames) // 2, len(self.frames) - 1]
        return [self.frames[index] for index in sorted(set(picks))]

    def sweep_offsets(self):
        """Every byte of the header (wrapped data keys included), of the first, a middle and the
        final frame, and of the footer."""
        offsets = list(range(self.header_end))
        for frame in self.sample_frames():
            offsets.extend(frame)
        if self.footer is not None:
            offsets.extend(self.footer)
        return offsets

    def truncation_points(self):
        """(label, length to keep): every frame boundary, points inside the header, each frame and
        the footer, and the empty file; never the whole message."""
        points = {0: "empty file", 1: "1 byte", 4: "4 bytes"}
        for segment in self.segments:
            if segment.start < self.header_end and segment.start not in points:
                points[segment.start] = f"header, before {segment.name}"
        points[self.header_end] = "header only (frame boundary)"
        for frame in self.frames:
            points[frame.end] = f"frame boundary after {frame.name}"
            for inside in (frame.start + 1, (frame.start + frame.end) // 2, frame.end - 1):
                points.setdefault(inside, f"inside {frame.name}")
        if self.footer is not None:
            points[self.footer.start + 1] = "inside footer (half its length field)"
            points[self.footer.start + 2] = "footer length only"
            points[(self.footer.start + self.footer.end) // 2] = "inside footer signature"
            points[self.footer.end - 1] = "footer without its last byte"
        points.pop(len(self.data), None)
        return [(label, length) for length, label in sorted(points.items())]


class _Reader:
    def __init__(self, data, segments):
        self.data, self.segments, self.position = data, segments, 0

    def take(self, name, length):
        if self.position + length > len(self.data):
            raise ValueError(f"message too short for {name}")
        segment = Segment(name, self.position, self.position + length)
        self.segments.append(segment)
        self.position += length
        return segment

    def number(self, name, length):
        segment = self.take(name, length)
        return int.from_bytes(self.data[segment.start:segment.end], "big")


def flipped(data, offset, mask):
    mutated = bytearray(data)
    mutated[offset] ^= mask
    return bytes(mutated)


def frame_mutations(base, donor):
    """(label, bytes) that splice two messages made under the same key, context and frame length,
    with the same number of frames: ``base`` with frames from ``donor``, its own frames reordered,
    repeated or dropped, and a header or a footer from ``donor``."""
    a, b = Layout(base), Layout(donor)
    assert len(a.frames) == len(b.frames) >= 3, "need two messages of at least three frames alike"
    head, tail = a.data[:a.header_end], a.data[a.frames[-1].end:]
    frames = list(a.frames)

    def body(chosen):
        return head + b"".join(layout.data[frame.start:frame.end] for layout, frame in chosen) + tail

    own = [(a, frame) for frame in frames]
    cases = []
    for index in sorted({0, len(frames) // 2, len(frames) - 1}):
        swapped = list(own)
        swapped[index] = (b, b.frames[index])
        cases.append((f"frame {index} from another message", body(swapped)))
    cases.append(("frames 0 and 1 swapped", body([own[1], own[0]] + own[2:])))
    cases.append(("a middle frame repeated", body(own[:2] + [own[1]] + own[2:])))
    cases.append(("a middle frame dropped", body(own[:1] + own[2:])))
    cases.append(("the final frame dropped", body(own[:-1])))
    cases.append(("the final frame twice", body(own + [own[-1]])))
    cases.append(("header of another message", b.data[:b.header_end] + a.data[a.header_end:]))
    if a.footer is not None:
        cases.append(("footer of another message", a.data[:a.footer.start] + b.data[b.footer.start:]))
    return cases


# -- the check: refused, one line, nothing written


def listing(directory):
    """Names, sizes and modification times of a directory's entries."""
    entries = {}
    for name in sorted(os.listdir(directory)):
        info = os.lstat(os.path.join(directory, name))
        entries[name] = (info.st_size, info.st_mtime_ns, stat.S_IFMT(info.st_mode))
    return entries


def listing_tree(top):
    """listing() of every directory under ``top``, keyed by relative path (nothing is opened)."""
    entries = {}
    for root, dirs, names in os.walk(top):
        for name in dirs + names:
            path = os.path.join(root, name)
            info = os.lstat(path)
            entries[os.path.relpath(path, top)] = (info.st_size, info.st_mtime_ns, stat.S_IFMT(info.st_mode))
    return entries


def one_line_problem(message):
    """Why a failure message is not one clear line, or None."""
    text = str(message)
    if not text.strip():
        return "empty message"
    if "\n" in text or "\r" in text:
        return "message of several lines"
    if "Traceback" in text:
        return "traceback in message"
    return None


class Refusals:
    """Runs the hostile decrypt checks of one engine; keeps the kinds of errors met."""

    def __init__(self, engine, workdir, secret=b"", old=b"old plaintext, must survive\n"):
        self.engine = engine
        self.secret = secret  # bytes that must never appear in a message
        self.old = old
        self.source_dir = os.path.join(workdir, "in")
        self.dest_dir = os.path.join(workdir, "out")
        os.makedirs(self.source_dir, exist_ok=True)
        os.makedirs(self.dest_dir, exist_ok=True)
        self.src = os.path.join(self.source_dir, "mutated.enc")
        self.dest = os.path.join(self.dest_dir, "plain.txt")
        with open(self.dest, "wb") as handle:
            handle.write(old)
        self.kinds = {}

    def problem(self, data, to_file=(), in_memory=()):
        """None when both decrypt paths refuse ``data`` cleanly, else what went wrong. ``to_file``
        and ``in_memory`` are the decrypt policy keywords of ``Engine.decrypt_file`` (to a dest
        holding old content) and ``Engine.decrypt_bytes``; None skips that path."""
        problems = []
        if to_file is not None:
            problems.append(self._to_file(data, dict(to_file)))
        if in_memory is not None:
            problems.append(self._in_memory(data, dict(in_memory)))
        problems = [problem for problem in problems if problem]
        return "; ".join(problems) or None

    def _to_file(self, data, policy):
        with open(self.src, "wb") as handle:
            handle.write(data)
        before = listing(self.dest_dir)
        problem = self._expect_refusal(lambda: self.engine.decrypt_file(self.src, self.dest, **policy),
                                       f"cannot decrypt {self.src}", "decrypt_file")
        with open(self.dest, "rb") as handle:
            if handle.read() != self.old:
                problem = (problem or "decrypt_file") + ": dest changed"
                with open(self.dest, "wb") as restore:
                    restore.write(self.old)
        after = listing(self.dest_dir)
        if after != before:
            problem = (problem or "decrypt_file") + f": dest directory changed ({sorted(set(after) ^ set(before))})"
        return problem

    def _in_memory(self, data, policy):
        return self._expect_refusal(lambda: self.engine.decrypt_bytes(data, **policy), "cannot decrypt content",
                                    "decrypt_bytes")

    def _expect_refusal(self, call, prefix, path):
        try:
            call()
        except EnvelopeError as error:
            self.kinds[error.kind] = self.kinds.get(error.kind, 0) + 1
            problem = one_line_problem(error.message)
            if problem:
                return f"{path}: {problem}: {error.message!r}"
            if not error.message.startswith(prefix):
                return f"{path}: message does not start with {prefix!r}: {error.message!r}"
            if self.secret and self.secret in error.message.encode():
                return f"{path}: plaintext in the message"
            return untrue_problem(error.message, path)
        except Exception as error:  # pylint: disable=broad-except  # anything else is the finding
            return f"{path}: raised {type(error).__name__} instead of EnvelopeError: {error}"
        return f"{path}: decrypted without an error"


_SIZE_CLAIM = re.compile(r"\((\d+) bytes\) is larger than the (\d+) bytes")


def untrue_problem(message, path="message"):
    """A message that says "(N bytes) is larger than the M bytes" must have N > M."""
    for claimed, bound in _SIZE_CLAIM.findall(message):
        if int(claimed) <= int(bound):
            return f"{path}: the message is not true ({claimed} is not larger than {bound}): {message!r}"
    return None


# -- a memo of KMS answers


class KmsMemo:
    """Answers a KMS call the client already made with exactly the same arguments with the answer
    the server gave then (the response, or the same error raised afresh), without calling again.
    The engine and the library run unchanged; only the round trip to the moto server (and
    botocore's request building) is saved: a body byte flipped leaves the header, and so the
    Decrypt request, unchanged. ``forwarded`` / ``replayed`` count the calls."""

    def __init__(self, client, operations=("decrypt",)):
        self.client = client
        self.answers = {}
        self.forwarded = 0
        self.replayed = 0
        for operation in operations:
            setattr(client, operation, self._memoized(operation, getattr(client, operation)))

    def _memoized(self, operation, call):
        def memoized(**kwargs):
            key = (operation, repr(sorted(kwargs.items())))
            if key in self.answers:
                self.replayed += 1
            else:
                self.forwarded += 1
                try:
                    self.answers[key] = ("answer", call(**kwargs))
                except botocore.exceptions.ClientError as error:
                    self.answers[key] = ("error", (error.response, error.operation_name))
            kind, value = self.answers[key]
            if kind == "error":
                response, operation_name = value
                code = response.get("Error", {}).get("Code")
                raise self.client.exceptions.from_code(code)(copy.deepcopy(response), operation_name)
            return copy.deepcopy(value)

        return memoized


# -- KMS calls attributed to the task that made them


MUTATING_KMS_CALLS = frozenset({
    "CreateKey", "CreateAlias", "UpdateAlias", "DeleteAlias", "EnableKey", "DisableKey", "ScheduleKeyDeletion",
    "CancelKeyDeletion", "EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand", "PutKeyPolicy",
    "TagResource", "UntagResource", "UpdateKeyDescription", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "Encrypt", "ReEncrypt", "CreateGrant", "RevokeGrant", "ReplicateKey", "UpdatePrimaryRegion",
})
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def kms_calls_by_access_key(kms_server):
    """{access key id: Counter of KMS operations} recorded by the moto server since
    ``kms_server.start_recording()``: give each task its own access key to tell its calls apart."""
    with urllib.request.urlopen(kms_server.url + "/moto-api/recorder/download-recording", timeout=30) as response:
        lines = response.read().decode().splitlines()
    calls = collections.defaultdict(collections.Counter)
    for line in lines:
        if not line.strip():
            continue
        headers = json.loads(line).get("headers") or {}
        target = headers.get("X-Amz-Target", "")
        match = _CREDENTIAL.search(headers.get("Authorization", ""))
        if target.startswith("TrentService."):
            calls[match.group(1) if match else None][target.split(".", 1)[1]] += 1
    return calls


# -- a playbook run that cannot hang


def item_results(result):
    """The per-item results of a looped task's registered result."""
    return result.get("results", [result])


def task_problem(result):
    """Why a task (or loop item) result is not a clean failure with one line, or None."""
    if result.get("failed") is not True:
        return f"did not fail: {str(result)[:300]}"
    message = result.get("msg", "")
    problem = one_line_problem(message) or untrue_problem(message)
    if problem:
        return f"{problem}: {message[:400]!r}"
    for field in ("module_stderr", "exception", "module_stdout"):
        if "Traceback" in str(result.get(field, "")):
            return f"traceback in {field}: {str(result.get(field))[-400:]!r}"
    return None
