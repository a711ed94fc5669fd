"""Helper for clawbox plugins written in Python (standard library only).

The host runs your entry script with python3 and speaks JSON-RPC 2.0 with it, one JSON text per line on
stdin/stdout. This module does the protocol; you write tools::

    from clawbox_plugin import Plugin, PluginError

    plugin = Plugin()

    @plugin.tool("add")
    def add(args, call):
        return {"sum": args["a"] + args["b"]}

    @plugin.on_start
    def start(ctx):
        ctx.log("info", "started with config %r" % (ctx.config,))

    if __name__ == "__main__":
        plugin.run()

Arguments arrive already checked against the manifest's schema; results are checked by the host. Raise
PluginError("PAYLOAD_INVALID", "...") (a clawbox error code) for an expected failure; any other exception
becomes PLUGIN_FAILED for that call and the plugin keeps running. print() goes to stderr (the host's log),
never into the protocol. Tools run one at a time.
"""

import json
import os
import sys
import traceback

__all__ = ["Plugin", "PluginError", "Context", "Call"]

TOOL_ERROR = -32000
METHOD_NOT_FOUND = -32601


class PluginError(Exception):
    """An expected failure with a clawbox error code (PAYLOAD_INVALID, FORBIDDEN, NOT_FOUND, ...)."""

    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class HostError(Exception):
    """The host refused a request (e.g. FORBIDDEN without the permission)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Context:
    """What a plugin gets at start: its name, config, data folder, a logger and host requests."""

    def __init__(self, plugin, params):
        self._plugin = plugin
        self.name = os.environ.get("CLAWBOX_PLUGIN_NAME", "")
        self.config = params.get("config") or {}
        self.data_dir = params.get("dataDir") or ""

    def log(self, level, message, **fields):
        self._plugin._notify("log", {"level": level, "message": str(message), "fields": fields})

    def request(self, method, params=None, call=None):
        """A request to the host: devices.list/get/schema/execute, mqtt.publish, mqtt.subscribe."""
        params = dict(params or {})
        if call is not None:
            params["call"] = call
        return self._plugin._request(method, params)

    def devices(self, call=None):
        return self.request("devices.list", {}, call)

    def publish(self, topic, payload, retain=False):
        if not isinstance(payload, str):
            payload = json.dumps(payload)
        return self.request("mqtt.publish", {"topic": topic, "payload": payload, "retain": retain})


class Call:
    """One tool call: who asked, and host requests made on the caller's behalf."""

    def __init__(self, ctx, params):
        self._ctx = ctx
        self.id = params.get("id")
        self.caller = params.get("caller") or {}
        self.transaction = params.get("transaction")

    def request(self, method, params=None):
        return self._ctx.request(method, params, call=self.id)


class Plugin:
    def __init__(self):
        self._tools = {}
        self._start = None
        self._stop = None
        self._ctx = None
        self._next_id = 1
        self._pending_input = []
        self._out = None
        self._in = None

    # -- registration -----------------------------------------------------------------------------
    def tool(self, name):
        def register(fn):
            self._tools[name] = fn
            return fn

        return register

    def on_start(self, fn):
        self._start = fn
        return fn

    def on_stop(self, fn):
        self._stop = fn
        return fn

    # -- protocol -------------------------------------------------------------------------------
    def run(self):
        # The protocol owns the real stdout; print() and stray writes to fd 1 go to stderr instead.
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._in = sys.stdin
        while True:
            message = self._read()
            if message is None:
                return
            if self._handle(message) == "shutdown":
                return

    def _write(self, obj):
        self._out.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        self._out.flush()

    def _notify(self, method, params):
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def _read(self):
        if self._pending_input:
            return self._pending_input.pop(0)
        while True:
            line = self._in.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                continue
            try:
                return json.loads(line)
            except ValueError:
                sys.stderr.write("clawbox_plugin: ignored a line that is not JSON\n")

    def _request(self, method, params):
        """Sends a request to the host and waits for its answer; host requests that arrive meanwhile wait."""
        rid = "p%d" % self._next_id
        self._next_id += 1
        self._write({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            line = self._in.readline()
            if not line:
                raise HostError("PLUGIN_FAILED", "the host closed the connection")
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("id") == rid and "method" not in message:
                if "error" in message:
                    err = message["error"] or {}
                    data = err.get("data") or {}
                    raise HostError(data.get("code", "PLUGIN_FAILED"), err.get("message", "host error"))
                return message.get("result")
            self._pending_input.append(message)

    def _handle(self, message):
        method = message.get("method")
        mid = message.get("id")
        params = message.get("params") or {}
        if mid is None:
            return None  # notifications (cancel, mqtt.message) are not handled by this helper
        try:
            if method == "initialize":
                self._ctx = Context(self, params)
                if self._start is not None:
                    self._start(self._ctx)
                result = {"tools": sorted(self._tools)}
            elif method == "call":
                fn = self._tools.get(params.get("tool"))
                if fn is None:
                    raise PluginError("NOT_FOUND", "this plugin has no tool %r" % (params.get("tool"),))
                result = fn(params.get("args"), Call(self._ctx, params))
            elif method == "ping":
                result = "pong"
            elif method == "shutdown":
                if self._stop is not None:
                    self._stop()
                self._write({"jsonrpc": "2.0", "id": mid, "result": None})
                return "shutdown"
            else:
                self._write({"jsonrpc": "2.0", "id": mid, "error": {"code": METHOD_NOT_FOUND, "message": "unknown method %s" % method}})
                return None
            try:
                self._write({"jsonrpc": "2.0", "id": mid, "result": result})
            except (TypeError, ValueError) as error:
                self._reply_error(mid, TOOL_ERROR, "the result is not JSON: %s" % error, {"name": type(error).__name__})
        except PluginError as error:
            self._reply_error(mid, TOOL_ERROR, error.message, {"code": error.code, "details": error.details})
        except HostError as error:
            self._reply_error(mid, TOOL_ERROR, str(error), {"code": error.code})
        except Exception as error:  # noqa: BLE001 - any failure of plugin code is reported, not fatal
            traceback.print_exc(file=sys.stderr)
            self._reply_error(mid, TOOL_ERROR, "%s: %s" % (type(error).__name__, error), {"name": type(error).__name__})
        return None

    def _reply_error(self, mid, code, message, data):
        self._write({"jsonrpc": "2.0", "id": mid, "error": {"code": code, "message": message, "data": data}})
