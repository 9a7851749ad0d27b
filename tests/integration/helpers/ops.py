"""What the operations tests (test_ops_*.py) need beyond the proxy fixtures:
an HTTP client (curl, the real one), a Prometheus text parser, and a small
PKI made with the openssl CLI (CA, server and client certificates, expired
ones, ones from another CA)."""
import datetime
import os
import re
import shutil
import subprocess
from pathlib import Path

CURL = shutil.which("curl") or "/usr/bin/curl"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def curl(url, method="GET", token=None, timeout=10, headers=()):
    """(status, body text) of one request made by curl."""
    args = [CURL, "-sS", "-X", method, "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}"]
    if token is not None:
        args += ["-H", "Authorization: Bearer %s" % token]
    for h in headers:
        args += ["-H", h]
    p = subprocess.run(args + [url], capture_output=True, timeout=timeout + 5)
    out = p.stdout.decode(errors="replace")
    body, _, code = out.rpartition("\n")
    if p.returncode != 0:
        return 0, p.stderr.decode(errors="replace")
    return int(code), body


# ---- Prometheus text format 0.0.4, strictly ----

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(r"^(%s)(\{(%s(?:,%s)*)?\})? (\S+)$" % (_NAME, _LABEL, _LABEL))


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}; raises AssertionError on anything
    the exposition format does not allow: a sample before its TYPE, a TYPE
    given twice, a bad label, a value that is not a float, a histogram whose
    buckets are not cumulative or lack +Inf, _count != the +Inf bucket."""
    types, samples = {}, {}
    assert text.endswith("\n"), "the exposition must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert name not in types, "line %d: TYPE of %s given twice" % (n, name)
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = typ
            continue
        assert not line.startswith("#") and line.strip() == line and line, "line %d: %r" % (n, line)
        m = _SAMPLE.match(line)
        assert m, "line %d is not a sample: %r" % (n, line)
        name = m.group(1)
        labels = frozenset(re.findall(_LABEL, m.group(3) or ""))
        value = float(m.group(8))  # ValueError on a bad value
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, "line %d: %s has no TYPE before it" % (n, name)
        if name in types and types[name] == "counter":
            assert name.endswith("_total"), "counter %s must end in _total" % name
        key = (name, labels)
        assert key not in samples, "line %d: sample given twice" % n
        samples[key] = value
    for name, typ in types.items():
        if typ != "histogram":
            continue
        buckets = sorted(((float(dict(l)["le"]), v) for (nm, l), v in samples.items() if nm == name + "_bucket"))
        assert buckets and buckets[-1][0] == float("inf"), "%s: no +Inf bucket" % name
        vals = [v for _, v in buckets]
        assert vals == sorted(vals), "%s: buckets not cumulative" % name
        assert samples[(name + "_count", frozenset())] == vals[-1], "%s: _count != +Inf bucket" % name
        assert (name + "_sum", frozenset()) in samples
    return samples


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


# ---- a PKI ------------------------------------------------------------------

CA_CNF = """[ ca ]
default_ca = ca_default
[ ca_default ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
certificate = {dir}/ca.crt
private_key = {dir}/ca.key
serial = {dir}/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = copy
email_in_dn = no
[ policy_any ]
commonName = supplied
"""


def _run(*args):
    subprocess.run([OPENSSL] + [str(a) for a in args], check=True, capture_output=True, timeout=60)


def gtime(dt):
    return dt.strftime("%Y%m%d%H%M%SZ")


class CA:
    """A certificate authority in <dir>; issue() makes keys and certificates."""

    def __init__(self, dir, name="wirewarden test CA"):
        self.dir = Path(dir)
        (self.dir / "newcerts").mkdir(parents=True, exist_ok=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("%s\n" % os.urandom(8).hex())
        (self.dir / "ca.cnf").write_text(CA_CNF.format(dir=self.dir))
        self.key, self.cert = self.dir / "ca.key", self.dir / "ca.crt"
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key,
             "-out", self.cert, "-days", "30", "-subj", "/CN=%s" % name)

    def issue(self, stem, cn, san=None, not_before=None, not_after=None):
        """(cert path, key path) for <cn>; validity from <not_before> to
        <not_after> (datetimes, UTC; default: yesterday to in 10 days)."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        nb = not_before or now - datetime.timedelta(days=1)
        na = not_after or now + datetime.timedelta(days=10)
        key, csr, crt = (self.dir / (stem + ext) for ext in (".key", ".csr", ".crt"))
        req = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
               "-out", csr, "-subj", "/CN=%s" % cn]
        if san:
            req += ["-addext", "subjectAltName=%s" % san]
        _run(*req)
        _run("ca", "-batch", "-config", self.dir / "ca.cnf", "-in", csr, "-out", crt, "-notext",
             "-startdate", gtime(nb), "-enddate", gtime(na))
        return crt, key


def server_tls(ca, stem="server", cn="localhost"):
    crt, key = ca.issue(stem, cn, san="DNS:localhost,IP:127.0.0.1")
    return {"cert": str(crt), "key": str(key)}
