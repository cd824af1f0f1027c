#!/usr/bin/env bash
# verify.sh OUTDIR — check every OUTDIR/<scenario>.pcap against its truth file with tshark.
# Exits 0 when every check passes, 1 on any mismatch, 2 when tshark or python3 is missing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $# -ne 1 || ! -d $1 ]]; then
	echo "usage: verify.sh OUTDIR" >&2
	exit 64
fi
for c in tshark python3; do
	if ! command -v "$c" >/dev/null 2>&1; then
		echo "verify: $c is missing (apt-get install -y tshark python3)" >&2
		exit 2
	fi
done
exec python3 "$HERE/lib/verify.py" "$1"
