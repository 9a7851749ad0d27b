#!/usr/bin/python3
"""Records real MQTT sessions with RabbitMQ's MQTT plugin for `wirewarden why`:
one RabbitMQ node (Debian's rabbitmq-server) on a free 127.0.0.1 port, real
clients (mosquitto_pub, raw sockets for misbehaviour, rabbitmqctl for the
operator), and per scenario a capture (tcpdump) and the lines the broker
logged meanwhile. Writes OUTDIR/<scenario>.pcap, <scenario>.rabbitmq.log and
SOURCES.md. Needs root, rabbitmq-server, mosquitto-clients and tcpdump.

    /usr/bin/python3 tests/tools/record_rabbitmq.py [OUTDIR]   # default tests/data/recorded-rabbitmq
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from helpers import packets  # noqa: E402  (the tests' own MQTT encoder and port picker)
from helpers.procs import free_port  # noqa: E402

OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "tests/data/recorded-rabbitmq")
RMQ_BIN = "/usr/lib/rabbitmq/bin"


def connect_packet(cid, keepalive=60, level=4):
    """CONNECT as the broker's default user, from the integration tests' packet encoder."""
    return packets.connect(cid, level=level, keepalive=keepalive, username="guest", password="guest")


class Node:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.name = "wwrec@localhost"
        os.makedirs(os.path.join(tmp, "log"))
        with open(os.path.join(tmp, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp = none\n"
                    "mqtt.listeners.tcp.1 = 127.0.0.1:%d\n"
                    "mqtt.allow_anonymous = false\n"
                    "log.console = false\n"
                    "log.file.level = info\n" % self.port)
        with open(os.path.join(tmp, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        self.env = dict(os.environ, HOME=tmp, RABBITMQ_NODENAME=self.name,
                        RABBITMQ_DIST_PORT=str(free_port()),
                        RABBITMQ_CONFIG_FILE=os.path.join(tmp, "rabbitmq.conf"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(tmp, "enabled_plugins"),
                        RABBITMQ_MNESIA_BASE=os.path.join(tmp, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(tmp, "log"),
                        RABBITMQ_LOGS=os.path.join(tmp, "log", "rabbit.log"))
        self.log = os.path.join(tmp, "log", "rabbit.log")

    def start(self):
        self.proc = subprocess.Popen([RMQ_BIN + "/rabbitmq-server"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("rabbitmq did not open its MQTT port within 90 s")
        self.ctl("add_user", "limited", "limitedpw")  # a user without permissions on any vhost
        time.sleep(1)

    def ctl(self, *args):
        return subprocess.run([RMQ_BIN + "/rabbitmqctl", "-n", self.name] + list(args), env=self.env,
                              capture_output=True, text=True, timeout=60)

    def version(self):
        out = self.ctl("version").stdout.strip()
        return out or "unknown"


def pub(port, *args):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port)] + list(args), timeout=20,
                   capture_output=True)


def raw(port, packet, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if packet:
        s.sendall(packet)
    if read:
        try:
            s.recv(4)
        except OSError:
            pass
    return s


def wait_closed(s, limit):
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def sc_clean(port, node):
    """mosquitto_pub, MQTT 3.1.1 and 3.1, QoS 1: CONNECT, PUBLISH, DISCONNECT."""
    pub(port, "-V", "mqttv311", "-i", "rmq-clean", "-u", "guest", "-P", "guest", "-q", "1", "-t", "t/a", "-m", "hi")
    pub(port, "-V", "mqttv31", "-i", "rmq-clean31", "-u", "guest", "-P", "guest", "-t", "t/a", "-m", "hi")


def sc_vanished(port, node):
    """Raw sockets: a CONNECT, then the TCP connection closed without DISCONNECT: FIN, then RST."""
    s = raw(port, connect_packet(b"rmq-vanish-fin"))
    time.sleep(0.3)
    s.close()
    s = raw(port, connect_packet(b"rmq-vanish-rst"))
    time.sleep(0.3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def sc_keepalive(port, node):
    """Raw socket: CONNECT with keep-alive 2 s, then silence until the broker closes."""
    s = raw(port, connect_packet(b"rmq-keepalive", keepalive=2))
    wait_closed(s, 10)


def sc_takeover(port, node):
    """Two raw connections with one client id, 0.5 s apart: the first is taken over."""
    a = raw(port, connect_packet(b"rmq-twin"))
    time.sleep(0.5)
    b = raw(port, connect_packet(b"rmq-twin"))
    wait_closed(a, 5)
    time.sleep(0.3)
    b.sendall(b"\xe0\x00")
    wait_closed(b, 5)


def sc_auth(port, node):
    """mosquitto_pub with a wrong password, an unknown user, and a user without vhost permissions."""
    pub(port, "-V", "mqttv311", "-i", "rmq-badpw", "-u", "guest", "-P", "wrong", "-t", "t/a", "-m", "x")
    pub(port, "-V", "mqttv311", "-i", "rmq-nouser", "-u", "nobody", "-P", "x", "-t", "t/a", "-m", "x")
    pub(port, "-V", "mqttv311", "-i", "rmq-noperm", "-u", "limited", "-P", "limitedpw", "-t", "t/a", "-m", "x")


def sc_login_timeout(port, node):
    """A TCP connection that never sends CONNECT (RabbitMQ's login_timeout, 10 s by default)."""
    s = raw(port, b"", read=False)
    wait_closed(s, 15)


def sc_second_connect(port, node):
    """Raw socket: CONNECT, CONNACK, then a second CONNECT."""
    s = raw(port, connect_packet(b"rmq-double"))
    s.sendall(connect_packet(b"rmq-double"))
    wait_closed(s, 5)


def sc_malformed(port, node):
    """Raw socket: CONNECT, then a packet of the reserved type 0."""
    s = raw(port, connect_packet(b"rmq-reserved"))
    s.sendall(b"\x00\x00")
    wait_closed(s, 5)


def sc_v5(port, node):
    """A CONNECT of protocol level 5 (this RabbitMQ speaks 3.1 and 3.1.1 only)."""
    s = raw(port, connect_packet(b"rmq-v5", level=5))
    wait_closed(s, 5)


def sc_admin(port, node):
    """rabbitmqctl close_all_connections on a connected client (3.10 lists MQTT clients apart, and
    closes them through their internal AMQP connection)."""
    s = raw(port, connect_packet(b"rmq-kicked"))
    time.sleep(0.5)
    node.ctl("close_all_connections", "closed by the operator")
    wait_closed(s, 5)


def sc_shutdown(port, node):
    """Two connected clients, then rabbitmqctl stop."""
    a = raw(port, connect_packet(b"rmq-stay-1"))
    b = raw(port, connect_packet(b"rmq-stay-2"))
    time.sleep(0.5)
    node.ctl("stop")
    wait_closed(a, 30)
    wait_closed(b, 5)


SCENARIOS = [sc_clean, sc_vanished, sc_keepalive, sc_takeover, sc_auth, sc_login_timeout, sc_second_connect,
             sc_malformed, sc_v5, sc_admin, sc_shutdown]


def main():
    if os.geteuid() != 0:
        raise SystemExit("record_rabbitmq.py: needs root (tcpdump)")
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="wwrmq.")
    node = Node(tmp)
    node.start()
    version = node.version()
    rows = []
    try:
        for sc in SCENARIOS:
            name = sc.__name__[3:].replace("_", "-")
            pcap = os.path.join(OUT, name + ".pcap")
            td = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-s", "0", "-Z", "root", "--immediate-mode",
                                   "-w", pcap, "tcp port %d" % node.port], stderr=subprocess.PIPE)
            td.stderr.readline()  # "listening on lo ..."
            start = os.path.getsize(node.log)
            t0 = time.time()
            sc(node.port, node)
            time.sleep(1.0)  # the broker logs a close after the socket is gone
            td.send_signal(signal.SIGINT)
            td.wait(timeout=10)
            with open(node.log, "rb") as f:
                f.seek(start)
                lines = f.read()
            with open(os.path.join(OUT, name + ".rabbitmq.log"), "wb") as f:
                f.write(lines)
            rows.append((name, " ".join(sc.__doc__.split()), time.time() - t0, os.path.getsize(pcap)))
            print("%-16s %5.1f s" % (name, time.time() - t0))
    finally:
        node.ctl("stop")
        try:
            node.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(OUT, "SOURCES.md"), "w") as f:
        f.write("# Recorded RabbitMQ MQTT sessions (real broker, real clients)\n\n"
                "Generated by `tests/tools/record_rabbitmq.py` on %s (UTC). Do not edit by hand: re-run the "
                "script instead.\n\n" % time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
        f.write("- RabbitMQ: %s (Debian 12 package rabbitmq-server, plugin rabbitmq_mqtt)\n" % version)
        f.write("- %s\n" % next((l for l in subprocess.run(["mosquitto_pub", "--help"], capture_output=True,
                                                             text=True).stdout.splitlines() if "version" in l),
                                 "mosquitto_pub: version unknown"))
        f.write("- tcpdump: %s\n\n" % subprocess.run(["tcpdump", "--version"], capture_output=True, text=True)
                .stdout.splitlines()[0])
        f.write("One node on 127.0.0.1 with only the MQTT listener (`listeners.tcp = none`), "
                "`mqtt.allow_anonymous = false`, `log.file.level = info`; the user `limited` exists "
                "without permissions. Per scenario: `tcpdump -i lo 'tcp port $PORT'` to `<scenario>.pcap`, "
                "and the lines the node wrote to its log meanwhile in `<scenario>.rabbitmq.log`.\n\n"
                "| scenario | what the clients did | seconds | pcap bytes |\n|---|---|---:|---:|\n")
        for name, doc, secs, size in rows:
            f.write("| %s | %s | %.1f | %d |\n" % (name, doc, secs, size))


if __name__ == "__main__":
    main()
