"""make bench: the engine, the copy action (local and over ssh), the role's KMS cost and time, and envelope vars
files, against peers in one run.

Everything is a ratio against a peer measured on the same machine in the same run (the machine is
shared and noisy), from the median of several rounds in which peers and ours alternate. One-off
set-up (the moto server, keys, plaintext files, the aws-encryption-cli venv) stays out of the timed
parts. Prints a table per section and a summary of the targets, and writes every number to
.build/bench/results.json. bench/README.md explains each measurement and how to read the table.

Usage: python bench/run.py [--big | --smoke] [--only engine,copy,role,profile,vars,ssh] [--rounds N] [--output PATH]
"""

import argparse
import collections
import contextlib
import datetime
import filecmp
import glob
import hashlib
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.harness.kms_server import REGION, KmsServer  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.playbook import (  # noqa: E402  pylint: disable=wrong-import-position
    COLLECTIONS_PATH, PlaybookRunner, PlaybookTimeout, run_bounded)
from tests.harness.ssh_hosts import SshServer, missing_tools  # noqa: E402  pylint: disable=wrong-import-position

BUILD = os.path.join(ROOT, ".build", "bench")
WORK = os.path.join(BUILD, "work")
CLI_VENV = os.path.join(BUILD, "cli-venv")
CLI_REQUIREMENT = "aws-encryption-sdk-cli>=4.1,<5"  # the aws-encryption-cli command; pins aws-encryption-sdk 3.x
WORKER = os.path.join(ROOT, "bench", "worker.py")
ACTION_PLUGINS = os.path.join(ROOT, "bench", "action_plugins")
PYTHON = sys.executable

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

ENGINE_FRAME = 256 * KIB  # _envelope/constants.py DEFAULT_FRAME_LENGTH; raw AES-GCM uses the same chunks
ENGINE_SUITE = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"  # the engine's default suite (0x0478, unsigned)
CLI_FRAME_SWEEP = (4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1 * MIB)
ENGINE_FRAME_SWEEP = (64 * KIB, 128 * KIB, 256 * KIB, 1 * MIB, 4 * MIB)
SMALL_FILE_SIZE = 2 * KIB
ROLE_SECRETS = 10
ROLE_HOSTS = (1, 5)  # --big adds 20: each host costs ~2 module runs per secret and run (see README)
ROLE_HOSTS_BIG = (1, 5, 20)
# Peers that only add information (the same work as another row, or a variant of it): measured on the
# bigger sizes, where the streaming differs, not at 1 MiB, where fixed costs decide.
LARGE_ONLY_CASES = ("engine_defaults",)
BIG_ONLY_CASES = ("cli_best_unsigned",)

TARGETS = []  # dicts: section, name, value, target, ok, note


def log(message):
    print(message, flush=True)


def median(values):
    return statistics.median(values) if values else None


def human_size(size):
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def target(section, name, value, wanted, ok, note=""):
    TARGETS.append(dict(section=section, name=name, value=value, target=wanted, ok=ok, note=note))
    return "ok" if ok else "MISS"


def print_table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "  ".join(f"{{:{'<' if index == 0 else '>'}{width}}}" for index, width in enumerate(widths))
    log(line.format(*header))
    log("  ".join("-" * width for width in widths))
    for row in rows:
        log(line.format(*[str(cell) for cell in row]))


