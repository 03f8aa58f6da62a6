"""
A reference client for the tokenbroker daemon, in Python with the standard library only.

Written from proto/README.md (the wire protocol, version 1): find the socket, check that it is owned by
you, connect, ``hello``, then requests (``token.get``, ``status``, ...) and events. Synchronous and
single-threaded: events that arrive while a request waits are queued for :meth:`Client.events`.

    import tokenbroker
    with tokenbroker.connect(client="my-script/1.0") as broker:
        token = broker.get_token(profile="work")
        print(token["accessToken"])

Errors are :class:`BrokerError` with the protocol's stable ``code`` (plus ``DAEMON_NOT_RUNNING``,
``SOCKET_UNTRUSTED``, ``CONNECTION_LOST``, ``TIMEOUT`` raised by this client itself). Unix only
(Windows named pipes are not implemented here).
"""

import collections
import json
import os
import socket
import stat
import sys
import tempfile
import time

PROTOCOL_VERSION = 1
FRAME_DELIMITER = b"\f"  # proto/README.md "Framing": node-ipc's envelope, JSON then a form feed
MAX_FRAME_BYTES = 64 * 1024  # proto/README.md "Limits"

__all__ = ["BrokerError", "Client", "connect", "default_socket_path"]


class BrokerError(Exception):
    """An error with a stable ``code``; ``field`` and ``retry_at`` (epoch ms) when the daemon sent them."""

    def __init__(self, code, message, field=None, retry_at=None):
        super().__init__("%s [%s]" % (message, code))
        self.code = code
        self.message = message
        self.field = field
        self.retry_at = retry_at

    @classmethod
    def from_wire(cls, error):
        return cls(error.get("code", "INTERNAL"), error.get("message", ""), error.get("field"), error.get("retryAt"))


def default_socket_path(env=None):
    """proto/README.md "Where the socket is": $TOKENBROKER_SOCKET, else the per-user runtime directory."""
    env = os.environ if env is None else env
    if env.get("TOKENBROKER_SOCKET"):
        return env["TOKENBROKER_SOCKET"]
    if sys.platform == "win32":
        raise BrokerError("DAEMON_NOT_RUNNING", "named pipes are not supported by this client")
    runtime = env.get("XDG_RUNTIME_DIR")
    if sys.platform != "darwin" and runtime:
        return runtime.rstrip("/") + "/tokenbroker/broker.sock"
    if sys.platform == "darwin":
        return tempfile.gettempdir().rstrip("/") + "/tokenbroker/broker.sock"
    return "/tmp/tokenbroker-%d/broker.sock" % os.getuid()


