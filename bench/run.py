"""make bench: the engine, the copy action, the role's KMS cost and envelope vars files, against peers in one run.

Everything is a ratio against a peer measured on the same machine in the same run (the machine is
shared and noisy), from the median of several rounds in which peers and ours alternate. One-off
set-up (the moto server, keys, plaintext files, the aws-encryption-cli venv) stays out of the timed
parts. Prints a table per section and a summary of the targets, and writes every number to
.build/bench/results.json. bench/README.md explains each measurement and how to read the table.

Usage: python bench/run.py [--big | --smoke] [--only engine,copy,role,profile,vars] [--rounds N] [--output PATH]
"""

import argparse
import collections
import datetime
import filecmp
import glob
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
from tests.harness.playbook import COLLECTIONS_PATH, PlaybookRunner  # noqa: E402  pylint: disable=wrong-import-position

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
        report["analysis"] = self.analysis(sweep_plain, sweep_size)
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
# 2. envelope.kms.copy vs ansible.builtin.copy, whole ansible-playbook runs, local connection


class CopyBench:

    def __init__(self, server, key_arn, rounds):
        self.server = server
        self.key_arn = key_arn
        self.rounds = rounds  # 0: 3 for the big file, 1 for the small files
        self.folder = os.path.join(WORK, "copy")
        remove(self.folder)
        os.makedirs(self.folder)
        self.runner = PlaybookRunner(self.folder, server.environment())

    def playbook(self, name, module, args, loop=None):
        task = {"name": "Copy", module: dict(args)}
        if module == "envelope.kms.copy":
            task[module]["key_id"] = "{{ bench_key_arn }}"
        if loop is not None:
            task["loop"] = loop
        play = [{"name": "Bench", "hosts": "targets", "gather_facts": False, "tasks": [task]}]
        return self.runner.write(json.dumps(play, indent=1), name=name)

    def timed(self, playbook, expect_changed, record_kms):
        if record_kms:
            self.server.start_recording()
        os.sync()  # as in EngineBench.worker
        started = time.perf_counter()
        run = self.runner.run(playbook, extra_vars={"bench_key_arn": self.key_arn})
        elapsed = time.perf_counter() - started
        run.assert_ok()
        changed = run.changed("localhost")
        if bool(changed) != expect_changed:
            raise RuntimeError(f"{playbook}: changed={changed}, expected {'some' if expect_changed else 'none'}")
        calls = dict(self.server.kms_calls()) if record_kms else {}
        return elapsed, calls

    def scenario(self, label, rounds, make_playbook, dest_dir):
        """Each round: for each peer (order alternating), a first run into an empty dest folder, then
        an idempotent re-run."""
        peers = {peer: make_playbook(peer) for peer in ("ansible.builtin.copy", "envelope.kms.copy")}
        times = collections.defaultdict(list)
        kms = {}
        for round_index in range(rounds):
            order = list(peers) if round_index % 2 == 0 else list(reversed(list(peers)))
            for peer in order:
                folder = dest_dir(peer)
                remove(folder)
                os.makedirs(folder)
                ours = peer == "envelope.kms.copy"
                first, first_calls = self.timed(peers[peer], True, ours)
                again, again_calls = self.timed(peers[peer], False, ours)
                times[(peer, "first run")].append(first)
                times[(peer, "re-run")].append(again)
                if ours:
                    kms = {"first run": first_calls, "re-run": again_calls}
            log(f"   {label}: round {round_index + 1}/{rounds} done "
                f"(load average {os.getloadavg()[0]:.1f})")
        results = []
        for run_kind in ("first run", "re-run"):
            builtin = median(times[("ansible.builtin.copy", run_kind)])
            ours = median(times[("envelope.kms.copy", run_kind)])
            results.append(dict(run=run_kind, builtin_median_seconds=builtin, envelope_median_seconds=ours,
                                ratio=ours / builtin, kms_calls=kms.get(run_kind, {}),
                                builtin_samples=times[("ansible.builtin.copy", run_kind)],
                                envelope_samples=times[("envelope.kms.copy", run_kind)]))
        for peer in peers:
            remove(dest_dir(peer))
        return results

    def run(self, big_size, small_count):
        host_dir = os.path.join(self.folder, "hosts", "localhost")
        report = dict(loadavg_at_start=os.getloadavg(), scenarios=[])

        big = make_random_file(os.path.join(WORK, "copy-src", f"big-{big_size}"), big_size)
        label = f"one {human_size(big_size)} file"
        log(f"-- {label}")
        rounds = self.rounds or 3
        results = self.scenario(
            label, rounds,
            lambda peer: self.playbook(f"big-{peer}.yml", peer,
                                       {"src": big, "dest": f"{host_dir}/{peer}/big", "mode": "0600"}),
            lambda peer: os.path.join(host_dir, peer),
        )
        report["scenarios"].append(dict(name=label, kind="big", size=big_size, count=1, rounds=rounds,
                                        results=results))

        sources = os.path.join(WORK, "copy-src", "small")
        for index in range(small_count):
            make_random_file(os.path.join(sources, f"f{index}"), SMALL_FILE_SIZE)
        label = f"{small_count} files of {human_size(SMALL_FILE_SIZE)} in a loop"
        log(f"-- {label}")
        rounds = self.rounds or 1  # each run already sums 50 (200) loop items
        results = self.scenario(
            label, rounds,
            lambda peer: self.playbook(f"small-{peer}.yml", peer,
                                       {"src": sources + "/f{{ item }}", "dest": f"{host_dir}/{peer}/f{{{{ item }}}}",
                                        "mode": "0600"},
                                       loop="{{ range(%d) | list }}" % small_count),
            lambda peer: os.path.join(host_dir, peer),
        )
        report["scenarios"].append(dict(name=label, kind="small", size=SMALL_FILE_SIZE, count=small_count,
                                        rounds=rounds, results=results))
        return report


