"""Python paho-mqtt (Debian python3-paho-mqtt) as an MQTT 5 client of the embedded broker.

Run by runtime/broker/mqtt5-interop.test.ts as `/usr/bin/python3 paho_v5_check.py <port>`; prints one JSON
object with what the client saw. Every wait is for an event (CONNACK, SUBACK, a message), bounded.
"""
import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

port = int(sys.argv[1])
out = {}


def client(cid, version=mqtt.MQTTv5):
    c = mqtt.Client(client_id=cid, protocol=version)
    c.connacked = threading.Event()
    c.subacked = threading.Event()
    c.got = threading.Event()
    c.msgs = []

    def on_connect(cl, userdata, flags, rc, props=None):
        cl.rc = rc
        cl.connack_props = props
        cl.connacked.set()

    def on_message(cl, userdata, m):
        cl.msgs.append(m)
        cl.got.set()

    c.on_connect = on_connect
    c.on_message = on_message
    c.on_subscribe = lambda cl, userdata, mid, rcs, props=None: cl.subacked.set()
    return c


def rc_value(rc):
    return getattr(rc, "value", rc)


sub = client("paho-sub")
props = Properties(PacketTypes.CONNECT)
props.SessionExpiryInterval = 30
sub.connect("127.0.0.1", port, clean_start=True, properties=props)
sub.loop_start()
sub.connacked.wait(10)
out["connect_rc"] = rc_value(sub.rc)
out["receive_maximum"] = getattr(sub.connack_props, "ReceiveMaximum", None)
sub.subscribe([("paho/#", SubscribeOptions(qos=1, noLocal=True))])
sub.subacked.wait(10)

# no local: the subscriber's own message must not come back; the other client's must, with its properties.
sub.publish("paho/own", "own", qos=1).wait_for_publish(10)
pub = client("paho-pub")
pub.connect("127.0.0.1", port)
pub.loop_start()
pub.connacked.wait(10)
pp = Properties(PacketTypes.PUBLISH)
pp.UserProperty = [("room", "hall"), ("room", "attic")]
pp.ContentType = "text/plain"
pp.ResponseTopic = "paho/reply"
pp.CorrelationData = b"id-1"
pp.PayloadFormatIndicator = 1
pp.MessageExpiryInterval = 30
pub.publish("paho/t", "hi", qos=1, properties=pp).wait_for_publish(10)
sub.got.wait(10)
m = sub.msgs[0] if sub.msgs else None
out["first_topic"] = m.topic if m else None
if m is not None:
    p = m.properties
    out["user_properties"] = getattr(p, "UserProperty", None)
    out["content_type"] = getattr(p, "ContentType", None)
    out["response_topic"] = getattr(p, "ResponseTopic", None)
    out["correlation_data"] = getattr(p, "CorrelationData", b"").decode()
    out["payload_format"] = getattr(p, "PayloadFormatIndicator", None)

bad = client("paho-bad")
bad.username_pw_set("nobody", "wrong")
bad.connect("127.0.0.1", port)
bad.loop_start()
bad.connacked.wait(10)
out["bad_login_rc"] = rc_value(bad.rc)

old = mqtt.Client(client_id="paho-311", protocol=mqtt.MQTTv311)
done = threading.Event()
old.on_connect = lambda cl, userdata, flags, rc: (out.__setitem__("v311_rc", rc), done.set())
old.connect("127.0.0.1", port)
old.loop_start()
done.wait(10)

for c in (sub, pub, bad, old):
    c.loop_stop()
    c.disconnect()
print(json.dumps(out))