def _verify_owner(path):
    """The socket and its directory must be ours, the directory writable by nobody else (an impostor
    socket would collect tokens). Returns the resolved path, which is what we connect to."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
        dir_st = os.lstat(os.path.dirname(real))
    except FileNotFoundError:
        raise BrokerError("DAEMON_NOT_RUNNING", "the tokenbroker daemon is not running (no socket at %s); start it with \"tokenbroker daemon\" or \"tokenbroker service install\"" % path)
    except PermissionError:
        raise BrokerError("SOCKET_UNTRUSTED", "permission denied on %s: it belongs to another user" % path)
    uid = os.getuid()
    if st.st_uid != uid:
        raise BrokerError("SOCKET_UNTRUSTED", "%s is owned by uid %d, not by you (uid %d); refusing to connect" % (path, st.st_uid, uid))
    if dir_st.st_uid != uid or dir_st.st_mode & 0o022:
        raise BrokerError("SOCKET_UNTRUSTED", "the directory of %s could let another user replace the socket; refusing to connect" % real)
    if not stat.S_ISSOCK(st.st_mode):
        raise BrokerError("DAEMON_NOT_RUNNING", "%s is not a socket" % path)
    return real


class Client:
    """One connection to the daemon. Use :func:`connect` to make one."""

    def __init__(self, socket_path=None, client="tokenbroker-python", timeout=10.0):
        self.socket_path = socket_path or default_socket_path()
        self.timeout = timeout
        self._client_name = client
        self._sock = None
        self._buffer = b""
        self._next_id = 1
        self._events = collections.deque()
        self._subscription = None  # the params of the last subscribe, replayed by reconnect()
        self.hello_result = None

    # -- connection ---------------------------------------------------------------------------------

    def connect(self):
        real = _verify_owner(self.socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(real)
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            raise BrokerError("DAEMON_NOT_RUNNING", "the tokenbroker daemon is not running (nothing listens on %s)" % self.socket_path)
        self._sock = sock
        self._buffer = b""
        # proto/README.md "hello — must come first"
        self.hello_result = self.request("hello", {"protocolVersion": PROTOCOL_VERSION, "client": self._client_name})
        return self

    def reconnect(self):
        """proto/README.md "Reconnecting": a new connection, hello again, subscribe again."""
        self.close()
        self.connect()
        if self._subscription is not None:
            self.request("subscribe", self._subscription)
        return self

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- framing ------------------------------------------------------------------------------------

    def _send(self, envelope_type, data):
        frame = json.dumps({"type": envelope_type, "data": data}, separators=(",", ":")).encode("utf-8")
        if len(frame) > MAX_FRAME_BYTES:
            raise BrokerError("BAD_REQUEST", "request frame over %d bytes" % MAX_FRAME_BYTES)
        try:
            self._sock.sendall(frame + FRAME_DELIMITER)
        except OSError as error:  # EPIPE, ECONNRESET: the daemon went away (restart: call reconnect())
            self.close()
            raise BrokerError("CONNECTION_LOST", "the connection to the daemon was lost (%s)" % error.strerror)

    def _read_envelope(self, deadline):
        while True:
            end = self._buffer.find(FRAME_DELIMITER)
            if end != -1:
                frame, self._buffer = self._buffer[:end], self._buffer[end + 1:]
                return json.loads(frame.decode("utf-8"))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError("TIMEOUT", "no answer from the daemon in time")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                raise BrokerError("TIMEOUT", "no answer from the daemon in time")
            except OSError as error:
                self.close()
                raise BrokerError("CONNECTION_LOST", "the connection to the daemon was lost (%s)" % error.strerror)
            if not chunk:
                self.close()
                raise BrokerError("CONNECTION_LOST", "the daemon closed the connection")
            self._buffer += chunk

    # -- requests -----------------------------------------------------------------------------------

    def request(self, method, params=None, timeout=None):
        """Sends one request and returns its result, or raises BrokerError with the daemon's code."""
        if self._sock is None:
            raise BrokerError("CONNECTION_LOST", "not connected")
        request_id = self._next_id
        self._next_id += 1
        self._send("request", {"id": request_id, "method": method, "params": params or {}})
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            envelope = self._read_envelope(deadline)
            kind, data = envelope.get("type"), envelope.get("data")
            if kind == "event":
                self._events.append(data)
            elif kind == "response" and isinstance(data, dict) and data.get("id") in (request_id, None):
                if "error" in data:
                    raise BrokerError.from_wire(data["error"])
                return data.get("result")
            # other envelope types (a newer daemon) and other ids are ignored, as the protocol says

    def get_token(self, profile=None, min_valid_seconds=None, rejected=None, timeout=None):
        """A valid access token: {profile, accessToken, tokenType, expiresAt, scopes}."""
        timeout = self.timeout if timeout is None else timeout
        params = {"waitMs": max(0, min(120000, int(timeout * 1000) - 500))}
        if profile is not None:
            params["profile"] = profile
        if min_valid_seconds is not None:
            params["minValidSeconds"] = min_valid_seconds
        if rejected is not None:
            params["rejected"] = rejected
        return self.request("token.get", params, timeout)

    def status(self):
        return self.request("status")

    def subscribe(self, events=None):
        params = {} if events is None else {"events": list(events)}
        result = self.request("subscribe", params)
        self._subscription = params
        return result

    def events(self, timeout=None):
        """Yields events ({event, data}) as they arrive; stops after `timeout` seconds without one."""
        while True:
            if self._events:
                yield self._events.popleft()
                continue
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            try:
                envelope = self._read_envelope(deadline)
            except BrokerError as error:
                if error.code == "TIMEOUT":
                    return
                raise
            if envelope.get("type") == "event":
                yield envelope.get("data")


def connect(socket_path=None, client="tokenbroker-python", timeout=10.0):
    """Connects, checks the socket's owner, and says hello. Raises BrokerError (DAEMON_NOT_RUNNING, ...)."""
    return Client(socket_path, client, timeout).connect()


if __name__ == "__main__":
    # A tiny CLI for trying it out: python3 tokenbroker.py [profile]
    try:
        with connect() as broker:
            print(broker.get_token(profile=sys.argv[1] if len(sys.argv) > 1 else None)["accessToken"])
    except BrokerError as error:
        print("tokenbroker: %s" % error, file=sys.stderr)
        sys.exit(1)