def print_copy(report):
    log("")
    log("== 2. envelope.kms.copy vs ansible.builtin.copy: whole ansible-playbook runs, local connection "
        "(median of the rounds, peers alternating)")
    rows = []
    for scenario in report["scenarios"]:
        for result in scenario["results"]:
            calls = result["kms_calls"]
            extra = (result["envelope_median_seconds"] - result["builtin_median_seconds"]) / scenario["count"]
            rows.append([scenario["name"], result["run"], scenario["rounds"], fmt(result["builtin_median_seconds"]),
                         fmt(result["envelope_median_seconds"]), fmt(result["ratio"]),
                         f"{extra:+.2f}" + (" /file" if scenario["count"] > 1 else ""),
                         calls.get("GenerateDataKey", 0), calls.get("Decrypt", 0), calls.get("DescribeKey", 0)])
    print_table(["scenario", "run", "rounds", "builtin copy s", "envelope.kms.copy s", "ratio", "extra s",
                 "GenerateDataKey", "Decrypt", "DescribeKey"], rows)
    for scenario in report["scenarios"]:
        wanted = 1.3 if scenario["kind"] == "big" else 1.15
        for result in scenario["results"]:
            verdict = target("copy", f"{scenario['name']}, {result['run']}: envelope.kms.copy / ansible.builtin.copy",
                             result["ratio"], f"<= {wanted}", result["ratio"] <= wanted)
            log(f"   target {scenario['name']}, {result['run']}: <= {wanted} x builtin copy: "
                f"{result['ratio']:.2f} {verdict}")


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
        entry = dict(hosts=hosts, secrets=ROLE_SECRETS, runs={})
        for run_kind in ("first run", "re-run"):
            server.start_recording()
            started = time.perf_counter()
            run = runner.run(playbook)
            elapsed = time.perf_counter() - started
            run.assert_ok()
            calls = server.kms_calls()
            changed = sum(stats["changed"] for stats in run.stats.values())
            deployed = sum(1 for name in names for index in range(ROLE_SECRETS)
                           if os.path.isfile(os.path.join(folder, "hosts", name, f"secret-{index}")))
            entry["runs"][run_kind] = dict(seconds=elapsed, changed=changed, files_on_hosts=deployed,
                                           kms_calls=dict(calls), kms_total=sum(calls.values()))
        report.append(entry)
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
    print_table(["hosts", "run", "GenerateDataKey", "Decrypt", "DescribeKey", "all KMS", "changed", "files on hosts",
                 "wall s"], rows)
    for entry in report:
        first = entry["runs"]["first run"]["kms_calls"].get("GenerateDataKey", 0)
        again = entry["runs"]["re-run"]["kms_calls"].get("GenerateDataKey", 0)
        verdict = target("role", f"{entry['hosts']} hosts, first run: GenerateDataKey", first,
                         f"<= {ROLE_SECRETS}", first <= ROLE_SECRETS)
        log(f"   target {entry['hosts']} hosts, first run: GenerateDataKey <= {ROLE_SECRETS}: {first} {verdict}")
        verdict = target("role", f"{entry['hosts']} hosts, re-run: GenerateDataKey", again, "0", again == 0)
        log(f"   target {entry['hosts']} hosts, re-run: GenerateDataKey = 0: {again} {verdict}")


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


