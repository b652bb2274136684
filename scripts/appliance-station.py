#!/usr/bin/python3
"""A capture station for the appliance tests (scripts/appliance-boot-test.sh, scripts/appliance-crash-drill.sh).

Speaks station protocol v1.3 (docs/station-protocol.md) over MQTT 3.1.1 with python3-paho-mqtt, on loopback only,
over TLS with the station's client certificate: --certs DIR holds one folder per station id, ID/ID.pem, ID/ID.key
and ID/ca.pem, as the appliance writes them onto its provisioning medium (`hotspot-gateway station add`). The
broker's certificate is verified against ca.pem and the address 127.0.0.1.

  status    --port P --certs D             print the gateway's retained status (hotspot/v1/gateway/status)
  roundtrip --port P --certs D [--count N] send N captures; wait for each one's local and central result
  stream    --port P --certs D --acked FILE ...
                                           publish until stopped or the broker goes away; append to FILE the
                                           capture_id of every capture whose local result (not `rejected`)
                                           arrived: the gateway's proof that it has stored the capture
  refused   --port P --certs D             expect the broker to refuse a TLS client without a certificate, and a
                                           station's subscription to another station's results

Captures carry one synthetic ISO/IEC 19794-2:2005 minutiae record (random minutiae), so they are accepted and
matched like a real fingerprint template.
"""

import argparse
import base64
import datetime
import json
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time
import uuid

try:
    import paho.mqtt.client as mqtt
except ImportError:  # pragma: no cover
    sys.exit("appliance-station: needs python3-paho-mqtt (apt-get install python3-paho-mqtt)")

HOST = "127.0.0.1"  # the tests only ever talk to qemu's forwarded ports on loopback


def cert_files(certs, station_id):
    """(certificate, key, CA) of a station in the --certs folder."""
    d = os.path.join(certs, station_id)
    files = (os.path.join(d, f"{station_id}.pem"), os.path.join(d, f"{station_id}.key"), os.path.join(d, "ca.pem"))
    for f in files:
        if not os.path.isfile(f):
            sys.exit(f"appliance-station: no {f} (was station {station_id} enrolled?)")
    return files


def client(client_id, clean, certs, station_id):
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho >= 2
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id, clean_session=clean,
                        protocol=mqtt.MQTTv311)
    else:
        c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    cert, key, ca = cert_files(certs, station_id)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)  # verifies the chain and 127.0.0.1
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    c.tls_set_context(ctx)
    c.max_inflight_messages_set(32)
    return c


def iso_template(rng):
    """An ISO/IEC 19794-2:2005 record: one view, 30..45 random minutiae."""
    n = rng.randint(30, 45)
    view = struct.pack(">BBBB", 2, 0, 60, n)
    for _ in range(n):
        kind = rng.choice((1, 2))
        x, y = rng.randint(10, 290), rng.randint(10, 390)
        view += struct.pack(">HHBB", (kind << 14) | x, y, rng.randint(0, 255), rng.randint(40, 100))
    view += struct.pack(">H", 0)  # no extended data
    body_len = 24 + len(view)
    header = b"FMR\0 20\0" + struct.pack(">IHHHHHBB", body_len, 0, 300, 400, 197, 197, 1, 0)
    return header + view


def capture(rng, purpose="screen"):
    cid = str(uuid.uuid4())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {
        "capture_id": cid,
        "captured_at": now,
        "operator": "appliance-test",
        "purpose": purpose,
        "fingers": [{"position": 2, "format": "iso19794-2",
                     "data": base64.b64encode(iso_template(rng)).decode()}],
    }
    return cid, json.dumps(doc).encode()


