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
	if [ "${KEEP:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
