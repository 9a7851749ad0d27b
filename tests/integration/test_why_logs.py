"""`wirewarden why` over broker logs, alone and joined with the wire.

Mosquitto: the real logs recorded with their captures by tests/tools/record_fixtures.py
(tests/data/recorded/*.mosquitto.log, log_type all, log_timestamp_format %Y-%m-%dT%H:%M:%S),
and variants the tests derive from them here (rotated mid-session, shifted to another clock,
epoch timestamps, mosquitto 1.x wording). RabbitMQ 3.10: real logs recorded with their captures by
tests/tools/record_rabbitmq.py (tests/data/recorded-rabbitmq). AMPS and HiveMQ: the seeds' lines verbatim, with
lines of the same shapes around them; EMQX: its documented text log shape
(tests/data/brokerlogs/README.md says which line is which)."""
import glob
import json
import os
import re
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REC = os.path.join(TOP, "tests", "data", "recorded")
LOGS = os.path.join(TOP, "tests", "data", "brokerlogs")
RMQ = os.path.join(TOP, "tests", "data", "recorded-rabbitmq")
REC21 = os.path.join(TOP, "tests", "data", "recorded-mosquitto21")
REC16 = os.path.join(TOP, "tests", "data", "recorded-mosquitto16")
WW = os.environ.get("WIREWARDEN", os.path.join(TOP, "build", "wirewarden"))


def rec(name):
    return os.path.join(REC, name)


def why(*args, check=True):
    r = subprocess.run([WW, "why", *args], capture_output=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def objects(*args):
    return [json.loads(l) for l in why(*args, "--json").stdout.decode().splitlines()]


def sessions(*args):
    return [o for o in objects(*args) if o["type"] == "session"]


def kinds(s):
    return sorted(x["kind"] for x in s["sources"])


def log_time(path, sentence):
    """The timestamp (as written) of the first line of a recorded mosquitto log that holds <sentence>."""
    for line in open(path):
        if sentence in line:
            return line.split(": ", 1)[0]
    raise AssertionError("%s: no line with %r" % (path, sentence))


def seconds(ts):
    import calendar
    import time
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%S"))


def shifted(src, dst, delta_s):
    """A copy of a recorded mosquitto log with every timestamp moved by delta_s: another clock."""
    import datetime
    out = []
    for line in open(src):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d): ", line)
        if m:
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S") + datetime.timedelta(seconds=delta_s)
            line = t.strftime("%Y-%m-%dT%H:%M:%S") + line[len(m.group(1)):]
        out.append(line)
    dst.write_text("".join(out))
    return str(dst)


# ---- mosquitto with the wire: the sources agree ----

def test_keepalive_joined_and_agreeing():
    s = sessions("silent-v311", rec("v311-keepalive.pcap"), rec("v311-keepalive.mosquitto.log"))
    assert len(s) == 1
    s = s[0]
    assert kinds(s) == ["capture", "mosquitto log"]
    assert s["reason"] == "keepalive_timeout" and s["closed_by"] == "broker" and s["confidence"] == "stated"
    assert s["disagreements"] == []
    log = [x for x in s["sources"] if x["kind"] == "mosquitto log"][0]
    assert log["clock_offset_s"] == 0
    assert any("has exceeded timeout" in e for e in log["evidence"])
    assert s["client"].startswith("127.0.0.1:")


RECORDED = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(REC, "*.pcap")))


@pytest.mark.parametrize("scenario", RECORDED)
def test_every_recorded_scenario_joins_without_disagreeing(scenario):
    """Each connection mosquitto logged a close for is one entry with both sources, and where
    both name a reason they agree (mosquitto's log is the ground truth of these recordings)."""
    log = rec(scenario + ".mosquitto.log")
    # closes of named clients (a "<unknown>" one never sent a CONNECT the wire could name)
    closes = sum(1 for l in open(log) if re.search(
        r": Client (?!<unknown>)\S+ (disconnected|closed its|has exceeded|already connected|been disconnected)", l))
    objs = objects("*", rec(scenario + ".pcap"), log)
    entries = [o for o in objs if o["type"] == "session"]
    for o in entries:
        assert all("sources disagree" not in d and not d.startswith("broker log") for d in o["disagreements"]
                   if not d.startswith("timing")), o
    joined = [o for o in entries if kinds(o) == ["capture", "mosquitto log"]]
    storms = [o for o in objs if o["type"] == "takeover_storm"]
    assert joined or storms or closes == 0
    assert len(joined) + sum(o["count"] for o in storms) >= min(closes, len(entries)) - 1


def story(d, scenario):
    """What `why` says of every client of one recorded scenario, capture and log together, in an order
    that does not depend on ports or times: (client id, reason, closed by, sources, disagreements)."""
    out = []
    for o in objects("*", os.path.join(d, scenario + ".pcap"), os.path.join(d, scenario + ".mosquitto.log")):
        if o["type"] != "session":
            out.append(("storm", o["client_id"], o["count"]))
            continue
        dis = [x for x in o["disagreements"] if not x.startswith("timing")]
        out.append((o["client_id"], o["reason"], o["closed_by"], tuple(kinds(o)), tuple(dis)))
    return sorted(out)