def summary():
    log("")
    log("== Targets")
    rows = [[entry["section"], entry["name"], fmt(entry["value"]) if isinstance(entry["value"], float)
             else entry["value"], entry["target"], "ok" if entry["ok"] else "MISS", entry["note"]] for entry in TARGETS]
    print_table(["section", "measure", "value", "target", "verdict", "note"], rows)
    held = sum(1 for entry in TARGETS if entry["ok"])
    log(f"{held}/{len(TARGETS)} targets hold")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true",
                        help="add 1 GiB to the engine sizes; 1 GiB copy; 200 small files; the role with 20 hosts; "
                             "vars: inline !vault at 100 files in every round")
    parser.add_argument("--only", default="engine,copy,role,profile,vars",
                        help="comma-separated sections: engine, copy, role, profile, vars")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and one round: checks that the bench works (a few minutes), measures nothing")
    parser.add_argument("--rounds", type=int, default=0,
                        help="rounds per measurement (default: engine 3; copy 3 big, 1 small; vars 3, inline !vault at "
                             "100 files 1)")
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
    )
    if cli_python:
        results["versions"]["cli_venv"] = package_versions(
            cli_python, ["aws-encryption-sdk-cli", "aws-encryption-sdk", "cryptography"])
    log(f"make bench: sections {', '.join(sections)}{' (big sizes)' if args.big else ''}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    with KmsServer() as server:
        import boto3  # pylint: disable=import-outside-toplevel

        kms = boto3.client("kms", endpoint_url=server.url, region_name=REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        key_arn = kms.create_key(Description="make bench")["KeyMetadata"]["Arn"]

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
            results["copy"] = CopyBench(server, key_arn, args.rounds).run(big_size, small_count)
            section_seconds["copy"] = time.perf_counter() - section_started
            print_copy(results["copy"])
        if "role" in sections:
            log("\n3. role")
            section_started = time.perf_counter()
            results["role"] = bench_role(server, (1, 2) if args.smoke else ROLE_HOSTS_BIG if args.big else ROLE_HOSTS)
            section_seconds["role"] = time.perf_counter() - section_started
            print_role(results["role"])
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

    summary()
    results["targets"] = TARGETS
    results["elapsed_seconds"] = time.perf_counter() - started
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1, default=str)
    log(f"\nresults: {args.output} ({results['elapsed_seconds'] / 60:.1f} min: "
        + ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in results.get("section_seconds", {}).items())
        + f"; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
