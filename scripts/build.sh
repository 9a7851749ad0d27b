#!/bin/sh
# Builds wirewarden out of tree: scripts/build.sh DIR [configure options].
# Reuses DIR when it is already configured with the same options.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
shift
cd "$top"
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }
mkdir -p "$dir"
cd "$dir"
opts="$*"
if [ ! -f Makefile ] || [ "$(cat .ww-configure-opts 2>/dev/null)" != "$opts" ]; then
	"$top/configure" $opts >configure.out 2>&1 || { tail -20 configure.out; exit 1; }
	echo "$opts" >.ww-configure-opts
fi
make -j"$(nproc)" >make.out 2>&1 || { tail -40 make.out; exit 1; }