OTHER_VERSIONS = {"2.1.2": REC21, "1.6.15": REC16}


@pytest.mark.parametrize("version", sorted(OTHER_VERSIONS))
def test_other_mosquitto_recordings_are_there(version):
    d = OTHER_VERSIONS[version]
    assert sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(d, "*.pcap"))) == RECORDED
    assert "mosquitto version " + version in open(os.path.join(d, "SOURCES.md")).read()


@pytest.mark.parametrize("version", sorted(OTHER_VERSIONS))
@pytest.mark.parametrize("scenario", RECORDED)
def test_other_mosquitto_version_tells_what_20_did(scenario, version):
    """The same scenarios recorded with mosquitto 2.1.2 and 1.6.15 read as their 2.0.11 recordings,
    every connection's capture and log joined and agreeing. 2.1 words its closes anew ("Client ID [A:P]
    disconnected: exceeded timeout.", no "already connected" line, a client without an id named by its
    ip, "Bad client A:P ..."). 1.6 names no client port: sessions of one id join by id, ip and time
    (a keep-alive close the zero window kept off the wire for seconds too), and a CONNECT it refused,
    which its log names by ip alone, has nothing to join the capture by: the capture tells it alone."""
    got = story(OTHER_VERSIONS[version], scenario)
    want = story(REC, scenario)
    if version == "1.6.15":
        want = sorted(e if e[0] == "storm" or e[1] not in ("auth_failed", "not_authorized") else
                      (e[0], e[1], e[2], ("capture",), e[4]) for e in want)
    assert got == want
    assert all(e[0] == "storm" or e[4] == () for e in got), got


def test_refused_connect_known_by_address_in_the_log_by_id_on_the_wire():
    # mosquitto logs "Client <unknown> disconnected, not authorised." and the socket's address;
    # the capture has the CONNECT with the id. They join on ip:port.
    s = sessions("badpw-v311", rec("v311-auth-refused.pcap"), rec("v311-auth-refused.mosquitto.log"))
    assert len(s) == 1 and kinds(s[0]) == ["capture", "mosquitto log"]
    assert s[0]["client_id"] == "badpw-v311" and s[0]["reason"] == "auth_failed"
    assert s[0]["disagreements"] == []  # a 3.1.1 CONNACK 5 is both not_authorized and auth_failed
    # and the log's anonymous closes do not show up as sessions of somebody else
    assert len(sessions("good-v311", rec("v311-auth-refused.pcap"), rec("v311-auth-refused.mosquitto.log"))) == 1


def test_broker_log_explains_what_the_wire_cannot():
    s = sessions("big-v311", rec("v311-packet-too-large.pcap"), rec("v311-packet-too-large.mosquitto.log"))[0]
    assert s["reason"] == "packet_too_large" and s["disagreements"] == []
    wire = [x for x in s["sources"] if x["kind"] == "capture"][0]
    assert wire["reason"] == "unknown"
    s = sessions("shut-a-v311", rec("v311-server-shutdown.pcap"), rec("v311-server-shutdown.mosquitto.log"))[0]
    assert s["reason"] == "server_shutdown"


def test_finer_words_win_the_headline():
    # mosquitto logs "Bad client ... sending multiple CONNECT messages." then "disconnected due to protocol error."
    s = sessions("bad-double-connect-v311", rec("v311-err-double-connect.pcap"),
                 rec("v311-err-double-connect.mosquitto.log"))[0]
    assert s["reason"] == "protocol_error_second_connect" and s["disagreements"] == []
    # "Client dashboard disconnected." is mosquitto's wording for a DISCONNECT 0x04 too
    s = [x for x in sessions("dashboard", rec("demo.pcap"), rec("demo.mosquitto.log"))][0]
    assert s["reason"] == "client_disconnect_with_will" and s["disagreements"] == []


def test_late_close_on_the_wire_is_noted():
    s = sessions("stuck-v311", rec("v311-slow-consumer.pcap"), rec("v311-slow-consumer.mosquitto.log"))
    assert len(s) == 1 and kinds(s[0]) == ["capture", "mosquitto log"]
    assert any(d.startswith("timing: the broker log closes it") for d in s[0]["disagreements"])


# ---- the sources disagree ----

def test_socket_error_against_the_wire(tmp_path):
    # the 1.x sentence for the same connection: "Socket error on client ..., disconnecting."
    text = open(rec("v311-keepalive.mosquitto.log")).read().replace(
        "Client silent-v311 has exceeded timeout, disconnecting.", "Socket error on client silent-v311, disconnecting.")
    log = tmp_path / "old-mosquitto.log"
    log.write_text(text)
    s = sessions("silent-v311", rec("v311-keepalive.pcap"), str(log))
    assert len(s) == 1
    s = s[0]
    assert s["reason"] == "keepalive_timeout"  # the wire's inference over the log's vague sentence
    assert len(s["disagreements"]) == 1
    d = s["disagreements"][0]
    assert d.startswith("broker log: client_vanished") and "wire: keepalive_timeout, closed by broker" in d
    out = why("silent-v311", rec("v311-keepalive.pcap"), str(log)).stdout.decode()
    assert "! sources disagree: broker log: client_vanished" in out and "keep-alive 2 s" in out


