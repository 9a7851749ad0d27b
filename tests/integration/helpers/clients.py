"""paho-mqtt 1.6.1 clients (MQTT 3.1.1 and 5.0) with bounded waits.

Each Client runs paho's network loop in its own thread and turns callbacks
into queues that the test waits on with a timeout. A client that loses its
connection does not reconnect (paho would, and a reconnect would be a new
connection in the proxy's events that the test did not ask for)."""
import queue
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes


def rc_value(rc):
    """An int from paho's rc (int, or ReasonCodes in MQTT 5)."""
    return rc.value if hasattr(rc, "value") else rc


class Client:
    def __init__(self, port, version=4, client_id="", clean=True, keepalive=60, bind="", username=None,
                 password=None, will=None, host="127.0.0.1", session_expiry=None, tls=None):
        self.version = version
        self.port, self.host, self.keepalive, self.bind = port, host, keepalive, bind
        self.clean = clean
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        if version == 5:
            self.c = mqtt.Client(client_id=client_id, protocol=proto)
        else:
            self.c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=proto)
        if tls is not None:  # {ca_certs, certfile, keyfile}: paho's tls_set()
            self.c.tls_set(**tls)
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            topic, payload, qos, retain = will
            self.c.will_set(topic, payload, qos, retain)
        self.session_expiry = session_expiry
        self.connacks = queue.Queue()
        self.messages = queue.Queue()
        self.subacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.gone = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_disconnect = self._on_disconnect
        self.addr = None
        self.started = False

    # paho callbacks (network thread)
    def _on_connect(self, c, u, flags, rc, props=None):
        self.connacks.put(rc_value(rc))

    def _on_message(self, c, u, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, u, mid, granted, props=None):
        self.subacks.put((mid, [rc_value(g) for g in granted]))

    def _on_disconnect(self, c, u, rc, props=None):
        self.disconnects.put(rc_value(rc))
        self.gone.set()
        c.disconnect()  # marks the client "disconnecting": paho's loop ends, no reconnect

    def connect(self, timeout=5):
        """Connects and waits for the CONNACK: returns its code (0 accepted)."""
        kw = {}
        if self.version == 5:
            kw["clean_start"] = self.clean
            if self.session_expiry is not None:
                p = Properties(PacketTypes.CONNECT)
                p.SessionExpiryInterval = self.session_expiry
                kw["properties"] = p
        self.c.connect(self.host, self.port, self.keepalive, bind_address=self.bind, **kw)
        ip, port = self.c.socket().getsockname()[:2]
        self.addr = "%s:%d" % (ip, port)
        self.c.loop_start()
        self.started = True
        try:
            return self.connacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no CONNACK within %.1f s" % timeout) from None

    def subscribe(self, topic, qos=0, timeout=5):
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        try:
            got_mid, granted = self.subacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no SUBACK within %.1f s" % timeout) from None
        assert got_mid == mid
        return granted

    def publish(self, topic, payload, qos=0, retain=False, timeout=5, wait=True):
        info = self.c.publish(topic, payload, qos, retain)
        if wait:
            info.wait_for_publish(timeout)
            assert info.is_published(), "PUBLISH to %s not completed within %.1f s" % (topic, timeout)
        return info

    def message(self, timeout=5):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message within %.1f s" % timeout) from None

    def messages_n(self, n, timeout=5):
        deadline = time.monotonic() + timeout
        return [self.message(max(0.01, deadline - time.monotonic())) for _ in range(n)]

    def no_message(self, seconds):
        try:
            m = self.messages.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError("unexpected message on %s: %r" % (m.topic, m.payload[:60]))

    def wait_disconnect(self, timeout=5):
        """The rc paho reported when the connection ended (an MQTT 5 reason
        code when the server sent DISCONNECT; 7 = connection lost)."""
        try:
            return self.disconnects.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("still connected after %.1f s" % timeout) from None

    def still_connected(self):
        return not self.gone.is_set() and self.c.is_connected()

    def disconnect(self, reason=None):
        """A clean DISCONNECT (MQTT 5: with <reason>, e.g. 4 = with Will)."""
        if self.version == 5 and reason is not None:
            from paho.mqtt.reasoncodes import ReasonCodes
            rcode = ReasonCodes(PacketTypes.DISCONNECT, identifier=reason)
            self.c.disconnect(reasoncode=rcode)
        else:
            self.c.disconnect()

    def vanish(self):
        """Stops paho's loop and closes the socket without a DISCONNECT."""
        if self.started:
            self.c.loop_stop()
            self.started = False
        sock = self.c.socket()
        if sock:
            sock.close()

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        if self.started:
            self.c.loop_stop()
            self.started = False
        try:
            if self.c.socket():
                self.c.socket().close()
        except Exception:
            pass
