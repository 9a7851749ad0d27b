#!/bin/sh
# Installs the Debian 12 packages wirewarden needs to build, test and run,
# only when some are missing. Needs root (apt-get).
set -eu
PKGS="build-essential autoconf automake libtool pkg-config
libevent-dev libssl-dev libpcap-dev libjansson-dev libcyaml-dev libyaml-dev libcmocka-dev
clang libclang-rt-14-dev mosquitto mosquitto-clients tcpdump tshark openssl
python3-pytest python3-paho-mqtt
curl man-db prometheus python3-yaml"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "wirewarden: missing Debian packages:$missing; run as root or: apt-get install$missing" >&2
	exit 2
fi
echo "wirewarden: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