# ---- one source is missing ----

def test_log_alone_and_capture_alone():
    log = rec("v311-keepalive.mosquitto.log")
    s = sessions("silent-v311", log)
    assert len(s) == 1 and kinds(s[0]) == ["mosquitto log"] and s[0]["reason"] == "keepalive_timeout"
    opened, closed = log_time(log, "New client connected"), log_time(log, "exceeded timeout")
    assert s[0]["start"].startswith(opened) and s[0]["duration_s"] == seconds(closed) - seconds(opened)
    s = sessions("silent-v311", rec("v311-keepalive.pcap"), rec("v311-takeover.mosquitto.log"))
    assert len(s) == 1 and kinds(s[0]) == ["capture"]
    out = why("silent-v311", rec("v311-keepalive.pcap"), rec("v311-takeover.mosquitto.log")).stdout.decode()
    assert "no session seen by both this log and the wire" in out


def test_log_that_ends_with_the_session_open(tmp_path):
    lines = open(rec("v311-keepalive.mosquitto.log")).read().splitlines(True)
    log = tmp_path / "cut.log"
    log.write_text("".join(l for l in lines if "exceeded timeout" not in l))
    s = sessions("silent-v311", str(log))[0]
    assert s["reason"] == "still_open" and "ends" in s["evidence"][0]


# ---- clocks ----

def test_zoneless_log_in_another_time_zone(tmp_path):
    log = shifted(rec("v311-keepalive.mosquitto.log"), tmp_path / "cest.log", 2 * 3600)
    s = sessions("silent-v311", rec("v311-keepalive.pcap"), log)
    assert len(s) == 1 and kinds(s[0]) == ["capture", "mosquitto log"]
    src = [x for x in s[0]["sources"] if x["kind"] == "mosquitto log"][0]
    assert src["clock_offset_s"] == -7200
    assert "-02:00 applied" in src["clock"]
    assert "mosquitto: clock offset -02:00 applied" in why("silent-v311", rec("v311-keepalive.pcap"), log).stdout.decode()


def test_skewed_clock_measured_and_forced(tmp_path):
    log = shifted(rec("v5-pubsub.mosquitto.log"), tmp_path / "skew.log", 3600 + 37)
    s = sessions("v5-sub-a", rec("v5-pubsub.pcap"), log)
    src = [x for x in s[0]["sources"] if x["kind"] == "mosquitto log"][0]
    assert abs(src["clock_offset_s"] + 3637) < 1.5 and "the clocks differ" in src["clock"]
    assert kinds(s[0]) == ["capture", "mosquitto log"]
    s = sessions("v5-sub-a", rec("v5-pubsub.pcap"), log, "--clock-skew", "-3637")
    src = [x for x in s[0]["sources"] if x["kind"] == "mosquitto log"][0]
    assert src["clock_offset_s"] == -3637 and "--clock-skew" in src["clock"]
    # a wrong forced skew leaves the two apart: the log's session stands alone
    s = sessions("v5-sub-a", rec("v5-pubsub.pcap"), log, "--clock-skew", "0")
    assert sorted(kinds(x)[0] for x in s) == ["capture", "mosquitto log"]


