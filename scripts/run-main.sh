#!/bin/sh
# wirewarden's main job on a fresh machine: installs missing Debian
# packages, builds, and explains the bundled capture (recorded by the tests
# from a real mosquitto on loopback): every connection, who closed it and why.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
scripts/build.sh build
capture=${1:-tests/data/recorded/demo.pcap}
echo "== wirewarden sniff -r $capture"
build/wirewarden sniff -r "$capture"
echo
echo "== wirewarden proxy in front of a local mosquitto (scripts/demo-proxy.sh)"
sh scripts/demo-proxy.sh build
