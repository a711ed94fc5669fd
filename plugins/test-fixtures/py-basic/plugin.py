"""Test fixture: tools that succeed, and tools that misbehave in every way the host must survive."""
import os
import sys
import time

from clawbox_plugin import Plugin, PluginError

plugin = Plugin()
state = {"instance": "%d:%f" % (os.getpid(), time.time()), "config": {}}


@plugin.on_start
def start(ctx):
    state["config"] = ctx.config
    ctx.log("info", "py-basic started")


@plugin.tool("add")
def add(args, call):
    return {"sum": args["a"] + args["b"]}


@plugin.tool("hello")
def hello(args, call):
    return {"text": "%s, %s" % (state["config"].get("greeting"), args["who"])}


@plugin.tool("throws")
def throws(args, call):
    raise ValueError("boom")


@plugin.tool("coded")
def coded(args, call):
    raise PluginError("FORBIDDEN", "not for you")


@plugin.tool("bad_result")
def bad_result(args, call):
    return {"sum": "not a number"}


@plugin.tool("hang")
def hang(args, call):
    while True:
        time.sleep(1)


@plugin.tool("exit")
def exit_now(args, call):
    os._exit(3)


@plugin.tool("garbage")
def garbage(args, call):
    plugin._out.write("this is not json\n")
    plugin._out.flush()
    return {"ok": True}


@plugin.tool("flood")
def flood(args, call):
    chunk = "z" * (1024 * 1024)
    for _ in range(16):
        plugin._out.write(chunk)
    plugin._out.flush()
    return {"ok": True}


@plugin.tool("chatty")
def chatty(args, call):
    for i in range(20000):
        print("chatter line %d" % i)
    os.write(1, b"raw bytes to fd 1 go to the log too\n")
    return {"ok": True}


@plugin.tool("whoami")
def whoami(args, call):
    return {"instance": state["instance"], "pid": os.getpid()}


@plugin.tool("devices")
def devices(args, call):
    return call.request("devices.list")


if __name__ == "__main__":
    plugin.run()