def test_epoch_timestamps(tmp_path):
    import calendar
    import time
    out = []
    for line in open(rec("v311-keepalive.mosquitto.log")):
        t, rest = line.split(": ", 1)
        out.append("%d: %s" % (calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%S")), rest))
    log = tmp_path / "epoch.log"
    log.write_text("".join(out))
    s = sessions("silent-v311", rec("v311-keepalive.pcap"), str(log))
    assert len(s) == 1 and kinds(s[0]) == ["capture", "mosquitto log"]
    assert [x for x in s[0]["sources"] if x["kind"] == "mosquitto log"][0]["clock_offset_s"] == 0


# ---- logs as collectors pass them on: docker compose, docker -t, syslog ----

def stamp_s(line):
    return seconds(line.split(": ", 1)[0])


def wrapped(src, dst, how):
    """A recorded mosquitto log as a log collector would hand it over."""
    import time
    out = []
    for i, line in enumerate(open(src)):
        t, rest = line.split(": ", 1)
        secs = stamp_s(line)
        if how == "compose":  # docker compose logs, colours on, another service's lines between
            out.append("\x1b[36mmosquitto-1  | \x1b[0m%d: %s" % (secs, rest))
            if i % 3 == 0:
                out.append("\x1b[33mclient-1     | \x1b[0mpublishing %d\n" % i)
        elif how == "docker-t":  # docker logs -t over a broker that writes no time of its own
            out.append("%s.%09dZ %s" % (t, 123456789 + i, rest))
        elif how == "compose-docker-t":  # docker compose logs -t over log_timestamp true
            out.append("mosquitto-1  | %s.000000001Z %d: %s" % (t, secs, rest))
        elif how == "syslog":  # rsyslog's traditional file format (Debian's default), no year
            out.append("%s host mosquitto[812]: %s" % (time.strftime("%b %e %H:%M:%S", time.gmtime(secs)), rest))
        elif how == "docker-json":  # /var/lib/docker/containers/<id>/<id>-json.log, log_timestamp true
            out.append(json.dumps({"log": "%d: %s" % (secs, rest), "stream": "stderr",
                                   "time": "%s.%09dZ" % (t, 5000 + i)}) + "\n")
        elif how == "journal-json":  # journalctl -o json of mosquitto under systemd, log_timestamp false
            out.append(json.dumps({"__REALTIME_TIMESTAMP": str(secs * 1000000 + i), "_PID": "812",
                                   "MESSAGE": rest.rstrip("\n"), "SYSLOG_IDENTIFIER": "mosquitto"}) + "\n")
    dst.write_text("".join(out))
    return str(dst)


@pytest.mark.parametrize("how", ["compose", "docker-t", "compose-docker-t", "syslog", "docker-json", "journal-json"])
def test_collector_wrapped_log_reads_as_the_broker_wrote_it(tmp_path, how):
    src = rec("v311-keepalive.mosquitto.log")
    log = wrapped(src, tmp_path / ("%s.log" % how), how)
    if how == "syslog":  # the file was written the month its lines were: that dates them
        os.utime(log, (stamp_s(open(src).readline()) + 60,) * 2)
    s = sessions("silent-v311", rec("v311-keepalive.pcap"), log)
    assert len(s) == 1 and kinds(s[0]) == ["capture", "mosquitto log"], s
    assert s[0]["reason"] == "keepalive_timeout" and s[0]["disagreements"] == []
    src_log = [x for x in s[0]["sources"] if x["kind"] == "mosquitto log"][0]
    assert src_log["clock_offset_s"] == 0
    assert any("has exceeded timeout" in e and "|" not in e and "\x1b" not in e for e in src_log["evidence"])
    alone = sessions("silent-v311", log)
    assert len(alone) == 1 and alone[0]["reason"] == "keepalive_timeout"


def test_syslog_year_comes_from_the_file(tmp_path):
    """A traditional syslog stamp has no year: it is the latest year that puts the line no later than
    the file's last write (November lines in a file written the next January are last year's)."""
    import time
    src = rec("v311-keepalive.mosquitto.log")
    log = wrapped(src, tmp_path / "syslog.log", "syslog")
    year = time.gmtime(stamp_s(open(src).readline())).tm_year

    def offset(mtime):
        os.utime(log, (mtime,) * 2)
        s = sessions("silent-v311", rec("v311-keepalive.pcap"), log)
        assert len(s) == 1 and kinds(s[0]) == ["capture", "mosquitto log"]
        return [x for x in s[0]["sources"] if x["kind"] == "mosquitto log"][0]["clock_offset_s"]

    assert offset(calendar_s(year, 12, 31)) == 0
    assert offset(calendar_s(year + 1, 1, 5)) == 0
    # written in the December after: read as next year's November, a year off the wire's clock
    assert abs(offset(calendar_s(year + 1, 12, 5)) + 365 * 86400) <= 86400


def calendar_s(y, m, d):
    import calendar
    return calendar.timegm((y, m, d, 12, 0, 0, 0, 0, 0))


def test_compose_wrapped_rabbitmq_log(tmp_path):
    src = os.path.join(RMQ, "keepalive.rabbitmq.log")
    log = tmp_path / "compose.log"
    log.write_text("".join("rabbitmq-1  | " + l for l in open(src)))
    s = sessions("rmq-keepalive", os.path.join(RMQ, "keepalive.pcap"), str(log))
    assert len(s) == 1 and kinds(s[0]) == ["capture", "rabbitmq log"]
    assert s[0]["reason"] == "keepalive_timeout" and s[0]["disagreements"] == []


# ---- a log rotated mid-session ----

def test_rotated_log_joins_one_session(tmp_path):
    lines = open(rec("v311-keepalive.mosquitto.log")).read().splitlines(True)
    cut = next(i for i, l in enumerate(lines) if "Sending CONNACK" in l) + 1
    old, new = tmp_path / "mosquitto.log.1", tmp_path / "mosquitto.log"
    old.write_text("".join(lines[:cut]))
    new.write_text("".join(lines[cut:]))
    # given newest first, as a shell glob would: the files are put in time order
    s = sessions("silent-v311", rec("v311-keepalive.pcap"), str(new), str(old))
    assert len(s) == 1
    src = [x for x in s[0]["sources"] if x["kind"] == "mosquitto log"][0]
    assert src["source"] == str(old) and src["source_end"] == str(new)
    assert src["reason"] == "keepalive_timeout"
    assert src["start"].startswith(log_time(rec("v311-keepalive.mosquitto.log"), "New client connected"))
    assert "rotated" in why("silent-v311", str(new), str(old)).stdout.decode()


# ---- selection, storms, context ----

def test_address_selects_the_joined_session():
    cap = rec("v311-keepalive.pcap")
    client = sessions("silent-v311", cap)[0]["client"]
    s = sessions(client, cap, rec("v311-keepalive.mosquitto.log"))
    assert len(s) == 1 and kinds(s[0]) == ["capture", "mosquitto log"]


def test_takeover_storm_is_one_entry():
    objs = objects("twin-v311", rec("v311-takeover-storm.pcap"), rec("v311-takeover-storm.mosquitto.log"))
    storms = [o for o in objs if o["type"] == "takeover_storm"]
    assert len(storms) == 1
    st = storms[0]
    assert st["count"] == 7 and sorted(st["clients"]) == ["127.0.0.2", "127.0.0.3"]
    assert sorted(x["kind"] for x in st["sources"]) == ["capture", "mosquitto log"]
    assert [o["reason"] for o in objs if o["type"] == "session"] == ["client_disconnect"]
    out = why("twin-v311", rec("v311-takeover-storm.pcap"), rec("v311-takeover-storm.mosquitto.log")).stdout.decode()
    assert "TAKE-OVER STORM (7 take-overs)" in out and len(out.splitlines()) < 20


def test_since_until():
    args = ["sensor-*", rec("demo.pcap"), rec("demo.mosquitto.log")]
    every = sessions(*args)
    ends = sorted(s["end"] for s in every)
    assert len(ends) >= 3
    later = sessions(*args, "--since", ends[1])
    assert len(later) == len([e for e in ends if e >= ends[1]])
    earlier = sessions(*args, "--until", "2000-01-01")
    assert earlier == []
    assert why(*args, "--since", "yesterday", check=False).returncode == 2


def test_unknown_line_naming_the_client_is_kept(tmp_path):
    import time
    src = rec("v311-keepalive.mosquitto.log")
    lines = open(src).read().splitlines(True)
    during = log_time(src, "Sending CONNACK")
    after = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds(log_time(src, "exceeded timeout")) + 120))
    lines.insert(4, during + ": Plugin says silent-v311 looks sleepy today.\n")
    lines.append(after + ": Plugin says silent-v311 was seen again.\n")
    log = tmp_path / "plugin.log"
    log.write_text("".join(lines))
    objs = objects("silent-v311", str(log))
    s = [o for o in objs if o["type"] == "session"][0]
    assert any("looks sleepy" in e for e in s["evidence"])
    ctx = [o for o in objs if o["type"] == "context"]
    assert len(ctx) == 1 and "seen again" in ctx[0]["text"]
    assert "other lines naming silent-v311" in why("silent-v311", str(log)).stdout.decode()


