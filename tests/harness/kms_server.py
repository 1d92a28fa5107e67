"""A local KMS endpoint for tests, the demo and benchmarks: a real moto server on a free port.

Used as a library (``KmsServer``) by the pytest fixtures, and as a command by the Makefile:
``kms_server.py run -- CMD...`` starts the server, runs CMD with AWS_ENDPOINT_URL and dummy
credentials pointing at it, stops the server and exits with CMD's status.
"""

import collections
import json
import os
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

REGION = "us-east-1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process, timeout=10):
    """Terminate a server process started here (a Popen, or None), killing it if it lingers."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class KmsServer:
    """A moto server process bound to 127.0.0.1 with request recording available."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = None
        self._workdir = None

    def start(self, timeout=30):
        # moto's request recorder writes its file into the server's working directory.
        self._workdir = tempfile.mkdtemp(prefix="kms-server-")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not listen on {self.url} within {timeout}s")

    def stop(self):
        stop_process(self._process)
        self._process = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def environment(self):
        """Variables that point botocore (modules, plugins, AWS CLI) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def _post(self, path, body=b""):
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def reset(self):
        """Forget every key, alias and recorded request."""
        self._post("/moto-api/reset")
        self._post("/moto-api/recorder/stop-recording")
        self._post("/moto-api/recorder/reset-recording")

    def start_recording(self):
        self._post("/moto-api/recorder/reset-recording")
        self._post("/moto-api/recorder/start-recording")

    def kms_calls(self):
        """Counter of KMS actions (e.g. 'GenerateDataKey') recorded since start_recording()."""
        with urllib.request.urlopen(self.url + "/moto-api/recorder/download-recording", timeout=30) as response:
            lines = response.read().decode().splitlines()
        calls = collections.Counter()
        for line in lines:
            if not line.strip():
                continue
            target = (json.loads(line).get("headers") or {}).get("X-Amz-Target", "")
            if target.startswith("TrentService."):
                calls[target.split(".", 1)[1]] += 1
        return calls


def main(argv):
    if len(argv) < 3 or argv[0] != "run" or argv[1] != "--":
        sys.exit("usage: kms_server.py run -- COMMAND [ARGS...]")
    with KmsServer() as server:
        print(f"local KMS endpoint (moto server) on {server.url}", flush=True)
        env = dict(os.environ, **server.environment())
        sys.exit(subprocess.call(argv[2:], env=env))


if __name__ == "__main__":
    main(sys.argv[1:])
