"""Assertions shared by the proxy tests, on fields of the JSON event sink."""
from .procs import catalog

_EVENTS, _REASONS = catalog()


def reason_id(reason):
    return _REASONS[reason]


def enforced(d, reason, policy):
    """<d> is the disconnect of a connection that policy <policy> ended in
    enforce mode for <reason>."""
    assert d["name"] == "disconnect", d
    got = {k: d.get(k) for k in ("reason", "closed_by", "policy", "mode", "id")}
    want = {"reason": reason, "closed_by": "proxy", "policy": policy, "mode": "enforce", "id": _REASONS[reason]}
    assert got == want, "disconnect %s, expected %s" % (got, want)
    assert d.get("evidence"), "enforced disconnect without evidence: %s" % d


def would(px, reason, policy, wire=None, timeout=5, **fields):
    """Waits for the would_disconnect of <policy> for <reason> (observe mode)."""
    w = px.wait_event("would_disconnect", timeout=timeout, reason=reason, policy=policy, **fields)
    assert w["mode"] == "observe", w
    assert w["id"] == _EVENTS["would_disconnect"], w
    if wire is not None:
        assert w["wire_reason"] == wire, w
    return w


def not_by_proxy(d):
    """A disconnect that no policy enforced (observe mode changes nothing)."""
    assert d["closed_by"] != "proxy", d
    assert d.get("mode") != "enforce", d