# ---- AMPS, HiveMQ, EMQX ----

def test_amps_seed_lines():
    amps = os.path.join(LOGS, "amps.log")
    by = {}
    for s in sessions("*", amps):
        by.setdefault(s["client_id"], []).append(s)
    assert by["sleepy-client"][0]["reason"] == "slow_consumer" and by["sleepy-client"][0]["confidence"] == "stated"
    assert by["no-heartbeat-client"][0]["reason"] == "keepalive_timeout"
    assert [s["reason"] for s in by["my-name"]] == ["client_vanished", "session_taken_over"]
    assert by["amps-json-tcp-18"][0]["reason"] == "listener_disabled"
    assert by["amps-json-tcp-18"][0]["confidence"] == "inferred"
    assert by["early-bird"][0]["reason"] == "unknown"  # AMPS logs no reason when it did not act
    ctx = [o for o in objects("my-name", amps) if o["type"] == "context"]
    assert len(ctx) == 1 and "99-0001" in ctx[0]["text"]
    assert sessions("*", amps)[0]["end"].startswith("2019-11-20T23:30:00.1")  # -08:00 applied


def test_hivemq_event_and_main_logs():
    ev, main = os.path.join(LOGS, "event.log"), os.path.join(LOGS, "hivemq.log")
    by = {}
    for s in sessions("*", ev, main):
        by.setdefault(s["client_id"], []).append(s)
    assert [s["reason"] for s in by["abc"]] == ["receive_maximum_exceeded", "protocol_error_second_connect"]
    assert all(s["closed_by"] == "broker" for s in by["abc"])
    assert by["lost-one"][0]["reason"] == "client_vanished"
    assert by["xxxx"][0]["reason"] == "credentials_expired"  # the reason is in hivemq.log, the close in event.log
    assert by["polite"][0]["reason"] == "client_disconnect"
    assert "UNKNOWN" not in by and "" not in by
    assert sessions("xxxx", ev)[0]["reason"] == "client_vanished"  # without hivemq.log, no reason


def test_hivemq_ce_closes_are_one_line(tmp_path):
    """HiveMQ CE writes a broker's close as its "was disconnected" line and nothing after it
    (logging/EventLog.java, bootstrap/ClientState.java); a shutdown closes every connection with an
    "ungracefully" line after hivemq.log's "Shutting down HiveMQ"."""
    ev, main = tmp_path / "event.log", tmp_path / "hivemq.log"
    ev.write_text(
        "2026-11-24 05:00:00,000 - Client ID: idle, IP: 10.0.0.7, Clean Start: true, Session Expiry: 0 connected.\n"
        "2026-11-24 05:00:01,000 - Client ID: twin, IP: 10.0.0.8, Clean Start: true, Session Expiry: 0 connected.\n"
        "2026-11-24 05:00:02,000 - Client ID: twin, IP: 10.0.0.9, Clean Start: true, Session Expiry: 0 connected.\n"
        "2026-11-24 05:00:02,001 - Client ID: twin, IP: 10.0.0.8 was disconnected. reason: "
        "Another client connected with the same client id..\n"
        "2026-11-24 05:00:03,000 - Client ID: stay, IP: 10.0.0.10, Clean Start: true, Session Expiry: 0 connected.\n"
        "2026-11-24 05:01:30,000 - Client ID: idle, IP: 10.0.0.7 was disconnected. reason: Client was idle for too long.\n"
        "2026-11-24 05:02:00,100 - Client ID: twin, IP: 10.0.0.9 disconnected ungracefully from TCP Listener on port: 1883.\n"
        "2026-11-24 05:02:00,100 - Client ID: stay, IP: 10.0.0.10 disconnected ungracefully from TCP Listener on port: 1883.\n")
    main.write_text(
        "2026-11-24 04:59:00,000 INFO  - Starting HiveMQ Community Edition Server\n"
        "2026-11-24 05:02:00,000 INFO  - Shutting down HiveMQ. Please wait, this could take a while...\n"
        "2026-11-24 05:02:01,000 INFO  - Shutdown completed.\n")
    got = [(s["client_id"], s["reason"], s["closed_by"]) for s in sessions("*", str(ev), str(main))]
    assert sorted(got) == [("idle", "keepalive_timeout", "broker"), ("stay", "server_shutdown", "broker"),
                           ("twin", "server_shutdown", "broker"), ("twin", "session_taken_over", "broker")], got
    # event.log alone cannot see the shutdown: the connections were lost, as far as it says
    alone = {(s["client_id"], s["reason"]) for s in sessions("*", str(ev))}
    assert ("stay", "client_vanished") in alone and ("idle", "keepalive_timeout") in alone


def test_a_log_that_leaves_closes_out_says_how_to_get_them(tmp_path):
    """EMQX logs at warning by default, where its terminate lines are not written; HiveMQ writes
    sessions to event.log only. A log of either with no close line at all says so."""
    emqx = tmp_path / "emqx.log"
    emqx.write_text("2026-11-24T13:34:10.462225+08:00 [warning] tag: AUTHN, clientid: c1, msg: authentication_failure, "
                    "peername: 127.0.0.1:51234, username: alice, reason: bad_username_or_password\n")
    out = why("c1", str(emqx)).stdout.decode()
    assert "emqx ctl log set-level info" in out
    assert "set-level" not in why("c1", os.path.join(LOGS, "emqx.log")).stdout.decode()
    assert "pass event.log" in why("xxxx", os.path.join(LOGS, "hivemq.log")).stdout.decode()
    assert "pass event.log" not in why("xxxx", os.path.join(LOGS, "hivemq.log"),
                                       os.path.join(LOGS, "event.log")).stdout.decode()
    # the shutdown line such logs do have is not a close
    main = tmp_path / "hivemq.log"
    main.write_text(open(os.path.join(LOGS, "hivemq.log")).read() +
                    "2020-09-14 12:00:00,000 INFO  - Shutting down HiveMQ. Please wait, this could take a while...\n")
    assert "pass event.log" in why("xxxx", str(main)).stdout.decode()
    with open(emqx, "a") as f:
        f.write("2026-11-24T13:36:13.331096+08:00 [critical] msg: received_terminate_signal\n")
    assert "emqx ctl log set-level info" in why("c1", str(emqx)).stdout.decode()


def test_emqx_lines():
    by = {}
    for s in sessions("c*", os.path.join(LOGS, "emqx.log")):
        by.setdefault(s["client_id"], []).append(s["reason"])
    assert by == {"c1": ["keepalive_timeout", "session_taken_over", "client_disconnect"],
                  "c2": ["client_vanished"], "c3": ["admin_disconnect"]}


# ---- RabbitMQ 3.10, recorded: its log and the wire, one entry per connection ----

# What RabbitMQ 3.10.8 did in each recorded scenario, as its log says (SOURCES.md): a second CONNECT
# and a packet of the reserved type 0 are ignored (the client then closes), a v5 CONNECT is a frame
# it cannot parse, and close_all_connections crashes the MQTT reader (the log gives no reason).
RMQ_EXPECTED = {
    "clean": {"rmq-clean": ("client_disconnect", "client"), "rmq-clean31": ("client_disconnect", "client")},
    "vanished": {"rmq-vanish-fin": ("client_vanished", "client"), "rmq-vanish-rst": ("client_vanished", "client")},
    "keepalive": {"rmq-keepalive": ("keepalive_timeout", "broker")},
    "takeover": {"rmq-twin": ("session_taken_over", "broker")},
    "auth": {"rmq-badpw": ("auth_failed", "broker"), "rmq-nouser": ("auth_failed", "broker"),
             "rmq-noperm": ("not_authorized", "broker")},
    "second-connect": {"rmq-double": ("client_vanished", "client")},
    "malformed": {"rmq-reserved": ("client_vanished", "client")},
    "v5": {"rmq-v5": ("malformed_packet", "broker")},
    "admin": {"rmq-kicked": ("unknown", "broker")},
    "shutdown": {"rmq-stay-1": ("server_shutdown", "broker"), "rmq-stay-2": ("server_shutdown", "broker")},
}


