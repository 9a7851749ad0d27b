"""Deployment (issue 6): `make install` into a DESTDIR, the man pages
rendered by man -l, the systemd units checked by systemd-analyze verify and
scored by systemd-analyze security, the Dockerfile's runtime packages
against the binary's NEEDED libraries, and the Kubernetes example's and
README's configurations loaded by the real binary."""
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.procs import BINARY, TOP

BUILD = Path(BINARY).resolve().parent
DEPLOY = TOP / "deploy"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if not (BUILD / "Makefile").exists():
        pytest.skip("$WIREWARDEN is not in a configured build tree (no Makefile beside it)")
    dest = tmp_path_factory.mktemp("destdir")
    p = subprocess.run(["make", "-C", str(BUILD), "install", "DESTDIR=%s" % dest], capture_output=True, timeout=600)
    assert p.returncode == 0, p.stdout.decode()[-2000:] + p.stderr.decode()[-2000:]
    return dest


def one(dest, pattern):
    found = glob.glob(str(dest) + pattern, recursive=True)
    assert len(found) == 1, (pattern, found)
    return Path(found[0])


def test_make_install_puts_binary_man_pages_and_example_config(installed):
    exe = one(installed, "/**/bin/wirewarden")
    assert os.access(exe, os.X_OK)
    assert subprocess.run([str(exe), "proxy", "--help"], capture_output=True, timeout=10).returncode == 0
    one(installed, "/**/share/man/man8/wirewarden.8")
    one(installed, "/**/share/man/man5/wirewarden.yaml.5")
    example = one(installed, "/**/etc/wirewarden/wirewarden.yaml.example")
    p = subprocess.run([str(exe), "proxy", "--check-config", str(example)], capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr
    one(installed, "/**/share/doc/wirewarden/examples/wirewarden.service")


@pytest.mark.parametrize("page,section,must", [
    ("wirewarden.8", "8", ["SIGNALS", "SIGHUP", "ADMIN API", "/metrics", "credentials_expired", "server_shutdown"]),
    ("wirewarden.yaml.5", "5", ["LISTENERS", "upstream_tls", "client_cert", "shutdown.drain", "admin.token_file"]),
])
def test_man_pages_render_without_warnings(page, section, must):
    if not shutil.which("man"):
        pytest.fail("man is not installed (scripts/deps.sh installs man-db)")
    env = dict(os.environ, MANWIDTH="80", MAN_DISABLE_SECCOMP="1")
    p = subprocess.run(["man", "--warnings=all", "-l", str(TOP / "doc" / "man" / page)], capture_output=True,
                       env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b"", p.stderr.decode()
    text = p.stdout.decode()
    assert re.match(r"WIREWARDEN(\.YAML)?\(%s\)" % section, text.lstrip()), text[:200]
    for m in must:
        assert m in text, m


def verify_env(installed):
    exe = one(installed, "/**/bin/wirewarden")
    man = one(installed, "/**/share/man/man8/wirewarden.8").parent.parent
    return exe, dict(os.environ, MANPATH="%s:" % man)


@pytest.mark.parametrize("unit,instance", [("wirewarden.service", None), ("wirewarden-sniff@.service", "lo")])
def test_systemd_units_verify(installed, tmp_path, unit, instance):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze is not installed: the units were not verified")
    exe, env = verify_env(installed)
    text = (DEPLOY / "systemd" / unit).read_text().replace("/usr/local/bin/wirewarden", str(exe))
    name = unit.replace("@.", "@%s." % instance) if instance else unit
    (tmp_path / name).write_text(text)
    p = subprocess.run([tool, "verify", str(tmp_path / name)], capture_output=True, env=env, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), p.stdout.decode() + p.stderr.decode()
    p = subprocess.run([tool, "security", "--offline=true", str(tmp_path / name)], capture_output=True, env=env,
                       timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout.decode())
    assert m, p.stdout.decode()[-500:] + p.stderr.decode()
    assert float(m.group(1)) <= 2.0, "exposure %s: %s" % (m.group(1), p.stdout.decode())


def test_units_grant_capabilities_only_where_needed():
    proxy = (DEPLOY / "systemd" / "wirewarden.service").read_text()
    sniff = (DEPLOY / "systemd" / "wirewarden-sniff@.service").read_text()
    assert re.search(r"^CapabilityBoundingSet=$", proxy, re.M) and re.search(r"^AmbientCapabilities=$", proxy, re.M)
    assert re.search(r"^User=wirewarden$", proxy, re.M) and "NoNewPrivileges=yes" in proxy
    assert re.search(r"^CapabilityBoundingSet=CAP_NET_RAW$", sniff, re.M)
    assert re.search(r"^AmbientCapabilities=CAP_NET_RAW$", sniff, re.M)
    assert re.search(r"^User=wirewarden$", sniff, re.M)


def test_dockerfile_runtime_packages_cover_the_binary():
    if not shutil.which("dpkg") or not shutil.which("readelf"):
        pytest.skip("dpkg or readelf missing: cannot map libraries to Debian packages")
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)
    assert len(stages) == 3 and stages[1].startswith("debian:12-slim AS build") and stages[2].startswith("debian:12-slim")
    runtime = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", stages[2].split("apt-get install", 1)[1].split("&&")[0]))
    needed = re.findall(r"NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", BINARY], capture_output=True, text=True).stdout)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    missing = []
    # libc6 and libgcc-s1 are Essential: in every Debian image, slim too
    base = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "libgcc_s.so.1"}
    for so in needed:
        if so in base:
            continue
        m = re.search(r"^\s*%s \(libc6,x86-64\) => (\S+)" % re.escape(so), cache, re.M)
        assert m, so
        pkg = subprocess.run(["dpkg", "-S", os.path.realpath(m.group(1))], capture_output=True,
                             text=True).stdout.split(":")[0]
        if pkg not in runtime:
            missing.append((so, pkg))
    assert not missing, "runtime stage lacks %s" % missing