def make_random_file(path, size):
    """Random (incompressible) plaintext, written once and reused while its size is right."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, 4 * MIB))
            handle.write(block)
            remaining -= len(block)
    return path


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


# ---------------------------------------------------------------------------------------------
# The aws-encryption-cli peer: its own venv (it pins aws-encryption-sdk 3.x), made once, outside timing


def ensure_cli_venv():
    """Path of the venv's python with aws-encryption-cli installed, or None (then the CLI is skipped)."""
    python = os.path.join(CLI_VENV, "bin", "python")
    stamp = os.path.join(CLI_VENV, ".installed")
    if os.path.exists(stamp):
        return python
    log(f"creating {CLI_VENV} with {CLI_REQUIREMENT} (once; not timed)")
    remove(CLI_VENV)
    try:
        subprocess.run([PYTHON, "-m", "venv", CLI_VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", CLI_REQUIREMENT], check=True)
    except subprocess.CalledProcessError as error:
        log(f"WARNING: cannot install aws-encryption-cli ({error}); its rows are skipped")
        return None
    with open(stamp, "w", encoding="utf-8") as handle:
        handle.write(CLI_REQUIREMENT + "\n")
    return python


def package_versions(python, names):
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        out[name] = None\n"
        "print(json.dumps(out))\n"
    )
    completed = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


# ---------------------------------------------------------------------------------------------
# 1. Engine throughput: file to file, each measurement in its own process


def spec_is_cli(case_id):
    return case_id.startswith("cli")


class EngineBench:
    """Engine vs raw AES-256-GCM (cryptography, same chunks) vs aws-encryption-cli."""

    def __init__(self, server, key_arn, cli_python, rounds, big=False):
        self.big = big
        self.server = server
        self.key_arn = key_arn
        self.cli_python = cli_python
        self.rounds = rounds
        self.env = dict(os.environ, **server.environment())
        self.folder = os.path.join(WORK, "engine")
        os.makedirs(self.folder, exist_ok=True)
        self.key_file = os.path.join(self.folder, "raw.key")
        with open(self.key_file, "wb") as handle:
            handle.write(os.urandom(32))

    def worker(self, python, spec):
        remove(spec["dest"])  # truncating or replacing an old output is not part of the work
        os.sync()  # the previous measurement's dirty pages are written back before this one starts
        started = time.perf_counter()
        completed = subprocess.run([python, WORKER, json.dumps(spec)], env=self.env, capture_output=True, text=True,
                                   check=False)
        process_seconds = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(f"worker failed ({spec['kind']} {spec['op']}):\n{completed.stderr[-3000:]}")
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        result["process_seconds"] = process_seconds
        return result

    def cases(self, best_frame):
        """(id, label, python, ops, spec(op, src, dest)) for each peer."""
        engine_common = dict(kind="engine", key_arn=self.key_arn, endpoint_url=self.server.url,
                             collections=COLLECTIONS_PATH, frame_length=ENGINE_FRAME)

        def raw(fsync):
            return lambda op, src, dest: dict(kind="raw", op=op, src=src, dest=dest, chunk=ENGINE_FRAME,
                                              key_file=self.key_file, fsync=fsync)

        def engine(checksums, durable):
            return lambda op, src, dest: dict(engine_common, op=op, src=src, dest=dest, checksums=checksums,
                                              durable=durable)

        def cli(*extra):
            def spec(op, src, dest):
                argv = ["-e" if op == "encrypt" else "-d", "-i", src, "-o", dest, "-w", f"key={self.key_arn}", "-S"]
                if op == "encrypt":
                    argv += list(extra)
                return dict(kind="cli", op=op, src=src, dest=dest, argv=argv, fsync=op == "decrypt")
            return spec

        both = ("encrypt", "decrypt")
        cases = [
            ("raw", "raw AES-256-GCM (cryptography)", PYTHON, both, raw(False)),
            ("raw_fsync", "raw AES-256-GCM + fsync", PYTHON, both, raw(True)),
            ("engine", "engine (encrypt as copy does; decrypt_file)", PYTHON, both, engine(False, False)),
            ("engine_defaults", "engine encrypt_file defaults (sha1+sha256, fsync)", PYTHON, ("encrypt",),
             engine(True, True)),
        ]
        if self.cli_python:
            cases += [
                ("cli_defaults", "aws-encryption-cli defaults (signed 0x0578, 4 KiB frames)", self.cli_python, both,
                 cli()),
                ("cli_best", f"aws-encryption-cli, best frame {human_size(best_frame)} (signed)", self.cli_python,
                 both, cli("--frame-length", str(best_frame))),
                ("cli_best_unsigned", f"aws-encryption-cli, frame {human_size(best_frame)}, engine's suite 0x0478",
                 self.cli_python, both, cli("--frame-length", str(best_frame), "--algorithm", ENGINE_SUITE)),
            ]
        return cases

    def sweep_cli_frame(self, plaintext):
        """The CLI's best frame length (its default suite), by encrypt time (median of 2 rounds with --big)."""
        if not self.cli_python:
            return None, {}
        times = collections.defaultdict(list)
        dest = os.path.join(self.folder, "sweep.enc")
        for round_index in range(2 if self.big else 1):
            frames = CLI_FRAME_SWEEP if round_index % 2 == 0 else tuple(reversed(CLI_FRAME_SWEEP))
            for frame in frames:
                spec = dict(kind="cli", op="encrypt", src=plaintext, dest=dest,
                            argv=["-e", "-i", plaintext, "-o", dest, "-w", f"key={self.key_arn}", "-S",
                                  "--frame-length", str(frame)])
                times[frame].append(self.worker(self.cli_python, spec)["seconds"])
        medians = {frame: median(values) for frame, values in times.items()}
        return min(medians, key=medians.get), medians

    def run(self, sizes, sweep_size=64 * MIB):
        sweep_plain = make_random_file(os.path.join(self.folder, f"plain-{sweep_size}"), sweep_size)
        best_frame, sweep = self.sweep_cli_frame(sweep_plain)
        log(f"aws-encryption-cli frame length sweep on {human_size(sweep_size)} (encrypt, median s): "
            + ", ".join(f"{human_size(frame)}: {seconds:.3f}" for frame, seconds in sweep.items())
            + (f" -> best {human_size(best_frame)}" if best_frame else ""))
        cases = self.cases(best_frame or ENGINE_FRAME)
        report = dict(best_cli_frame=best_frame, cli_frame_sweep={str(k): v for k, v in sweep.items()}, sizes=[])
        for size in sizes:
            report["sizes"].append(self.run_size(size, cases))
        try:
            report["analysis"] = self.analysis(sweep_plain, sweep_size)
        except RuntimeError as error:  # information only: the section's tables and targets stand without it
            lines = [line for line in str(error).splitlines() if line.strip()]
            report["analysis_error"] = lines[-1] if lines else str(error)
            log(f"WARNING: the engine's 'why' analysis failed, left out: {report['analysis_error']}")
        return report

    def analysis(self, plaintext, size):
        """Frame sweep and profile of the engine in one process (see worker.analysis)."""
        spec = dict(kind="analysis", src=plaintext, dest=os.path.join(self.folder, "analysis"), key_arn=self.key_arn,
                    endpoint_url=self.server.url, collections=COLLECTIONS_PATH, key_file=self.key_file,
                    frames=list(ENGINE_FRAME_SWEEP), frame_length=ENGINE_FRAME, rounds=3)
        completed = subprocess.run([PYTHON, WORKER, json.dumps(spec)], env=self.env, capture_output=True, text=True,
                                   check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"analysis worker failed:\n{completed.stderr[-3000:]}")
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        report["size"] = size
        return report

    def run_size(self, size, cases):
        rounds = self.rounds or 3
        if size < 64 * MIB:
            cases = [case for case in cases if case[0] not in LARGE_ONLY_CASES + BIG_ONLY_CASES]
        elif not self.big:
            cases = [case for case in cases if case[0] not in BIG_ONLY_CASES]
        plain = make_random_file(os.path.join(self.folder, f"plain-{size}"), size)
        samples = collections.defaultdict(list)
        loadavg = os.getloadavg()
        for round_index in range(rounds):
            shift = round_index % len(cases)
            for case_id, label, python, ops, spec in cases[shift:] + cases[:shift]:
                encrypted = os.path.join(self.folder, f"{case_id}.enc")
                decrypted = os.path.join(self.folder, f"{case_id}.dec")
                for op in ops:
                    src, dest = (plain, encrypted) if op == "encrypt" else (encrypted, decrypted)
                    samples[(case_id, op)].append(self.worker(python, spec(op, src, dest)))
                if round_index == 0 and "decrypt" in ops and not filecmp.cmp(plain, decrypted, shallow=False):
                    raise RuntimeError(f"{label}: the decrypted file differs from the plaintext")
            for case_id, label, python, ops, spec in cases:
                remove(os.path.join(self.folder, f"{case_id}.enc"))
                remove(os.path.join(self.folder, f"{case_id}.dec"))
        results = []
        for case_id, label, python, ops, spec in cases:
            for op in ops:
                runs = samples[(case_id, op)]
                seconds = median([run["seconds"] for run in runs])
                kms = median([run["kms_seconds"] for run in runs if "kms_seconds" in run])
                # client_seconds: the engine makes its client before its timed part, the CLI inside it
                client = median([run["client_seconds"] for run in runs if "client_seconds" in run])
                if spec_is_cli(case_id):
                    with_client = seconds
                    without_client = median([run["seconds"] - run["client_seconds"] for run in runs])
                else:
                    with_client = median([run["seconds"] + run["client_seconds"] for run in runs
                                          if "client_seconds" in run])
                    without_client = seconds
                results.append(dict(
                    case=case_id, label=label, op=op, rounds=len(runs), median_seconds=seconds,
                    mb_per_s=size / seconds / 1e6,
                    median_kms_seconds=kms,
                    median_client_seconds=client,
                    median_seconds_with_client=with_client,
                    median_seconds_without_client=without_client,
                    median_process_seconds=median([run["process_seconds"] for run in runs]),
                    peak_rss_mib=max(run["maxrss_kib"] for run in runs) / 1024,
                    samples=[run["seconds"] for run in runs],
                ))
        return dict(size=size, rounds=rounds, loadavg_at_start=loadavg, results=results)


def print_engine(report):
    log("")
    log("== 1. Engine throughput, file to file (median of the rounds; timed part after imports; "
        "MB/s = 10^6 plaintext bytes/s)")
    for block in report["sizes"]:
        size = block["size"]
        by_key = {(row["case"], row["op"]): row for row in block["results"]}
        rows = []
        for row in block["results"]:
            engine = by_key[("engine", row["op"])]
            # >1: the engine is faster; both sides without making their KMS client (one-off set-up)
            speed = row["median_seconds_without_client"] / engine["median_seconds_without_client"]
            rows.append([row["label"], row["op"], fmt(row["median_seconds"], 3), fmt(row["mb_per_s"], 0),
                         fmt(row["median_kms_seconds"], 3),
                         fmt(row["median_client_seconds"], 3) + (" in" if spec_is_cli(row["case"]) else ""),
                         fmt(row["median_process_seconds"], 2), fmt(row["peak_rss_mib"], 0), fmt(speed)])
        log("")
        log(f"-- {human_size(size)}, {block['rounds']} rounds (load average at start {block['loadavg_at_start'][0]:.1f})")
        print_table(["peer", "op", "median s", "MB/s", "KMS s", "client s", "process s", "peak RSS MiB",
                     "engine speed x"], rows)
        engine_targets(size, by_key)
    analysis = report.get("analysis")
    if analysis:
        log("")
        log(f"-- why: engine vs raw AES-GCM by frame length, {human_size(analysis['size'])}, one process, "
            "median of 3 (decrypt without fsync)")
        rows = []
        for frame, parts in analysis["frame_sweep"].items():
            rows.append([human_size(int(frame)), fmt(parts["raw_encrypt"], 3), fmt(parts["encrypt"], 3),
                         fmt(parts["raw_encrypt"] / parts["encrypt"]), fmt(parts["raw_decrypt"], 3),
                         fmt(parts["decrypt"], 3), fmt(parts["raw_decrypt"] / parts["decrypt"])])
        print_table(["frame", "raw enc s", "engine enc s", "ratio", "raw dec s", "engine dec s", "ratio"], rows)
        log("   fixed costs, median of 5 (s): " + "; ".join(
            f"{name} {seconds:.4f}" for name, seconds in analysis.get("fixed_costs", {}).items()))
        for op, profile in analysis["profiles"].items():
            log(f"   profile of one engine {op} at {human_size(ENGINE_FRAME)} frames, own time "
                f"(total {profile['total_seconds']:.3f} s): "
                + "; ".join(f"{entry['function']} {entry['own_seconds']:.3f}" for entry in profile["top_own_time"][:6]))


def engine_targets(size, by_key):
    name = human_size(size)
    for op in ("encrypt", "decrypt"):
        engine = by_key[("engine", op)]
        # Like for like: decrypt_file fsyncs its output before the rename, so its raw peer does too.
        raw_case = "raw_fsync" if op == "decrypt" else "raw"
        raw = by_key[(raw_case, op)]
        ratio = raw["median_seconds"] / engine["median_seconds"]
        streaming = None
        if engine["median_kms_seconds"] is not None:
            streaming = raw["median_seconds"] / max(engine["median_seconds"] - engine["median_kms_seconds"], 1e-9)
        verdict = target("engine", f"{op} {name}: engine / raw AES-GCM{' + fsync' if op == 'decrypt' else ''}",
                         ratio, ">= 0.70", ratio >= 0.70,
                         f"without the KMS round trip: {fmt(streaming)}; vs raw without fsync: "
                         f"{fmt(by_key[('raw', op)]['median_seconds'] / engine['median_seconds'])}")
        log(f"   target {op} engine >= 0.70 x raw AES-GCM{' + fsync' if op == 'decrypt' else ''}: "
            f"{ratio:.2f} {verdict} (without the KMS round trip {fmt(streaming)})")
        cli = by_key.get(("cli_defaults", op))
        if cli:
            # Like for like: neither side's time includes making its botocore session and KMS client
            # (one-off set-up; the CLI makes them inside its run, the engine before).
            ratio = cli["median_seconds_without_client"] / engine["median_seconds_without_client"]
            with_client = cli["median_seconds_with_client"] / engine["median_seconds_with_client"]
            note = (f"CLI {cli['median_seconds_without_client']:.3f} s vs engine "
                    f"{engine['median_seconds_without_client']:.3f} s; both including making their client "
                    f"(+{cli['median_client_seconds']:.3f} / +{engine['median_client_seconds']:.3f} s): {with_client:.2f}")
            verdict = target("engine", f"{op} {name}: engine / aws-encryption-cli defaults", ratio, ">= 5",
                             ratio >= 5, note)
            log(f"   target {op} engine >= 5 x aws-encryption-cli defaults: {ratio:.2f} {verdict} ({note})")
        rss = engine["peak_rss_mib"]
        verdict = target("engine", f"{op} {name}: engine peak RSS MiB", rss, "< 100", rss < 100)
        log(f"   target {op} engine peak RSS < 100 MiB: {rss:.0f} MiB {verdict}")


# ---------------------------------------------------------------------------------------------
# 2. envelope.kms.copy vs ansible.builtin.copy, whole ansible-playbook runs: local connection here,
# over ssh in section 6 (the same CopyBench); the role against a copy loop in section 3 (compare())

RUN_TIMEOUT = 600  # s: a run that takes longer is killed and recorded as 'timeout'; the bench goes on
COPY_PEERS = ("ansible.builtin.copy", "envelope.kms.copy")  # peer first, ours second
DIR_FILES = 200  # files of SMALL_FILE_SIZE in the directory scenario (sections 2 and 6)
DIR_FILES_SMOKE = 5


class RunFailed(Exception):
    """One ansible-playbook run failed (kind 'error') or was killed (kind 'timeout'); ``line``: one line saying why."""

    def __init__(self, line, kind="error"):
        super().__init__(line)
        self.line = line
        self.kind = kind


def one_line(text, limit=200):
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def first_failure(run):
    """The message of a failed run's first failed task (its first failed loop item's, for a loop), on one line."""
    for name, hosts in run.tasks():
        for host, result in hosts.items():
            if not (result.get("failed") or result.get("unreachable")):
                continue
            items = [item for item in result.get("results") or [] if isinstance(item, dict) and item.get("failed")]
            source = items[0] if items else result
            message = one_line(source.get("msg") or source.get("module_stderr") or source.get("stderr") or "failed")
            return f"{name!r} on {host}: {message}"
    return f"rc={run.returncode}: {one_line(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else 'no message')}"


def timed_run(runner, playbook, extra_vars=None, timeout=RUN_TIMEOUT):
    """(PlaybookRun, wall seconds) of one ansible-playbook run; RunFailed if it failed, printed no result or ran
    longer than ``timeout`` (its process group is killed then; tests/harness/playbook.py run_bounded)."""
    args = ["-e", json.dumps(extra_vars)] if extra_vars else []
    os.sync()  # as in EngineBench.worker
    started = time.perf_counter()
    try:
        run = run_bounded(runner, playbook, timeout=timeout, extra_args=args)
    except PlaybookTimeout:
        raise RunFailed(f"timeout: killed after {timeout} s", "timeout") from None
    except AssertionError as error:  # no JSON document on stdout
        raise RunFailed(one_line(str(error))) from None
    elapsed = time.perf_counter() - started
    if run.returncode != 0 or any(stats["failures"] or stats["unreachable"] for stats in run.stats.values()):
        raise RunFailed(first_failure(run))
    return run, elapsed


def check_changed(run, hosts, expect_changed):
    changed = {host: run.changed(host) for host in hosts}
    if set(run.stats) != set(hosts) or any(bool(count) != expect_changed for count in changed.values()):
        raise RunFailed(f"changed={changed} (hosts {sorted(run.stats)}), expected {'some' if expect_changed else 'none'}"
                        " on every host")


def compare(label, runner, peers, rounds, prepare, server, hosts, extra_vars=None, budget=None):
    """Each round: for each of the two ``peers`` ({name: playbook}, the peer first, ours second; the order
    alternates between rounds), ``prepare(peer, round_index)`` (empties the destinations, untimed; returns extra
    vars or None), a first run that must change every host, then an idempotent re-run. Our runs are recorded by
    moto's request recorder. A failed run ends the comparison; it is returned as ``error``. ``budget``: no next
    round once a round took longer (seconds)."""
    names = list(peers)
    ours = names[1]
    times = collections.defaultdict(list)
    kms = {}
    error = None
    done = 0
    note = ""
    for round_index in range(rounds):
        round_started = time.perf_counter()
        for peer in names if round_index % 2 == 0 else list(reversed(names)):
            variables = dict(extra_vars or {}, **(prepare(peer, round_index) or {}))
            for run_kind, expect_changed in (("first run", True), ("re-run", False)):
                if peer == ours:
                    server.start_recording()
                try:
                    run, elapsed = timed_run(runner, peers[peer], variables)
                    check_changed(run, hosts, expect_changed)
                except RunFailed as failure:
                    error = dict(peer=peer, run=run_kind, round=round_index + 1, kind=failure.kind,
                                 message=failure.line)
                    log(f"   {label}: {peer} {run_kind} (round {round_index + 1}) failed: {failure.line}")
                    break
                times[(peer, run_kind)].append(elapsed)
                if peer == ours:
                    kms[run_kind] = dict(server.kms_calls())
            if error:
                break
        if error:
            break
        done += 1
        round_seconds = time.perf_counter() - round_started
        log(f"   {label}: round {done}/{rounds} done in {round_seconds:.0f} s (load average {os.getloadavg()[0]:.1f})")
        if budget and done < rounds and round_seconds > budget:
            note = f"{done} of {rounds} rounds: a round took {round_seconds:.0f} s (over {budget} s)"
            log(f"   {label}: {note}")
            break
    results = []
    for run_kind in ("first run", "re-run"):
        builtin = median(times[(names[0], run_kind)])
        mine = median(times[(ours, run_kind)])
        failed = error and (error["run"] == run_kind or error["run"] == "first run")
        results.append(dict(run=run_kind, builtin_median_seconds=builtin, envelope_median_seconds=mine,
                            ratio=mine / builtin if builtin and mine and not failed else None,
                            error=error if failed else None, kms_calls=kms.get(run_kind, {}),
                            builtin_samples=times[(names[0], run_kind)], envelope_samples=times[(ours, run_kind)]))
    return dict(peers=names, rounds=done, rounds_planned=rounds, note=note, error=error, results=results)


class CopyBench:
    """envelope.kms.copy vs ansible.builtin.copy on one host: local connection (section 2) or a host of the
    SSH tier's sshd (section 6, ``runner`` an SshBenchRunner, ``owner`` the login user of the folders)."""

    def __init__(self, server, key_arn, rounds, name="copy", runner=None, host="localhost", owner=None):
        self.server = server
        self.key_arn = key_arn
        self.rounds = rounds  # 0: each scenario's own default
        self.folder = os.path.join(WORK, name)
        remove(self.folder)
        os.makedirs(self.folder)
        if runner is None:
            runner = PlaybookRunner(self.folder, server.environment())
            self.dest_root = os.path.join(self.folder, "hosts", host)
        else:
            runner = runner(self.folder)
            self.dest_root = runner.roots[host]
        self.runner = runner
        self.host = host
        self.owner = owner
        self.report = dict(loadavg_at_start=os.getloadavg(), scenarios=[])

    def playbook(self, name, module, args, loop=None, become=False):
        task = {"name": "Copy", module: dict(args)}
        if module == "envelope.kms.copy":
            task[module]["key_id"] = "{{ bench_key_arn }}"
        if loop is not None:
            task["loop"] = loop
        play = {"name": "Bench", "hosts": "targets", "gather_facts": False, "tasks": [task]}
        if become:
            play["become"] = True
        return self.runner.write(json.dumps([play], indent=1), name=name)

    def fresh(self, path, owner):
        remove(path)
        os.makedirs(path)
        if owner:
            shutil.chown(path, owner, owner)

    def scenario(self, name, kind, count, size, rounds, args_for, targets, loop=None, become=False, budget=None):
        """``args_for(folder)``: the task's arguments for a peer whose destination folder is ``folder``;
        ``targets``: {run kind: highest ratio}. Never raises: a failure is the scenario's ``error``."""
        log(f"-- {name}")
        base = os.path.join(self.dest_root, "root") if become else self.dest_root  # root/: root's, 0700
        folders = {peer: os.path.join(base, peer) for peer in COPY_PEERS}
        entry = dict(name=name, kind=kind, size=size, count=count, become=become, targets=targets)
        try:
            peers = {peer: self.playbook(f"{kind}-{peer}.yml", peer, args_for(folders[peer]), loop, become)
                     for peer in COPY_PEERS}
            entry.update(compare(name, self.runner, peers, rounds,
                                 lambda peer, _round: self.fresh(folders[peer], None if become else self.owner),
                                 self.server, [self.host], extra_vars={"bench_key_arn": self.key_arn}, budget=budget))
        except Exception as error:  # pylint: disable=broad-exception-caught  # the bench goes on
            message = one_line(f"{type(error).__name__}: {error}")
            log(f"   {name}: {message}")
            entry.update(peers=list(COPY_PEERS), rounds=0, rounds_planned=rounds, note="", results=[],
                         error=dict(peer="-", run="-", kind="error", message=message))
        for folder in folders.values():
            remove(folder)
        self.report["scenarios"].append(entry)

    def sources(self, count, folder="small"):
        """``count`` random files of SMALL_FILE_SIZE: f0, f1... (the loop's) or f000... (a directory's)."""
        sources = os.path.join(WORK, "copy-src", folder)
        for index in range(count):
            make_random_file(os.path.join(sources, f"f{index}" if folder == "small" else f"f{index:03d}"),
                             SMALL_FILE_SIZE)
        return sources

    def big(self, size, rounds, targets, become=False, budget=None):
        big = make_random_file(os.path.join(WORK, "copy-src", f"big-{size}"), size)
        self.scenario(f"one {human_size(size)} file" + (" with become" if become else ""), "big", 1, size, rounds,
                      lambda folder: {"src": big, "dest": f"{folder}/big", "mode": "0600"}, targets, become=become,
                      budget=budget)

    def loop(self, count, rounds, targets):
        sources = self.sources(count)
        self.scenario(f"{count} files of {human_size(SMALL_FILE_SIZE)} in a loop", "small", count, SMALL_FILE_SIZE,
                      rounds, lambda folder: {"src": sources + "/f{{ item }}", "dest": folder + "/f{{ item }}",
                                              "mode": "0600"},
                      targets, loop="{{ range(%d) | list }}" % count)

    def directory(self, count, rounds, targets):
        sources = self.sources(count, f"dir-{count}")
        self.scenario(f"{count} files of {human_size(SMALL_FILE_SIZE)} as one directory task", "dir", count,
                      SMALL_FILE_SIZE, rounds, lambda folder: {"src": sources + "/", "dest": folder + "/",
                                                               "mode": "0600"}, targets)

    def run(self, big_size, small_count, dir_count):
        """Section 2: the big file (3 rounds), the loop and the directory (1 round each: every run already sums
        its files, at ~0.5 s of module runs each)."""
        self.big(big_size, self.rounds or 3, {"first run": 1.15, "re-run": 0.6})
        self.loop(small_count, self.rounds or 1, {"first run": 1.05, "re-run": 0.8})
        self.directory(dir_count, self.rounds or 1, {"first run": 1.0, "re-run": 1.0})
        return self.report


def print_comparison(title, section, report, peer_label="builtin copy s", ours_label="envelope.kms.copy s",
                     ratio_label="envelope.kms.copy / ansible.builtin.copy"):
    """The table of CopyBench.report (or the role comparison's), then each target: the ratio, or the error."""
    log("")
    log(title)
    rows = []
    for scenario in report["scenarios"]:
        rounds = str(scenario["rounds"]) + (f"/{scenario['rounds_planned']}"
                                            if scenario["rounds"] != scenario["rounds_planned"] else "")
        results = scenario["results"] or [dict(run="-", builtin_median_seconds=None, envelope_median_seconds=None,
                                               ratio=None, error=scenario["error"], kms_calls={})]
        for result in results:
            calls = result["kms_calls"]
            extra = "-"
            if result["ratio"] is not None:
                extra = (f"{(result['envelope_median_seconds'] - result['builtin_median_seconds']) / scenario['count']:+.2f}"
                         + (" /file" if scenario["count"] > 1 else ""))
            ratio = fmt(result["ratio"]) if not result["error"] else result["error"]["kind"]
            kms_cells = [calls.get(action, 0) if result.get("envelope_samples") else "-"
                         for action in ("GenerateDataKey", "Decrypt", "DescribeKey")]
            rows.append([scenario["name"], result["run"], rounds, fmt(result["builtin_median_seconds"]),
                         fmt(result["envelope_median_seconds"]), ratio, extra, *kms_cells])
    print_table(["scenario", "run", "rounds", peer_label, ours_label, "ratio", "extra s", "GenerateDataKey", "Decrypt",
                 "DescribeKey"], rows)
    for scenario in report["scenarios"]:
        error = scenario["error"]
        if error:
            log(f"   {scenario['name']}: {error['kind']} in {error['peer']} {error['run']}: {error['message']}")
        if scenario["note"]:
            log(f"   {scenario['name']}: {scenario['note']}")
        for run_kind, wanted in scenario["targets"].items():
            result = next((result for result in scenario["results"] if result["run"] == run_kind), None)
            name = f"{scenario['name']}, {run_kind}: {ratio_label}"
            failure = (result or {}).get("error") or error
            if result is None or result["ratio"] is None:
                verdict = target(section, name, failure["kind"] if failure else "-", f"<= {wanted}", False,
                                 f"{failure['peer']} {failure['run']}: {failure['message']}" if failure else "")
                log(f"   target {scenario['name']}, {run_kind}: <= {wanted}: {failure['kind'] if failure else '-'} "
                    f"{verdict}")
                continue
            note = scenario["note"] + ("; " if scenario["note"] and failure else "") + (
                f"{failure['peer']} {failure['run']}: {failure['kind']}" if failure else "")
            verdict = target(section, name, result["ratio"], f"<= {wanted}", result["ratio"] <= wanted, note)
            log(f"   target {scenario['name']}, {run_kind}: <= {wanted} x: {result['ratio']:.2f} {verdict}")


def print_copy(report):
    print_comparison("== 2. envelope.kms.copy vs ansible.builtin.copy: whole ansible-playbook runs, local connection "
                     "(median of the rounds, peers alternating)", "copy", report)


# ---------------------------------------------------------------------------------------------
# 3. KMS requests per deploy: the lifecycle role, 10 secrets, 1/5/20 hosts


def bench_role(server, host_counts):
    report = []
    for hosts in host_counts:
        server.reset()
        folder = os.path.join(WORK, f"role-{hosts}")
        remove(folder)
        os.makedirs(folder)
        # Pipelining saves a file transfer per module run; it changes no KMS request (the counts are
        # the point here, the wall time is information only).
        runner = PlaybookRunner(folder, dict(server.environment(), ANSIBLE_PIPELINING="1"))
        names = [f"host{index:02d}" for index in range(hosts)]
        runner.set_hosts(names)
        files = [{"content": f"secret number {index}\n" + "x" * 200, "dest": "{{ host_dir }}/secret-%d" % index}
                 for index in range(ROLE_SECRETS)]
        play = [{
            "name": "Bench the lifecycle role",
            "hosts": "targets",
            "gather_facts": False,
            "roles": [{"role": "envelope.kms.lifecycle", "vars": {
                "lifecycle_name": f"bench-{hosts}",
                "lifecycle_files": files,
                "lifecycle_cache_dir": os.path.join(folder, "cache"),
            }}],
        }]
        playbook = runner.write(json.dumps(play, indent=1), name="role.yml")
        entry = dict(hosts=hosts, secrets=ROLE_SECRETS, runs={}, error=None)
        for run_kind in ("first run", "re-run"):
            server.start_recording()
            try:
                run, elapsed = timed_run(runner, playbook)
            except RunFailed as failure:  # the bench goes on; the targets of this host count are MISS
                entry["error"] = dict(run=run_kind, kind=failure.kind, message=failure.line)
                log(f"   role with {hosts} host(s), {run_kind} failed: {failure.line}")
                break
            calls = server.kms_calls()
            changed = sum(stats["changed"] for stats in run.stats.values())
            deployed = sum(1 for name in names for index in range(ROLE_SECRETS)
                           if os.path.isfile(os.path.join(folder, "hosts", name, f"secret-{index}")))
            entry["runs"][run_kind] = dict(seconds=elapsed, changed=changed, files_on_hosts=deployed,
                                           kms_calls=dict(calls), kms_total=sum(calls.values()))
        report.append(entry)
        if not entry["error"]:
            log(f"   role with {hosts} host(s) done")
    return report


def print_role(report):
    log("")
    log(f"== 3. KMS requests per deploy: role envelope.kms.lifecycle, {ROLE_SECRETS} secrets (moto request recorder; "
        "wall time with pipelining, information only)")
    rows = []
    for entry in report:
        for run_kind, run in entry["runs"].items():
            calls = run["kms_calls"]
            rows.append([entry["hosts"], run_kind, calls.get("GenerateDataKey", 0), calls.get("Decrypt", 0),
                         calls.get("DescribeKey", 0), run["kms_total"], run["changed"],
                         f"{run['files_on_hosts']}/{entry['hosts'] * ROLE_SECRETS}", fmt(run["seconds"], 1)])
        if entry.get("error"):
            rows.append([entry["hosts"], entry["error"]["run"]] + ["-"] * 6 + [entry["error"]["kind"]])
    print_table(["hosts", "run", "GenerateDataKey", "Decrypt", "DescribeKey", "all KMS", "changed", "files on hosts",
                 "wall s"], rows)
    for entry in report:
        error = entry.get("error")
        if error:
            log(f"   {entry['hosts']} hosts: {error['kind']} in the {error['run']}: {error['message']}")
        for run_kind, wanted, holds in (("first run", f"<= {ROLE_SECRETS}", lambda count: count <= ROLE_SECRETS),
                                        ("re-run", "= 0", lambda count: count == 0)):
            run = entry["runs"].get(run_kind)
            if run is None:  # failed, or not reached after a failed first run
                verdict = target("role", f"{entry['hosts']} hosts, {run_kind}: GenerateDataKey", error["kind"],
                                 wanted.lstrip("= "), False, f"{error['run']}: {error['message']}")
                log(f"   target {entry['hosts']} hosts, {run_kind}: GenerateDataKey {wanted}: {error['kind']} {verdict}")
                continue
            count = run["kms_calls"].get("GenerateDataKey", 0)
            verdict = target("role", f"{entry['hosts']} hosts, {run_kind}: GenerateDataKey", count, wanted.lstrip("= "),
                             holds(count))
            log(f"   target {entry['hosts']} hosts, {run_kind}: GenerateDataKey {wanted}: {count} {verdict}")


# 3, second part: the role's time against a plain ansible.builtin.copy loop of the same files to the same hosts

ROLE_COMPARE_SECRETS = 3
ROLE_COMPARE_HOSTS = 3
ROLE_COMPARE_TARGET = 1.5  # the role <= 1.5 x the copy loop, first run and re-run
ROLE_PEERS = ("ansible.builtin.copy loop", "envelope.kms.lifecycle role")


def bench_role_vs_copy(server, ssh, rounds):
    """The lifecycle role with 3 secrets (src files) on 3 hosts, against an ansible.builtin.copy loop of the same
    3 plaintext files to the same hosts. Over the SSH tier's hosts with become and root-owned files as
    tests/integration/ssh/test_ssh_role.py does, when ``ssh`` (an SshServer) is given; else local-connection
    hosts as bench_role. Every round's first run has a name (so a key and a cache) of its own."""
    folder = os.path.join(WORK, "role-vs-copy")
    remove(folder)
    os.makedirs(folder)
    names = [f"web{index}" for index in range(1, ROLE_COMPARE_HOSTS + 1)]
    if ssh:
        runner = SshBenchRunner(folder, server.environment(), ssh)
    else:
        runner = PlaybookRunner(folder, dict(server.environment(), ANSIBLE_PIPELINING="1"))
    runner.set_hosts(names)
    roots = runner.roots if ssh else {name: os.path.join(folder, "hosts", name) for name in names}
    files_dir = os.path.join(folder, "files")
    os.makedirs(files_dir)
    secrets = [f"secret-{index}.env" for index in range(ROLE_COMPARE_SECRETS)]
    for index, secret in enumerate(secrets):
        with open(os.path.join(files_dir, secret), "w", encoding="utf-8") as handle:
            handle.write(f"SECRET_{index}={os.urandom(24).hex()}\n")
    base = "{{ host_root }}/root" if ssh else "{{ host_dir }}"
    ownership = {"owner": "root", "group": "root"} if ssh else {}
    slug = {peer: peer.split()[0].replace("ansible.builtin.", "") for peer in ROLE_PEERS}  # copy, envelope.kms...
    entries = [dict(src=secret, dest=f"{base}/{slug[ROLE_PEERS[1]]}/{secret}", mode="0640", **ownership)
               for secret in secrets]
    role_play = {"name": "Bench the lifecycle role", "hosts": "targets", "gather_facts": False,
                 "roles": [{"role": "envelope.kms.lifecycle", "vars": {"lifecycle_files": entries}}]}
    copy_play = {"name": "Bench a copy loop", "hosts": "targets", "gather_facts": False, "tasks": [{
        "name": "Copy", "ansible.builtin.copy": dict(src="{{ item }}", dest=f"{base}/{slug[ROLE_PEERS[0]]}/{{{{ item }}}}",
                                                     mode="0640", **ownership),
        "loop": secrets}]}
    if ssh:
        role_play["become"] = copy_play["become"] = True
    peers = {ROLE_PEERS[0]: runner.write(json.dumps([copy_play], indent=1), name="copy-loop.yml"),
             ROLE_PEERS[1]: runner.write(json.dumps([role_play], indent=1), name="role.yml")}

    def prepare(peer, round_index):
        for root in roots.values():
            path = os.path.join(root, "root", slug[peer]) if ssh else os.path.join(root, slug[peer])
            remove(path)
            os.makedirs(path)
        if peer == ROLE_PEERS[1]:  # a key of its own and an empty cache: a first deploy
            return {"lifecycle_name": f"bench-compare-{round_index + 1}",
                    "lifecycle_cache_dir": os.path.join(folder, f"cache-{round_index + 1}")}
        return None

    name = (f"{ROLE_COMPARE_SECRETS} secrets x {ROLE_COMPARE_HOSTS} hosts, "
            + ("ssh, become" if ssh else "local connection"))
    log(f"-- {name}")
    server.reset()
    entry = dict(name=name, kind="role", count=ROLE_COMPARE_SECRETS * ROLE_COMPARE_HOSTS, ssh=bool(ssh),
                 targets={"first run": ROLE_COMPARE_TARGET, "re-run": ROLE_COMPARE_TARGET})
    try:
        entry.update(compare(name, runner, peers, rounds, prepare, server, names))
    except Exception as error:  # pylint: disable=broad-exception-caught  # the bench goes on
        message = one_line(f"{type(error).__name__}: {error}")
        log(f"   {name}: {message}")
        entry.update(peers=list(ROLE_PEERS), rounds=0, rounds_planned=rounds, note="", results=[],
                     error=dict(peer="-", run="-", kind="error", message=message))
    return dict(loadavg_at_start=os.getloadavg(), scenarios=[entry])


def print_role_vs_copy(report):
    print_comparison(f"== 3b. The lifecycle role vs a plain ansible.builtin.copy loop of the same {ROLE_COMPARE_SECRETS} "
                     f"files to the same {ROLE_COMPARE_HOSTS} hosts, pipelining (wall s, median of the rounds, peers "
                     "alternating; KMS: the role's runs)", "role", report, peer_label="copy loop s", ours_label="role s",
                     ratio_label="role / ansible.builtin.copy loop")


# ---------------------------------------------------------------------------------------------
# 4. Where the time goes in one envelope.kms.copy call: cProfile of the action's run in the worker

# (label, file suffix, function): cumulative times, nested as the labels' indentation shows.
PROFILE_ROWS = (
    ("action run(), total", None, None),
    ("  options: argument spec validation", "plugin_utils/action.py", "load_options"),
    ("  engine set-up (boto3 session and client)", "plugin_utils/action.py", "engine"),
    ("  read the existing envelope back (size, bounded read)", "plugins/action/copy.py", "_fetch_existing"),
    ("    fetch_file (transfer host -> controller)", "connection/local.py", "fetch_file"),
    ("  resolve key ARN (DescribeKey)", "module_utils/_envelope/engine.py", "resolve_key_arns"),
    ("  compare with the plaintext (Decrypt + AES + compare)", "module_utils/_envelope/engine.py", "compare"),
    ("  encrypt (GenerateDataKey + AES + write)", "module_utils/_envelope/engine.py", "_encrypt_stream"),
    ("  KMS API calls, all (botocore)", "botocore/client.py", "_make_api_call"),
    ("  ansible.builtin.copy action (ours: _hand_over)", "ansible/plugins/action/copy.py", "run"),
    ("    checksum of the local source (sha1)", "ansible/utils/hashing.py", "secure_hash"),
    ("    module runs (_execute_module: stat, copy or file)", "ansible/plugins/action/__init__.py", "_execute_module"),
    ("    file transfer (put_file)", "connection/local.py", "put_file"),
    ("    low-level commands, all (mkdir/chmod/python/rm)", "ansible/plugins/action/__init__.py",
     "_low_level_execute_command"),
)


def profile_breakdown(paths, rows=PROFILE_ROWS):
    """Cumulative seconds and calls for each entry of ``rows`` (PROFILE_ROWS), summed over the profiles."""
    stats = pstats.Stats(*paths)
    breakdown = []
    for label, suffix, function in rows:
        if suffix is None:  # the profiled run() calls themselves
            breakdown.append(dict(label=label, seconds=stats.total_tt, calls=len(paths)))
            continue
        seconds = 0.0
        calls = 0
        for key, value in stats.stats.items():
            if key[2] == function and key[0].replace("\\", "/").endswith(suffix):
                seconds += value[3]  # cumulative
                calls += value[0]  # primitive calls
        breakdown.append(dict(label=label, seconds=seconds if calls else None, calls=calls))
    return breakdown


def top_functions(paths, count=12):
    stats = pstats.Stats(*paths).stats
    rows = sorted(stats.items(), key=lambda item: item[1][3], reverse=True)[:count]
    return [dict(function=f"{os.path.relpath(key[0], ROOT) if key[0].startswith(ROOT) else key[0]}:{key[1]}({key[2]})",
                 cumulative=value[3], own=value[2], calls=value[1]) for key, value in rows]


PROFILE_LOOP_ITEMS = 5


def bench_profile(server, key_arn, big_size, with_loop=False):
    """One task per playbook, profiled in the worker by bench/action_plugins/bench_profiled.py:
    a small file, a big file and, ``with_loop``, small files in a loop (one profile per item, summed)."""
    folder = os.path.join(WORK, "profile")
    remove(folder)
    os.makedirs(folder)
    environment = dict(server.environment(), ANSIBLE_ACTION_PLUGINS=ACTION_PLUGINS)
    runner = PlaybookRunner(folder, environment)
    host_dir = os.path.join(folder, "hosts", "localhost")
    small_dir = os.path.join(WORK, "copy-src", "small")
    for index in range(PROFILE_LOOP_ITEMS):
        make_random_file(os.path.join(small_dir, f"f{index}"), SMALL_FILE_SIZE)
    big = make_random_file(os.path.join(WORK, "copy-src", f"big-{big_size}"), big_size)
    cases = [
        (f"one {human_size(SMALL_FILE_SIZE)} file", os.path.join(small_dir, "f0"), None),
        (f"one {human_size(big_size)} file", big, None),
    ]
    if with_loop:
        cases.append((f"{PROFILE_LOOP_ITEMS} files of {human_size(SMALL_FILE_SIZE)} in a loop",
                      small_dir + "/f{{ item }}", "{{ range(%d) | list }}" % PROFILE_LOOP_ITEMS))
    report = []
    for case, source, loop in cases:
        for action in ("envelope.kms.copy", "ansible.builtin.copy"):
            dest_dir = os.path.join(host_dir, f"{action}-{len(report)}")
            os.makedirs(dest_dir)
            args = {"src": source, "dest": f"{dest_dir}/{os.path.basename(source)}", "mode": "0600"}
            if action == "envelope.kms.copy":
                args["key_id"] = key_arn
            task = {"name": "Copy", "bench_profiled": args}
            if loop:
                task["loop"] = loop
            for run_kind in ("first run", "re-run"):
                profiles = os.path.join(folder, "profiles", f"{action}-{len(report)}")
                play = [{"name": "Profile", "hosts": "targets", "gather_facts": False,
                         "vars": {"bench_wrapped_action": action, "bench_profile_dir": profiles},
                         "tasks": [task]}]
                playbook = runner.write(json.dumps(play, indent=1))
                os.sync()  # as in EngineBench.worker
                started = time.perf_counter()
                run = runner.run(playbook)
                wall = time.perf_counter() - started
                run.assert_ok()
                records = []
                for record_path in sorted(glob.glob(os.path.join(profiles, "*.json"))):
                    with open(record_path, encoding="utf-8") as handle:
                        records.append(dict(json.load(handle), stem=record_path[:-len(".json")]))
                run_profiles = [record["stem"] + ".run.prof" for record in records]
                load_profiles = [record["stem"] + ".load.prof" for record in records]
                report.append(dict(case=case, action=action, run=run_kind, items=len(records),
                                   changed=run.changed("localhost"), playbook_seconds=wall,
                                   load_seconds=sum(record["load_seconds"] for record in records),
                                   run_seconds=sum(record["run_seconds"] for record in records),
                                   breakdown=profile_breakdown(run_profiles), top=top_functions(run_profiles),
                                   load_top=top_functions(load_profiles, 5), run_profiles=run_profiles,
                                   load_profiles=load_profiles))
    return report


def print_profile(report):
    log("")
    log("== 4. Where the time goes in a copy task (cProfile of the action in the worker process; cumulative s, "
        "summed over loop items; indented rows are part of the row above; profiling inflates Python-heavy parts)")
    for case in dict.fromkeys(entry["case"] for entry in report):
        entries = [entry for entry in report if entry["case"] == case]
        log("")
        log(f"-- {case}")
        header = ["part"] + [f"{'ours' if entry['action'] == 'envelope.kms.copy' else 'builtin'} {entry['run']}"
                             for entry in entries]
        rows = [["ansible-playbook wall (whole run)"] + [fmt(entry["playbook_seconds"]) for entry in entries],
                ["load the action plugin (imports)"] + [fmt(entry["load_seconds"]) for entry in entries]]
        for index, profile_row in enumerate(PROFILE_ROWS):
            cells = []
            for entry in entries:
                part = entry["breakdown"][index]
                cells.append("-" if part["seconds"] is None else f"{part['seconds']:.3f}"
                             + (f" ({part['calls']}x)" if part["calls"] > 1 else ""))
            rows.append([profile_row[0]] + cells)
        print_table(header, rows)


# ---------------------------------------------------------------------------------------------
# 5. Envelope vars files vs the same vars as plain and ansible-vault files (bench/vars_bench.py)

VARS_SIZES = (1, 10, 100)  # files of vars_bench.VALUES_PER_FILE values each
VARS_SIZES_SMOKE = (1, 10)
VARS_HOSTS_SMOKE = 2
VARS_TARGET_FILES = 10
VARS_TARGET_RATIO = 1.5  # envelope <= 1.5 x ansible-vault whole-file at VARS_TARGET_FILES files

# Rows of the "why" table: cProfile of ansible-playbook's main process (as PROFILE_ROWS).
VARS_PROFILE_ROWS = (
    ("ansible-playbook main process, total", None, None),
    ("  import the envelope.kms.vars plugin (boto3, aws-encryption-sdk, amazon.aws)", "plugins/vars/vars.py",
     "<module>"),
    ("  vars plugins, all calls", "ansible/vars/plugins.py", "get_plugin_vars"),
    ("    ansible.builtin.host_group_vars", "ansible/plugins/vars/host_group_vars.py", "get_vars"),
    ("      ansible-vault decrypt (PBKDF2 + AES)", "ansible/parsing/vault/__init__.py", "decrypt_and_get_vault_id"),
    ("    envelope.kms.vars", "plugins/vars/vars.py", "get_vars"),
    ("      load a file (vars_loader.load; cache hits included)", "plugin_utils/vars_loader.py", "load"),
    ("        read the whole file (to hash it)", "plugin_utils/vars_loader.py", "read_file"),
    ("        engine set-up (boto3 client)", "plugin_utils/vars_loader.py", "engine_for"),
    ("        decrypt a file (vars_file.decrypt_tree)", "module_utils/vars_file.py", "decrypt_tree"),
    ("          one value (Engine.decrypt_message)", "module_utils/_envelope/engine.py", "decrypt_message"),
    ("          KMS API calls (botocore)", "botocore/client.py", "_make_api_call"),
    ("  wait for the workers (strategy)", "ansible/plugins/strategy/__init__.py", "_wait_on_pending_results"),
)


def bench_vars(server, kms, rounds, smoke, big):
    import vars_bench  # pylint: disable=import-outside-toplevel  # bench/, this script's folder

    key_arn = kms.create_key(Description="make bench: vars files")["KeyMetadata"]["Arn"]
    folder = os.path.join(WORK, "vars")
    remove(folder)
    bench = vars_bench.VarsBench(folder, server, kms, key_arn, rounds,
                                 hosts=VARS_HOSTS_SMOKE if smoke else vars_bench.HOSTS, big=big)
    sizes = VARS_SIZES_SMOKE if smoke else VARS_SIZES
    report = bench.run(sizes, log)
    report["rounds"] = bench.rounds
    report["variants"] = dict(vars_bench.VARIANTS)
    profile_files = VARS_TARGET_FILES if VARS_TARGET_FILES in sizes else sizes[-1]
    paths = bench.profile(profile_files)
    report["profile"] = dict(files=profile_files, paths=paths,
                             breakdown={variant: profile_breakdown([path], VARS_PROFILE_ROWS)
                                        for variant, path in paths.items()},
                             top={variant: top_functions([path]) for variant, path in paths.items()})
    return report


def _kms_cell(runs, action):
    """The count of ``action`` in each recorded run: '3' when every run made 3, else '3,4,3'."""
    counts = [run.get(action, 0) for run in runs]
    return str(counts[0]) if len(set(counts)) == 1 else ",".join(str(count) for count in counts)


def _other_kms(runs):
    other = collections.Counter()
    for run in runs:
        other.update({action: count for action, count in run.items() if action != "Decrypt"})
    return ", ".join(f"{action} {count}" for action, count in sorted(other.items())) or "0"


def print_vars(report):
    log("")
    log(f"== 5. Envelope vars files vs the same vars as plain and ansible-vault files: ansible-playbook over "
        f"{report['hosts']} hosts (-f {report['forks']}), one assert using every value; {report['values_per_file']} "
        "values per file (wall s, median of the rounds, variants alternating)")
    for block in report["sizes"]:
        files = block["files"]
        by_variant = {row["variant"]: row for row in block["results"]}
        ours = by_variant["envelope"]["median_seconds"]
        plain = by_variant["plain"]["median_seconds"]
        rows = []
        for row in block["results"]:
            runs = row["kms_calls"]
            rows.append([row["label"], row["rounds"], fmt(row["median_seconds"]), fmt(row["median_seconds"] / plain),
                         fmt(ours / row["median_seconds"]),
                         _kms_cell(runs, "Decrypt") if runs is not None else "-",
                         _other_kms(runs) if runs is not None else "-"])
        log("")
        log(f"-- {files} file(s), {block['values']} values (load average at start {block['loadavg_at_start'][0]:.1f})")
        print_table(["variant", "rounds", "median s", "x plain", "envelope / this", "KMS Decrypt", "other KMS"], rows)
        envelope_runs = by_variant["envelope"]["kms_calls"]
        decrypts = [run.get("Decrypt", 0) for run in envelope_runs]
        ok = bool(decrypts) and all(count == files for count in decrypts)
        verdict = target("vars", f"{files} file(s): KMS Decrypt per run", _kms_cell(envelope_runs, "Decrypt"),
                         f"= {files}", ok,
                         f"every run ({len(decrypts)}); other KMS requests: {_other_kms(envelope_runs)}")
        log(f"   target {files} file(s): KMS Decrypt = {files} in every run: {_kms_cell(envelope_runs, 'Decrypt')} "
            f"{verdict}")
        vault = by_variant["vault_file"]["median_seconds"]
        ratio = ours / vault
        note = (f"envelope {ours:.2f} s, ansible-vault whole file {vault:.2f} s; envelope / inline !vault "
                f"{ours / by_variant['vault_inline']['median_seconds']:.2f}; envelope / plain {ours / plain:.2f}")
        if files == VARS_TARGET_FILES:
            verdict = target("vars", f"{files} files: envelope / ansible-vault whole file", ratio,
                             f"<= {VARS_TARGET_RATIO}", ratio <= VARS_TARGET_RATIO, note)
            log(f"   target {files} files: envelope <= {VARS_TARGET_RATIO} x ansible-vault whole file: {ratio:.2f} "
                f"{verdict} ({note})")
        else:
            log(f"   envelope / ansible-vault whole file: {ratio:.2f} (information; {note})")
        plugin = by_variant["plain_plugin"]["median_seconds"]
        extra = ours - plugin
        log(f"   the envelope.kms.vars plugin enabled with no envelope file costs {plugin - plain:+.2f} s over plain "
            f"files (importing it); the envelope files {extra:+.2f} s over that ({extra / files * 1000:+.0f} ms per "
            "file, the engine set-up once per run included)")
    profile = report.get("profile")
    if profile:
        log("")
        log(f"-- why: cProfile of ansible-playbook's main process at {profile['files']} files (one run each; "
            "cumulative s, (Nx) = calls; indented rows are part of the row above; profiling inflates Python-heavy "
            "parts; forked workers are not profiled)")
        variants = list(profile["breakdown"])
        rows = []
        for index, profile_row in enumerate(VARS_PROFILE_ROWS):
            cells = []
            for variant in variants:
                part = profile["breakdown"][variant][index]
                cells.append("-" if part["seconds"] is None else f"{part['seconds']:.3f}"
                             + (f" ({part['calls']}x)" if part["calls"] > 1 else ""))
            rows.append([profile_row[0]] + cells)
        print_table(["part"] + [report["variants"][variant] for variant in variants], rows)


# ---------------------------------------------------------------------------------------------
# 6. envelope.kms.copy vs ansible.builtin.copy over ssh: the SSH tier's sshd (tests/harness/ssh_hosts.py)

SSH_HOST_PYTHON = "/usr/bin/python3"  # Debian's; envelope.kms.copy needs no library on the host
SSH_BIG = 256 * MIB  # with --big too: the 1 GiB copy is section 2's
SSH_BIG_BUDGET = 240  # s: no further round of the big file once a round took longer
# ansible's default ssh_args, with master connections kept for the whole run (not 60 s): no run pays
# for connecting because the one before it was long
SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=30m"


def ssh_unavailable():
    """Why the SSH tier's hosts cannot be used here, or None."""
    missing = missing_tools()
    if missing:
        return f"the SSH tier needs {', '.join(missing)} (make system, as root)"
    if os.geteuid() != 0:
        return "the SSH tier creates its users and becomes them: run as root"
    return None


class SshBenchRunner(PlaybookRunner):
    """PlaybookRunner whose hosts are the sshd's, each with its own folder ({{ host_root }}; ``roots``), hosts on
    Debian's python3, pipelining on: the SSH tier's SshRunner (tests/integration/ssh/conftest.py)."""

    def __init__(self, workdir, environment, ssh):
        self.ssh = ssh
        self.roots = {}
        super().__init__(workdir, environment)

    def set_hosts(self, hosts):
        if hosts == ["localhost"]:  # PlaybookRunner's default
            return
        folders = [f"{os.path.basename(self.workdir)}-{host}" for host in hosts]
        self.ssh.make_hosts(folders)
        with open(self.inventory, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.ssh.inventory_lines(hosts, SSH_HOST_PYTHON, folders=folders)) + "\n")
        self.roots = {host: self.ssh.host_root(folder) for host, folder in zip(hosts, folders)}

    def env(self):
        env = super().env()
        env.pop("ANSIBLE_REMOTE_TEMP")  # the inventory's ansible_remote_tmp: a folder every user reaches
        env.update({"ANSIBLE_PIPELINING": "1", "ANSIBLE_HOST_KEY_CHECKING": "0", "ANSIBLE_SSH_ARGS": SSH_ARGS,
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": self.ssh.control_dir})
        return env


def bench_ssh(server, key_arn, ssh, rounds, smoke, big):
    """Section 6: CopyBench on one host of the sshd: the loop, the big file with become, the directory."""
    def runner(folder):
        made = SshBenchRunner(folder, server.environment(), ssh)
        made.set_hosts(["h1"])
        return made

    bench = CopyBench(server, key_arn, rounds, name="ssh", runner=runner, host="h1", owner=ssh.login_user)
    # one untimed run opens the master connection
    timed_run(bench.runner, bench.runner.write(json.dumps([{"name": "Warm up", "hosts": "targets",
                                                            "gather_facts": False,
                                                            "tasks": [{"ansible.builtin.ping": {}}]}]),
                                               name="warm-up.yml"))
    bench.loop(5 if smoke else 200 if big else 50, rounds or 1, {"first run": 1.05, "re-run": 0.8})
    bench.big(8 * MIB if smoke else SSH_BIG, rounds or 3, {"re-run": 1.0}, become=True, budget=SSH_BIG_BUDGET)
    bench.directory(DIR_FILES_SMOKE if smoke else DIR_FILES, rounds or 1, {"first run": 1.0, "re-run": 1.0})
    bench.report["login_user"] = ssh.login_user
    bench.report["host_python"] = SSH_HOST_PYTHON
    return bench.report


def print_ssh(report):
    print_comparison("== 6. envelope.kms.copy vs ansible.builtin.copy over ssh: the SSH tier's sshd on 127.0.0.1, one "
                     f"host, login {report['login_user']}, pipelining, hosts on {report['host_python']} (median of "
                     "the rounds, peers alternating)", "ssh", report)


# ---------------------------------------------------------------------------------------------


def summary():
    log("")
    log("== Targets")
    rows = [[entry["section"], entry["name"], fmt(entry["value"]) if isinstance(entry["value"], float)
             else entry["value"], entry["target"], "ok" if entry["ok"] else "MISS", entry["note"]] for entry in TARGETS]
    print_table(["section", "measure", "value", "target", "verdict", "note"], rows)
    held = sum(1 for entry in TARGETS if entry["ok"])
    log(f"{held}/{len(TARGETS)} targets hold")


def code_state():
    """The commit and the changed files of the code under test (read-only git), to tell whether it changed
    during the run: the collection is a link to this checkout, edited by others meanwhile."""
    def git(*args):
        completed = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return completed.stdout.strip() if completed.returncode == 0 else None

    status = git("status", "--porcelain", "--", "plugins", "roles")
    digest = git("diff", "HEAD", "--", "plugins", "roles")
    return dict(commit=git("rev-parse", "HEAD"), changed=status.splitlines() if status else [],
                diff_sha256=hashlib.sha256((digest or "").encode()).hexdigest())


def start_ssh(stack, sections):
    """(SshServer started in ``stack``, None) or (None, why not) for the ssh section and the role comparison."""
    if "ssh" not in sections and "role" not in sections:
        return None, "not needed"
    reason = ssh_unavailable()
    if reason:
        return None, reason
    try:
        return stack.enter_context(SshServer()), None
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        return None, f"sshd did not start: {one_line(str(error))}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true",
                        help="add 1 GiB to the engine sizes; 1 GiB copy; 200 small files (local and ssh loops); the role "
                             "with 20 hosts; vars: inline !vault at 100 files in every round")
    parser.add_argument("--only", default="engine,copy,role,profile,vars,ssh",
                        help="comma-separated sections: engine, copy, role, profile, vars, ssh")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and one round: checks that the bench works (a few minutes), measures nothing")
    parser.add_argument("--rounds", type=int, default=0,
                        help="rounds per measurement (default: engine 3; copy 3 big, 1 loop, 1 directory; ssh 1 loop, "
                             "3 big (fewer when a round takes over 240 s), 1 directory; role vs copy loop 3; vars 3, "
                             "inline !vault at 100 files 1)")
    parser.add_argument("--output", default=os.path.join(BUILD, "results.json"))
    args = parser.parse_args(argv)
    sections = [section.strip() for section in args.only.split(",") if section.strip()]
    if args.smoke:
        args.rounds = 1
    started = time.perf_counter()
    os.makedirs(WORK, exist_ok=True)

    cli_python = ensure_cli_venv() if "engine" in sections else None
    results = dict(
        started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        options=dict(big=args.big, sections=sections, rounds=args.rounds or None),
        machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                     loadavg_at_start=os.getloadavg()),
        versions=package_versions(PYTHON, ["ansible-core", "aws-encryption-sdk", "cryptography", "boto3", "moto"]),
        code_at_start=code_state(),
    )
    if cli_python:
        results["versions"]["cli_venv"] = package_versions(
            cli_python, ["aws-encryption-sdk-cli", "aws-encryption-sdk", "cryptography"])
    log(f"make bench: sections {', '.join(sections)}{' (big sizes)' if args.big else ''}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    with KmsServer() as server, contextlib.ExitStack() as stack:
        import boto3  # pylint: disable=import-outside-toplevel

        kms = boto3.client("kms", endpoint_url=server.url, region_name=REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        key_arn = kms.create_key(Description="make bench")["KeyMetadata"]["Arn"]
        ssh, ssh_reason = start_ssh(stack, sections)

        section_seconds = results["section_seconds"] = {}
        if "engine" in sections:
            sizes = [1 * MIB] if args.smoke else [1 * MIB, 64 * MIB] + ([1 * GIB] if args.big else [])
            log(f"\n1. engine: {', '.join(human_size(size) for size in sizes)}")
            section_started = time.perf_counter()
            results["engine"] = EngineBench(server, key_arn, cli_python, args.rounds, args.big).run(
                sizes, 4 * MIB if args.smoke else 64 * MIB)
            section_seconds["engine"] = time.perf_counter() - section_started
            print_engine(results["engine"])
        big_size = 8 * MIB if args.smoke else 1 * GIB if args.big else 256 * MIB  # copy and profile
        if "copy" in sections:
            small_count = 5 if args.smoke else 200 if args.big else 50
            log("\n2. copy")
            section_started = time.perf_counter()
            results["copy"] = CopyBench(server, key_arn, args.rounds).run(
                big_size, small_count, DIR_FILES_SMOKE if args.smoke else DIR_FILES)
            section_seconds["copy"] = time.perf_counter() - section_started
            print_copy(results["copy"])
        if "role" in sections:
            log("\n3. role")
            section_started = time.perf_counter()
            results["role"] = bench_role(server, (1, 2) if args.smoke else ROLE_HOSTS_BIG if args.big else ROLE_HOSTS)
            print_role(results["role"])
            if not ssh:
                log(f"   the role vs a copy loop runs on local-connection hosts: {ssh_reason}")
            results["role_vs_copy"] = bench_role_vs_copy(server, ssh, args.rounds or 3)
            section_seconds["role"] = time.perf_counter() - section_started
            print_role_vs_copy(results["role_vs_copy"])
            server.reset()
            key_arn = kms.create_key(Description="make bench")["KeyMetadata"]["Arn"]
        if "profile" in sections:
            log("\n4. profile")
            section_started = time.perf_counter()
            results["profile"] = bench_profile(server, key_arn, big_size, with_loop=args.big)
            section_seconds["profile"] = time.perf_counter() - section_started
            print_profile(results["profile"])
        if "vars" in sections:
            vars_sizes = VARS_SIZES_SMOKE if args.smoke else VARS_SIZES
            log(f"\n5. vars files: {', '.join(str(files) for files in vars_sizes)} file(s)")
            section_started = time.perf_counter()
            results["vars"] = bench_vars(server, kms, args.rounds, args.smoke, args.big)
            section_seconds["vars"] = time.perf_counter() - section_started
            print_vars(results["vars"])
        if "ssh" in sections:
            log("\n6. ssh")
            section_started = time.perf_counter()
            try:
                if not ssh:
                    raise RunFailed(ssh_reason)
                results["ssh"] = bench_ssh(server, key_arn, ssh, args.rounds, args.smoke, args.big)
            except RunFailed as failure:  # the tier cannot run here: one line, nothing recorded
                log(f"== 6. ssh: skipped: {failure.line}")
            else:
                print_ssh(results["ssh"])
            section_seconds["ssh"] = time.perf_counter() - section_started

    summary()
    results["targets"] = TARGETS
    results["elapsed_seconds"] = time.perf_counter() - started
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["code_at_end"] = code_state()
    if results["code_at_end"] != results["code_at_start"]:
        log(f"NOTE: the code under test (plugins/, roles/) changed during the run: {results['code_at_start']['changed']} "
            f"-> {results['code_at_end']['changed']}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1, default=str)
    log(f"\nresults: {args.output} ({results['elapsed_seconds'] / 60:.1f} min: "
        + ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in results.get("section_seconds", {}).items())
        + f"; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
