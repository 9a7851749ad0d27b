"""Policy takeover: a CONNECT with a client id already connected through the
proxy is a take-over (session_taken_over; mosquitto closes the old
connection). storm_count take-overs within storm_window from two or more
source addresses are a storm (takeover_storm: two instances share one id);
enforce refuses the newest source's CONNECTs for the cooldown (CONNACK 0x9F,
3.1.1 return code 2; reason takeover_storm_refused). The twins connect from
127.0.0.2 and 127.0.0.3."""
import pytest

from helpers.expect import enforced, would

A, B = "127.0.0.2", "127.0.0.3"


def storm(mode):
    return {"policies": {"takeover": {"mode": mode, "storm_count": 3, "storm_window": "20s", "cooldown": "5s"}}}


def twin(raw, port, ip, cid, level):
    r = raw(port, bind=ip)
    return r, r.mqtt_connect(cid, level=level)[1]


def take_over_twice(px, raw, cid, level):
    """A connects, B takes over, A takes over again: two take-overs from two
    sources. Returns A's live connection."""
    a1, code = twin(raw, px.port, A, cid, level)
    assert code == 0
    b1, code = twin(raw, px.port, B, cid, level)
    assert code == 0
    a1.wait_closed()
    a2, code = twin(raw, px.port, A, cid, level)
    assert code == 0
    b1.wait_closed()
    for old in (a1, b1):
        d = px.disconnect_of(old.addr)
        assert (d["reason"], d["closed_by"]) == ("session_taken_over", "broker")
    assert len(px.wait_events("session_taken_over", 2, client_id=cid)) == 2
    return a2


@pytest.mark.parametrize("level,refusal", [(4, 2), (5, 0x9F)], ids=["mqtt311", "mqtt5"])
def test_takeover_storm_enforce_refuses_the_newest_source(broker, proxy, raw, level, refusal):
    px = proxy(broker.port, config=storm("enforce"))
    cid = "twin-enf-%d" % level
    a2 = take_over_twice(px, raw, cid, level)
    b2, code = twin(raw, px.port, B, cid, level)  # third take-over: the storm
    assert code == refusal
    assert b2.wait_closed() == []
    st = px.wait_event("takeover_storm", client_id=cid)
    assert (st["count"], st["policy"], st["mode"]) == (3, "takeover", "enforce")
    assert B in st["detail"] and A in st["detail"]
    d = px.disconnect_of(b2.addr)
    enforced(d, "takeover_storm_refused", "takeover")
    # the twin already connected keeps its session; the newest source stays refused
    assert a2.is_open_for(0.3)
    b3, code = twin(raw, px.port, B, cid, level)
    assert code == refusal
    enforced(px.disconnect_of(b3.addr), "takeover_storm_refused", "takeover")
    assert a2.is_open_for(0.1)
    assert not px.settled_events("disconnect", client=a2.addr)


def test_takeover_storm_observe_reports_and_lets_it_happen(broker, proxy, raw):
    px = proxy(broker.port, config=storm("observe"))
    cid = "twin-obs"
    a2 = take_over_twice(px, raw, cid, 4)
    b2, code = twin(raw, px.port, B, cid, 4)
    assert code == 0  # observe: the third take-over goes through
    st = px.wait_event("takeover_storm", client_id=cid)
    assert (st["count"], st["mode"]) == (3, "observe")
    w = would(px, "takeover_storm_refused", "takeover", wire=0x9F)
    assert w["client"] == b2.addr
    a2.wait_closed()
    d = px.disconnect_of(a2.addr)
    assert (d["reason"], d["closed_by"]) == ("session_taken_over", "broker")


def test_takeovers_from_one_source_are_not_a_storm(broker, proxy, raw):
    """A client that reconnects from the same address is not two instances."""
    px = proxy(broker.port, config=storm("enforce"))
    cid = "restarting"
    prev = None
    for _ in range(4):
        r, code = twin(raw, px.port, A, cid, 4)
        assert code == 0
        if prev:
            prev.wait_closed()
        prev = r
    assert len(px.wait_events("session_taken_over", 3, client_id=cid)) == 3
    assert not px.settled_events("takeover_storm")