def test_kubernetes_example_config_is_valid(tmp_path):
    yaml = pytest.importorskip("yaml")
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "mosquitto-with-wirewarden.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ConfigMap", "Deployment", "Service"}
    cfg = kinds["ConfigMap"]["data"]["wirewarden.yaml"]
    pod = kinds["Deployment"]["spec"]["template"]
    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/path"] == "/metrics"
    assert "0.0.0.0:%s" % ann["prometheus.io/port"] in cfg
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert names == ["mosquitto", "wirewarden"]
    drain = int(re.search(r"drain: (\d+)s", cfg).group(1))
    assert pod["spec"]["terminationGracePeriodSeconds"] > drain
    # The configuration itself, with its mounted files made here.
    for f in ("tls.crt", "tls.key", "token"):
        (tmp_path / f).write_text("x\n")
    local = cfg.replace("/etc/wirewarden/tls/", "%s/" % tmp_path).replace("/etc/wirewarden/admin/", "%s/" % tmp_path)
    (tmp_path / "w.yaml").write_text(local)
    p = subprocess.run([BINARY, "proxy", "--check-config", str(tmp_path / "w.yaml")], capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr


def test_readme_five_minute_config_is_valid(tmp_path):
    text = (TOP / "README.md").read_text()
    sec = text.split("## wirewarden in front of a running mosquitto with TLS in five minutes", 1)
    assert len(sec) == 2, "README section missing"
    block = re.search(r"```yaml\n(.*?)```", sec[1], re.S).group(1)
    for f in ("server.crt", "server.key", "admin.token"):
        (tmp_path / f).write_text("x\n")
    local = block.replace("/etc/wirewarden/", "%s/" % tmp_path)
    (tmp_path / "w.yaml").write_text(local)
    p = subprocess.run([BINARY, "proxy", "--check-config", str(tmp_path / "w.yaml")], capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr
