# Shared by bench/run.sh and bench/sniff.sh (sourced, bash): logging, stopping
# our own child processes, cleaning up the work directory. The sourcing script
# sets NAME (for log lines), WORK and PIDS_TO_STOP first.

log() { printf '[%s %s] %s\n' "$NAME" "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "error: $*"; exit 1; }

stop_pid() { # <pid> [signal]: the signal (TERM), then KILL after 5 s; only our own children
	local p=$1 sig=${2:-TERM} _
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
	kill -"$sig" "$p" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

cleanup() {
	local p
	for p in "${PIDS_TO_STOP[@]}"; do stop_pid "$p"; done
	[ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
	# Only a directory the scripts made themselves (mktemp /tmp/ww*) is removed.
	case ${WORK:-} in
	/tmp/ww?*) if [ "${KEEP:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi ;;
	esac
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

# Waits up to 10 s for <pid> (logging to $WORK/<name>.stderr) to listen on <port>.
wait_listen() { # <port> <pid> <name>
	local i
	for i in $(seq 100); do
		listening "$1" && return 0
		kill -0 "$2" 2>/dev/null || fail "$3 exited at start (see $WORK/$3.stderr): $(tail -3 "$WORK/$3.stderr" 2>/dev/null)"
		sleep 0.1
	done
	fail "$3 is not listening on 127.0.0.1:$1 after 10 s"
}

# Builds wirewarden out of tree in $BUILD_DIR (default /tmp/wirewarden-bench-build) and points
# WIREWARDEN at it; for the scripts' "no WIREWARDEN given" case.
build_wirewarden() {
	BUILD_DIR=${BUILD_DIR:-/tmp/wirewarden-bench-build}
	log "building wirewarden in $BUILD_DIR"
	mkdir -p "$BUILD_DIR"
	( cd "$REPO" && { [ -x configure ] || autoreconf -fi; } && cd "$BUILD_DIR" &&
	  { [ -f Makefile ] || "$REPO/configure" >/dev/null; } && make -j"$(nproc)" wirewarden >/dev/null ) ||
		fail "cannot build wirewarden (give WIREWARDEN=/path/to/wirewarden)"
	WIREWARDEN=$BUILD_DIR/wirewarden
}