@pytest.mark.parametrize("scenario", sorted(RMQ_EXPECTED))
def test_rabbitmq_recorded_sessions(scenario):
    pcap, log = os.path.join(RMQ, scenario + ".pcap"), os.path.join(RMQ, scenario + ".rabbitmq.log")
    entries = sessions("rmq-*", pcap, log)
    want = RMQ_EXPECTED[scenario]
    firsts = {}
    for s in entries:
        assert kinds(s) == ["capture", "rabbitmq log"], s  # every connection joined, by id and ip:port
        assert s["disagreements"] == [] or all(d.startswith("timing") for d in s["disagreements"]), s
        firsts.setdefault(s["client_id"], s)
    assert set(firsts) == set(want)
    for cid, (reason, by) in want.items():
        assert (firsts[cid]["reason"], firsts[cid]["closed_by"]) == (reason, by), firsts[cid]
    # the log alone tells the same of the clients it names (a refused CONNECT it names by address only)
    alone = {}
    for s in sessions("rmq-*", log):
        alone.setdefault(s["client_id"], s)
    text = open(log).read()
    assert set(alone) == {cid for cid in want if cid in text}
    for cid in alone:
        assert alone[cid]["reason"] == want[cid][0], alone[cid]


def test_rabbitmq_takeover_both_sessions_and_stated_words():
    entries = sessions("rmq-twin", os.path.join(RMQ, "takeover.pcap"), os.path.join(RMQ, "takeover.rabbitmq.log"))
    assert [s["reason"] for s in entries] == ["session_taken_over", "client_disconnect"]
    log = [x for x in entries[0]["sources"] if x["kind"] == "rabbitmq log"][0]
    assert any("with duplicate id 'rmq-twin'" in e for e in log["evidence"])


def test_rabbitmq_login_timeout_found_by_address():
    """A TCP connection that never sent CONNECT: the log names its address only."""
    log = os.path.join(RMQ, "login-timeout.rabbitmq.log")
    addr = re.search(r'"(\d+\.\d+\.\d+\.\d+:\d+) -> ', open(log).read()).group(1)
    s = sessions(addr, log)
    assert len(s) == 1 and s[0]["reason"] == "connect_timeout" and s[0]["closed_by"] == "broker"


def test_rabbitmq_format_detected_and_forced():
    log = os.path.join(RMQ, "keepalive.rabbitmq.log")
    assert "rabbitmq log" in why("rmq-keepalive", log).stdout.decode()
    assert sessions("rmq-keepalive", "--format", "rabbitmq", log)[0]["reason"] == "keepalive_timeout"


# ---- --summary ----

def test_summary_per_source():
    out = [json.loads(l) for l in why("--summary", "--json", rec("demo.pcap"), rec("demo.mosquitto.log"),
                                      os.path.join(LOGS, "amps.log")).stdout.decode().splitlines()]
    by = {o["kind"]: o for o in out}
    assert set(by) == {"capture", "mosquitto log", "amps log"}
    for k in ("capture", "mosquitto log"):
        assert by[k]["reasons"]["keepalive_timeout"] >= 1 and by[k]["reasons"]["session_taken_over"] >= 1
        assert {"client_id": "sensor-2", "disconnects": 2} in by[k]["top_clients"]
    amps = by["amps log"]
    assert amps["disconnects"] == 7 and amps["top_clients"][0] == {"client_id": "my-name", "disconnects": 2}
    # the lines before a bare 07-0013 say why, as in the session view
    assert amps["reasons"] == {"unknown": 1, "slow_consumer": 1, "listener_disabled": 2, "client_vanished": 1,
                               "session_taken_over": 1, "keepalive_timeout": 1}
    text = why("--summary", rec("demo.pcap")).stdout.decode()
    assert "clients that disconnect most:" in text and "W2101" in text
    assert why("--summary", check=False).returncode == 2


# ---- bad input ----

def test_bad_input_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 64)
    r = why("x", str(junk), check=False)
    assert r.returncode == 2 and b"not a capture" in r.stderr
    assert why("x", str(tmp_path / "missing.log"), check=False).returncode == 2
    assert why("x", str(junk), "--format", "nats", check=False).returncode == 2
    # a mosquitto-shaped log with a 3 MB line and binary noise: read, no crash
    log = tmp_path / "long.log"
    with open(log, "wb") as f:
        f.write(open(rec("v311-keepalive.mosquitto.log"), "rb").read())
        f.write(b"2026-11-23T20:12:22: " + b"A" * (3 << 20) + b"\n")
        f.write(b"2026-11-23T20:12:23: Client \xff\x00\x1b[31m disconnected.\n")
    r = why("*", str(log))
    assert b"over-long" in r.stderr
    assert "keepalive_timeout" in r.stdout.decode()
    # --format forces a reader: a mosquitto log read as AMPS has no sessions
    assert sessions("*", rec("v311-keepalive.mosquitto.log"), "--format", "amps") == []


# ---- AMPS-shaped logs of the AMPS test peer (branch ampspeer), when this tree has them ----

