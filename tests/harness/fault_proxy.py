"""A fault-injecting HTTP proxy in front of the local KMS endpoint (the moto server).

Point a client (boto3, a module through AWS_ENDPOINT_URL / endpoint_url) at ``proxy.url``: every
request is forwarded to the upstream endpoint unchanged, except calls of the chosen KMS operations
(by their ``X-Amz-Target``, e.g. ``TrentService.GenerateDataKey``) that a rule selects, which get a
KMS-style JSON error instead and never reach the server::

    with KmsFaultProxy(kms_server.url, fail=("GenerateDataKey", "Decrypt"),
                       code="ThrottlingException", status=400, first=2) as proxy:
        ...  # use proxy.url
    assert proxy.refused["GenerateDataKey"] == 2
    assert proxy.forwarded["GenerateDataKey"] == 1

Rules, counted per operation (each operation in ``fail`` has its own count):

- ``first=N``: refuse the first N calls;
- ``every=K``: refuse every K-th call (the K-th, 2K-th, ...);
- ``probability=P``: refuse each call with probability P, drawn from ``random.Random`` seeded with
  ``seed`` and the operation's name, so the same sequence of calls is refused on every run;
- none of those: refuse every call.

``after="UpdateAlias"`` holds the rule back until a call of that operation has been forwarded and
answered with a 2xx status; only calls made from then on are counted and refused (``proxy.armed``
tells whether that happened). Without ``after`` the rule applies from the start.

``refuse_regions=("us-east-1",)`` plays an outage of those regions: every KMS call signed for one
of them (the region of the SigV4 credential scope in the ``Authorization`` header,
``Credential=AKID/DATE/REGION/kms/aws4_request``), whatever its operation, gets
``{"__type": region_code, ...}`` with HTTP ``region_status`` (by default a 400 with a code botocore
does not retry, so a refused region fails at once instead of after the retry policy's 10 attempts)
and never reaches the server. ``fail`` may then be left out; both apply when given.

``proxy.forwarded`` and ``proxy.refused`` are Counters by KMS operation name (without
``TrentService.``); ``proxy.forwarded_regions`` and ``proxy.refused_regions`` count the same calls
by ``(region, operation)`` (region None when a request is not signed with SigV4). Requests that are
not KMS calls are forwarded and not counted. The server runs in daemon threads, with socket
timeouts on both sides, and stops on leaving the ``with`` block.
"""

import collections
import http.client
import http.server
import json
import random
import re
import threading
import urllib.parse

KMS_TARGET_PREFIX = "TrentService."
# Headers of the upstream answer not copied to the client (hop-by-hop, or set by this server).
_DROPPED_HEADERS = {"transfer-encoding", "connection", "content-length", "server", "date", "keep-alive"}


# The region of a SigV4 signature: Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request.
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")
REGION_REFUSED_CODE = "RegionUnavailableException"  # not a KMS error code: botocore does not retry it


def signed_region(authorization):
    """The region a request is signed for, from its Authorization header; None if not SigV4."""
    match = _CREDENTIAL_SCOPE.search(authorization or "")
    return match.group(1) if match else None


def _operation(name):
    return name[len(KMS_TARGET_PREFIX):] if name.startswith(KMS_TARGET_PREFIX) else name


class KmsFaultProxy:
    """Forwards to ``upstream_url``; answers the ``fail`` operations that the rule selects with
    ``{"__type": code, "message": message}`` and HTTP ``status`` (see the module docstring)."""

    def __init__(self, upstream_url, fail=(), code="ThrottlingException", message=None, status=400,
                 first=None, every=None, probability=None, seed=0, after=None, timeout=60,
                 refuse_regions=(), region_code=REGION_REFUSED_CODE, region_status=400):
        if sum(rule is not None for rule in (first, every, probability)) > 1:
            raise ValueError("give at most one of first, every and probability")
        if every is not None and every < 1:
            raise ValueError("every must be 1 or more")
        if probability is not None and not 0 <= probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        self.fail = frozenset(_operation(name) for name in ([fail] if isinstance(fail, str) else fail))
        self.code = code
        self.message = message
        self.status = status
        self.first, self.every, self.probability = first, every, probability
        self.after = _operation(after) if after else None
        self.timeout = timeout
        self.armed = self.after is None
        self.refuse_regions = frozenset([refuse_regions] if isinstance(refuse_regions, str) else refuse_regions)
        self.region_code, self.region_status = region_code, region_status
        self.forwarded = collections.Counter()
        self.refused = collections.Counter()
        self.forwarded_regions = collections.Counter()  # (region, operation)
        self.refused_regions = collections.Counter()
        self._eligible = collections.Counter()  # calls of each fail operation seen since armed
        self._random = {name: random.Random(f"{seed}:{name}") for name in self.fail}
        self._lock = threading.Lock()
        self._upstream = urllib.parse.urlsplit(upstream_url)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: shutdown() waits for the serving loop to notice (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kms-fault-proxy", daemon=True)

    # -- the rule

    def should_refuse(self, operation):
        """Count one call of ``operation`` and say whether the rule refuses it (the handler asks once a call)."""
        with self._lock:
            if operation not in self.fail or not self.armed:
                return False
            self._eligible[operation] += 1
            number = self._eligible[operation]
            if self.first is not None:
                refuse = number <= self.first
            elif self.every is not None:
                refuse = number % self.every == 0
            elif self.probability is not None:
                refuse = self._random[operation].random() < self.probability
            else:
                refuse = True
            if refuse:
                self.refused[operation] += 1
            return refuse

    def refuses_region(self, region, operation):
        """Count a call of ``operation`` signed for ``region`` refused when that region is out."""
        if region not in self.refuse_regions:
            return False
        with self._lock:
            self.refused[operation] += 1
            self.refused_regions[region, operation] += 1
        return True

    def _record_forwarded(self, operation, status, region=None):
        with self._lock:
            self.forwarded[operation] += 1
            self.forwarded_regions[region, operation] += 1
            if operation == self.after and 200 <= status < 300:
                self.armed = True

    def error_body(self, operation):
        message = self.message or f"injected by the test: {operation} refused"
        return json.dumps({"__type": self.code, "message": message}).encode()

    # -- HTTP

    def _handler_class(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = proxy.timeout  # a client that stalls mid-request does not hold a thread forever

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                operation = _operation(target) if target.startswith(KMS_TARGET_PREFIX) else None
                region = signed_region(self.headers.get("Authorization"))
                if operation and proxy.refuses_region(region, operation):
                    self._answer(proxy.region_status, [("Content-Type", "application/x-amz-json-1.1")],
                                 json.dumps({"__type": proxy.region_code,
                                             "message": f"injected by the test: region {region} is out"}).encode())
                    return
                if operation and proxy.should_refuse(operation):
                    with proxy._lock:
                        proxy.refused_regions[region, operation] += 1
                    self._answer(proxy.status, [("Content-Type", "application/x-amz-json-1.1")],
                                 proxy.error_body(operation))
                    return
                status, headers, data = proxy._send_upstream(self.command, self.path, self.headers, body)
                if operation:
                    proxy._record_forwarded(operation, status, region)
                self._answer(status, headers, data)

            def _answer(self, status, headers, data):
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in _DROPPED_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

            def log_message(self, *args):
                pass

        return Handler

    def _send_upstream(self, method, path, request_headers, body):
        connection = http.client.HTTPConnection(self._upstream.hostname, self._upstream.port, timeout=self.timeout)
        try:
            headers = {key: value for key, value in request_headers.items() if key.lower() != "connection"}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    # -- life cycle

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=self.timeout)
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
