# What every interop script shares; not run on its own. A script sources it
# right after `set -euo pipefail` (and its own checks of its variables):
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" NAME TOOL...
#
# It checks that each TOOL is on PATH, sets REPO (this repository), WORK (a
# fresh temp dir kf-NAME.XXXXXX, kept with KEEP=1), SERVER_PID (the keyfort
# the script starts, stopped on exit) and DEVIATIONS, and on a failing exit
# (not 0, not 3) prints the last 20 lines of $WORK/server.log.

for tool in "${@:2}"; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool not found" >&2; exit 1; }
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kf-$1.XXXXXX")
SERVER_PID=""
DEVIATIONS=()

# stop_server stops the keyfort of SERVER_PID, if it runs.
stop_server() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=""
}

cleanup() {
	local rc=$?
	stop_server
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
		echo "--- keyfort log (last 20 lines) ---" >&2
		tail -n 20 "$WORK/server.log" >&2 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; }
note() { echo "NOTE: $*"; }

# free_port prints a TCP port free on 127.0.0.1.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