class Station:
    def __init__(self, port, certs, station_id, clean=True):
        self.id = station_id
        self.results = {}  # capture_id -> {source: result}
        self.cond = threading.Condition()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.disconnected = threading.Event()
        self.on_local = None
        self.c = client(f"station-{station_id}", clean, certs, station_id)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.c.will_set(f"hotspot/v1/stations/{station_id}/status", b"offline", qos=1, retain=True)
        self.c.connect(HOST, port, keepalive=10)
        self.c.loop_start()

    def _on_connect(self, c, userdata, flags, rc):
        if rc == 0:
            c.subscribe(f"hotspot/v1/stations/{self.id}/results", qos=1)
            c.publish(f"hotspot/v1/stations/{self.id}/status", b"online", qos=1, retain=True)
            self.connected.set()

    def _on_message(self, c, userdata, msg):
        try:
            r = json.loads(msg.payload)
        except ValueError:
            return
        cid, source = r.get("capture_id"), r.get("source")
        with self.cond:
            self.results.setdefault(cid, {})[source] = r
            self.cond.notify_all()
        if source == "local" and self.on_local:
            self.on_local(cid, r)

    def ready(self, timeout):
        return self.connected.wait(timeout) and self.subscribed.wait(timeout)

    def publish(self, payload):
        return self.c.publish(f"hotspot/v1/stations/{self.id}/captures", payload, qos=1)

    def wait_result(self, cid, source, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while source not in self.results.get(cid, {}):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.results[cid][source]

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def cmd_status(a):
    got = threading.Event()
    out = {}
    c = client(f"status-reader-{os.getpid()}", True, a.certs, a.station)

    def on_connect(c, u, f, rc):
        c.subscribe("hotspot/v1/gateway/status", qos=1)

    def on_message(c, u, msg):
        out["status"] = msg.payload.decode(errors="replace")
        got.set()

    c.on_connect, c.on_message = on_connect, on_message
    c.connect(HOST, a.port, keepalive=10)
    c.loop_start()
    ok = got.wait(a.timeout)
    c.disconnect()
    c.loop_stop()
    if not ok:
        sys.exit(f"appliance-station: no retained gateway status within {a.timeout} s")
    print(out["status"])


def cmd_roundtrip(a):
    rng = random.Random()
    st = Station(a.port, a.certs, a.station)
    if not st.ready(a.timeout):
        sys.exit("appliance-station: could not connect and subscribe")
    failures = 0
    for _ in range(a.count):
        cid, payload = capture(rng)
        t0 = time.monotonic()
        st.publish(payload)
        local = st.wait_result(cid, "local", a.timeout)
        if local is None:
            print(f"FAIL {cid}: no local result within {a.timeout} s")
            failures += 1
            continue
        t_local = time.monotonic() - t0
        central = st.wait_result(cid, "central", a.timeout) if a.central else None
        if a.central and central is None:
            print(f"FAIL {cid}: local {local['decision']} but no central result within {a.timeout} s")
            failures += 1
            continue
        print(f"ok {cid}: local {local['decision']} in {t_local * 1000:.0f} ms (gateway {local.get('latency_ms')} ms)"
              + (f", central {central['decision']} after {time.monotonic() - t0:.1f} s" if central else ""))
    st.close()
    sys.exit(1 if failures else 0)


def cmd_stream(a):
    rng = random.Random()
    acked = open(a.acked, "a", buffering=1)
    published = open(a.published, "a", buffering=1) if a.published else None
    lock = threading.Lock()
    counts = {"published": 0, "acked": 0, "rejected": 0, "duplicate_results": 0}
    seen = set()

    def on_local(cid, r):
        with lock:
            if cid in seen:  # a result may arrive twice (QoS 1, re-sends); count captures, not messages
                counts["duplicate_results"] += 1
                return
            seen.add(cid)
            if r.get("decision") == "rejected":
                counts["rejected"] += 1
                print(f"appliance-station: {cid} rejected: {r.get('reason')}", file=sys.stderr)
                return
            counts["acked"] += 1
            acked.write(cid + "\n")
            acked.flush()

    stations = []
    for i in range(a.stations):
        st = Station(a.port, a.certs, f"{a.station}-{i}")
        st.on_local = on_local
        if not st.ready(a.timeout):
            sys.exit("appliance-station: could not connect and subscribe")
        stations.append(st)
    print(f"appliance-station: streaming from {len(stations)} stations at {a.rate}/s each", file=sys.stderr, flush=True)
    deadline = time.monotonic() + a.duration
    period = 1.0 / a.rate
    nxt = time.monotonic()
    while time.monotonic() < deadline and not any(s.disconnected.is_set() for s in stations):
        for st in stations:
            cid, payload = capture(rng)
            if published:
                published.write(cid + "\n")
            st.publish(payload)
            counts["published"] += 1
        nxt += period
        time.sleep(max(0.0, nxt - time.monotonic()))
    # Give results in flight a moment (the VM may be gone already).
    time.sleep(1.0)
    with lock:
        print(json.dumps(counts), flush=True)
    for st in stations:
        try:
            st.close()
        except Exception:  # the broker may be gone: that is the point of the drill
            pass


def mqtt_connect_packet(client_id):
    """A minimal MQTT 3.1.1 CONNECT (clean session, keep-alive 10 s)."""
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02\x00\x0a"
    payload = struct.pack(">H", len(cid)) + cid
    body = var + payload
    return bytes([0x10, len(body)]) + body


def cmd_refused(a):
    """The broker must refuse what a station without a valid certificate, or outside its topics, tries."""
    failures = 0
    # 1. TLS without a client certificate (the broker's certificate is verified as a station would): the handshake
    #    fails or the connection is closed before any CONNACK.
    _, _, ca = cert_files(a.certs, a.station)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    try:
        with socket.create_connection((HOST, a.port), timeout=a.timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=HOST) as t:
                t.sendall(mqtt_connect_packet("no-certificate"))
                data = t.recv(4)
        if len(data) == 4 and data[0] == 0x20 and data[3] == 0:
            print("FAIL: a client without a certificate got CONNACK 0 (accepted)")
            failures += 1
        else:
            print(f"ok: a client without a certificate was refused (connection closed, {data!r})")
    except (ssl.SSLError, OSError) as e:
        print(f"ok: a client without a certificate was refused ({e.__class__.__name__}: {e})")
    # 2. A subscription to another station's results: SUBACK failure 0x80 (embedded broker), or granted but
    #    nothing of the other station's delivered (mosquitto); either way nothing may arrive here.
    st = Station(a.port, a.certs, a.station)
    if not st.ready(a.timeout):
        print("FAIL: the station could not connect with its certificate")
        sys.exit(1)
    granted = {}
    ev = threading.Event()

    def on_subscribe(c, u, mid, qos):
        granted["qos"] = qos
        ev.set()

    st.c.on_subscribe = on_subscribe
    st.c.subscribe(f"hotspot/v1/stations/{a.other}/results", qos=1)
    if not ev.wait(a.timeout):
        print("FAIL: no SUBACK for the subscription to another station's results")
        failures += 1
    elif granted["qos"][0] == 0x80:
        print(f"ok: subscription to hotspot/v1/stations/{a.other}/results refused (SUBACK 0x80)")
    else:
        print(f"note: subscription to hotspot/v1/stations/{a.other}/results granted {granted['qos']} "
              "(mosquitto checks read rights per message instead)")
    st.close()
    sys.exit(1 if failures else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("status")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--certs", required=True)
    s.add_argument("--station", default="boot-test", help="whose certificate to use")
    s.add_argument("--timeout", type=float, default=20)
    f = sub.add_parser("refused")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--certs", required=True)
    f.add_argument("--station", default="boot-test", help="whose certificate (and CA) to use")
    f.add_argument("--other", default="someone-else", help="another station id")
    f.add_argument("--timeout", type=float, default=20)
    r = sub.add_parser("roundtrip")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--certs", required=True)
    r.add_argument("--count", type=int, default=3)
    r.add_argument("--station", default="boot-test")
    r.add_argument("--central", action="store_true", help="also wait for central's result")
    r.add_argument("--timeout", type=float, default=60)
    t = sub.add_parser("stream")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--certs", required=True)
    t.add_argument("--acked", required=True)
    t.add_argument("--published")
    t.add_argument("--stations", type=int, default=2)
    t.add_argument("--station", default="drill")
    t.add_argument("--rate", type=float, default=5.0, help="captures per second per station")
    t.add_argument("--duration", type=float, default=600)
    t.add_argument("--timeout", type=float, default=30)
    a = p.parse_args()
    {"status": cmd_status, "roundtrip": cmd_roundtrip, "stream": cmd_stream, "refused": cmd_refused}[a.cmd](a)


if __name__ == "__main__":
    main()