AMPS_REC = os.path.join(TOP, "tests", "data", "recorded-amps")
PEER_LOGS = sorted(glob.glob(os.path.join(AMPS_REC, "*.amps-peer.log")))
# the peer's reason words (its PEER-0013 ground truth) as the AMPS log alone can tell them
TRUTH = {"name in use": "name_in_use", "heartbeat": "keepalive_timeout", "auth failure": "auth_failed",
         "entitlement reset": "credentials_expired", "unknown command": "unknown_command",
         "not entitled": "not_authorized", "slow client": "slow_consumer", "transport disabled": "listener_disabled",
         # AMPS logs nothing more than 07-0013 for these: the log alone cannot say
         "admin disconnect": "unknown", "connection closed": "unknown"}


@pytest.mark.skipif(not PEER_LOGS, reason="no tests/data/recorded-amps in this tree (branch ampspeer)")
@pytest.mark.parametrize("path", PEER_LOGS, ids=[os.path.basename(p) for p in PEER_LOGS])
def test_amps_peer_logs_read_as_the_peer_says(path):
    truth = re.findall(r"PEER-0013 client\[([^\]]*)\] from \S+ closed by (\w+), reason\[([^\]]*)\]", open(path).read())
    objs = objects("*", path)
    got = sorted((o["client_id"], o["reason"]) for o in objs if o["type"] == "session")
    storms = {o["client_id"]: o["count"] for o in objs if o["type"] == "takeover_storm"}
    text = open(path).read()
    # "name in use" after a 02-0025 naming that client: the same user's new logon took the old one over
    want = sorted((c, "session_taken_over" if r == "name in use" and "client[%s] with user id" % c in text
                   else TRUTH[r]) for c, by, r in truth)
    for c, n in storms.items():  # a storm entry stands for its take-overs
        for _ in range(n):
            want.remove((c, "session_taken_over"))
    assert got == want


# ---- three sources; a proxy between client and broker ----

def sniff_json(cap, out):
    subprocess.run([WW, "sniff", "-r", cap, "--json", str(out)], check=True, capture_output=True, timeout=60)
    return str(out)


def test_capture_its_event_log_and_the_broker_log_are_one_entry(tmp_path):
    cap = rec("v311-keepalive.pcap")
    ev = sniff_json(cap, tmp_path / "sniff.jsonl")
    s = sessions("silent-v311", cap, ev, rec("v311-keepalive.mosquitto.log"))
    assert len(s) == 1 and kinds(s[0]) == ["capture", "event log", "mosquitto log"]
    assert s[0]["joined_by"] == "address, client id and time" and s[0]["disagreements"] == []


def test_different_addresses_join_by_id_and_time_and_say_so(tmp_path):
    # the client side of a proxy: the same connection seen from another ip:port than the broker's log saw
    cap = rec("v311-keepalive.pcap")
    lines = open(sniff_json(cap, tmp_path / "sniff.jsonl")).read()
    client = sessions("silent-v311", cap)[0]["client"]
    ev = tmp_path / "client-side.jsonl"
    ev.write_text(lines.replace(client, "127.0.0.9:40000"))
    s = sessions("silent-v311", str(ev), rec("v311-keepalive.mosquitto.log"))
    assert len(s) == 1 and kinds(s[0]) == ["event log", "mosquitto log"]
    assert s[0]["joined_by"] == "client id and time"
    assert "joined by client id and time only" in why("silent-v311", str(ev), rec("v311-keepalive.mosquitto.log")).stdout.decode()
    # but never across a take-over storm's twins: there every connection has its own port on both sides
    objs = objects("twin-v311", rec("v311-takeover-storm.pcap"), rec("v311-takeover-storm.mosquitto.log"))
    assert all(o.get("joined_by") != "client id and time" for o in objs)


AMPS_CAPS = sorted(glob.glob(os.path.join(AMPS_REC, "*.pcap")))


@pytest.mark.skipif(not AMPS_CAPS, reason="no tests/data/recorded-amps in this tree")
@pytest.mark.parametrize("cap", AMPS_CAPS, ids=[os.path.basename(p)[:-5] for p in AMPS_CAPS])
def test_amps_capture_and_its_log_join(cap):
    """Each AMPS connection the peer logged is one entry with the capture (run with --amps-port) and the
    log side by side. They agree, except where the log is finer than the wire can be: a disabled
    transport closes its clients all at once, which on the wire looks like a shutdown."""
    log = cap[:-5] + ".amps-peer.log"
    port = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log).read()).group(1)
    objs = objects("*", cap, log, "--amps-port", port)
    entries = [o for o in objs if o["type"] == "session"]
    assert entries
    for o in entries:
        assert kinds(o) == ["amps log", "capture"], o
        if "transport-disabled" in cap:
            assert o["reason"] == "listener_disabled"
            assert o["disagreements"][0].startswith("broker log: listener_disabled") and "wire: server_shutdown" in \
                o["disagreements"][0]
        else:
            assert o["disagreements"] == [], o
    if "malformed-header" in cap:  # "unknown command" in the log, the wire names it more finely
        assert entries[0]["reason"] == "malformed_packet"
    if "takeover-storm" in cap:
        storm = [o for o in objs if o["type"] == "takeover_storm"]
        assert len(storm) == 1 and storm[0]["count"] == 6
        assert sorted(x["kind"] for x in storm[0]["sources"]) == ["amps log", "capture"]
