#!/usr/bin/env bash
# testbed.sh — a real-traffic IPTV/HLS lab in Linux network namespaces, with ground truth.
#
# Builds a small lab (one bridge in a router namespace, a server, a multicast head-end,
# players and set-top-box-like receivers), runs a scenario, captures the bridge with
# tcpdump and writes OUTDIR/<scenario>.pcap plus OUTDIR/<scenario>.truth.json.
# Everything lives in namespaces named sstb-*; nothing is routed off the host.
# See README.md beside this script.

set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=$HERE/lib
PREFIX=sstb
STATE_DIR=/run/streamscope-testbed
ALL_ROLES=(rtr srv head c1 c2 c3 c4 rx1 rx2)
DEB_PACKAGES=(nginx ffmpeg dnsmasq tcpdump iproute2 iptables curl openssl ethtool)

# --- lab addressing (all inside the namespaces) -------------------------------------
NET4=10.77.0.0/24
NET6=fd77::/64
declare -A IP4=([rtr]=10.77.0.1 [srv]=10.77.0.10 [head]=10.77.0.20
	[c1]=10.77.0.101 [c2]=10.77.0.102 [c3]=10.77.0.103 [c4]=10.77.0.104
	[rx1]=10.77.0.201 [rx2]=10.77.0.202)
declare -A IP6=([rtr]=fd77::1 [srv]=fd77::10 [head]=fd77::20
	[c1]=fd77::101 [c2]=fd77::102 [c3]=fd77::103 [c4]=fd77::104
	[rx1]=fd77::201 [rx2]=fd77::202)
# Server names: each has its own address in the server namespace so one can be taken down.
SRV_NAMES=(cdn-a.lab.test cdn-b.lab.test panel.lab.test)
declare -A NAME4=([cdn-a.lab.test]=10.77.0.10 [cdn-b.lab.test]=10.77.0.11 [panel.lab.test]=10.77.0.12)
declare -A NAME6=([cdn-a.lab.test]=fd77::10 [cdn-b.lab.test]=fd77::11 [panel.lab.test]=fd77::12)
PANEL_PORT=8080
# Multicast channels from the head-end.
CH1_GROUP=239.77.1.1 CH1_PORT=5000 CH1_ENCAP=udp
CH2_GROUP=239.77.1.2 CH2_PORT=5004 CH2_ENCAP=rtp
CH_MUXRATE=140000 CH_VIDEO_BPS=50000 CH_AUDIO_BPS=32000 CH_TTL=8
# HLS renditions: name size fps video_bps audio_bps
HLS_VARIANTS=("lo 256x144 15 80000 32000" "hi 480x270 15 200000 32000")
HLS_SEGMENT_S=2
# Progressive TS served by the panel.
PROG_ID=1001 PROG_MUXRATE=140000

usage() {
	cat <<EOF
usage: testbed.sh SCENARIO [-o OUTDIR] [--prefix P] [--duration S] [--no-install] [--keep-workdir]
       testbed.sh --cleanup
scenarios: steady takedown loss
  -o OUTDIR       where <scenario>.pcap and <scenario>.truth.json go (default: ./testbed-out)
  --prefix P      name the outputs P<scenario>.pcap and P<scenario>.truth.json
  --duration S    run length in seconds (default 30 steady/loss, 40 takedown; minimum 20)
  --no-install    only check the Debian packages, never install them
  --keep-workdir  keep the lab's work directory (configs, logs, content) for debugging
  --cleanup       remove every namespace, process and file a previous run left behind
EOF
}

log() { printf '[testbed %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
now() { date +%s.%N; }
fadd() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }
sleep_until() {
	local d
	d=$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; if (d < 0) d = 0; printf "%.3f", d }')
	# sleep in the background and wait for it, so INT/TERM traps run at once
	sleep "$d" 9>&- &
	SLEEP_PID=$!
	wait "$SLEEP_PID" || true
	SLEEP_PID=""
}
ns() { echo "$PREFIX-$1"; }
nsx() {
	local r=$1
	shift
	# 9>&-: lab processes must not inherit the run lock
	ip netns exec "$(ns "$r")" "$@" 9>&-
}

# spawn ROLE OUTFILE CMD...: start CMD in the role's namespace in the background. The
# subshell execs straight into `ip netns exec`, which execs CMD, so $SPAWNED is CMD's own
# pid and no shell of ours lingers (or holds the run lock) while it runs.
spawn() {
	local r=$1 out=$2
	shift 2
	(
		exec 9>&- >"$out" 2>&1 </dev/null
		exec ip netns exec "$(ns "$r")" "$@"
	) &
	SPAWNED=$!
}

# --- dependencies ---------------------------------------------------------------
declare -A CMD_PKG=([nginx]=nginx [ffmpeg]=ffmpeg [dnsmasq]=dnsmasq [tcpdump]=tcpdump
	[ip]=iproute2 [iptables]=iptables [ip6tables]=iptables [curl]=curl [openssl]=openssl
	[ethtool]=ethtool)

missing_packages() {
	local c out=()
	for c in "${!CMD_PKG[@]}"; do
		command -v "$c" >/dev/null 2>&1 || out+=("${CMD_PKG[$c]}")
	done
	printf '%s\n' "${out[@]}" | sort -u | grep -v '^$' || true
}

ensure_deps() {
	local miss
	miss=$(missing_packages)
	if [[ -n $miss ]]; then
		if [[ $NO_INSTALL == 1 ]]; then
			log "missing Debian packages: $(echo "$miss" | tr '\n' ' ')"
			log "install them with: apt-get update && apt-get install -y ${DEB_PACKAGES[*]}"
			exit 1
		fi
		log "installing: $(echo "$miss" | tr '\n' ' ')"
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${DEB_PACKAGES[@]}" >/dev/null
		miss=$(missing_packages)
		[[ -z $miss ]] || die "still missing after install: $miss"
	fi
	command -v python3 >/dev/null 2>&1 || die "python3 (3.8 or later) is required"
	PY=$(python3 -c 'import sys; print(sys.executable)')
	modprobe br_netfilter 2>/dev/null || true
}

# --- cleanup ----------------------------------------------------------------------
# Only objects this tool names: namespaces sstb-<role>, /etc/netns/sstb-<role>, and the
# work directory recorded in the state file. Everything else (veths, bridge, iptables
# rules, processes) lives inside those namespaces and is removed with them; processes are
# ended by the process ids that `ip netns pids` reports for our namespaces.
cleanup_all() {
	local r n pids p _
	for r in "${ALL_ROLES[@]}"; do
		n=$(ns "$r")
		[[ -e /run/netns/$n ]] || continue
		pids=$(ip netns pids "$n" 2>/dev/null || true)
		if [[ -n $pids ]]; then
			# shellcheck disable=SC2086
			kill -TERM $pids 2>/dev/null || true
		fi
	done
	for _ in $(seq 1 30); do
		pids=""
		for r in "${ALL_ROLES[@]}"; do
			n=$(ns "$r")
			[[ -e /run/netns/$n ]] && pids+=" $(ip netns pids "$n" 2>/dev/null || true)"
		done
		[[ -z ${pids// /} ]] && break
		sleep 0.1
	done
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	for r in "${ALL_ROLES[@]}"; do
		n=$(ns "$r")
		if [[ -e /run/netns/$n ]]; then
			ip netns del "$n" 2>/dev/null || true
		fi
		rm -rf "/etc/netns/$n"
	done
	rmdir /etc/netns 2>/dev/null || true
	if [[ -f $STATE_DIR/workdir ]]; then
		local w
		w=$(cat "$STATE_DIR/workdir")
		if [[ $w == /tmp/sstb.* && -d $w && ${KEEP_WORKDIR:-0} != 1 ]]; then
			rm -rf "$w"
		elif [[ ${KEEP_WORKDIR:-0} == 1 ]]; then
			log "work directory kept: $w"
		fi
		rm -f "$STATE_DIR/workdir"
	fi
}

RUN_OK=0
TCPDUMP_PID=""
on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n ${SLEEP_PID:-} ]] && kill "$SLEEP_PID" 2>/dev/null
	if [[ -n $TCPDUMP_PID ]] && kill -0 "$TCPDUMP_PID" 2>/dev/null; then
		kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
		wait "$TCPDUMP_PID" 2>/dev/null || true
	fi
	if [[ $RUN_OK != 1 && -n ${PCAP:-} && -f ${PCAP:-/nonexistent} ]]; then
		mv -f "$PCAP" "$PCAP.partial"
		log "run failed (exit $rc): partial capture left at $PCAP.partial"
	fi
	cleanup_all
	rm -f "$STATE_DIR/lock"
	rmdir "$STATE_DIR" 2>/dev/null || true
	exit "$rc"
}

# --- lab construction ---------------------------------------------------------------
# veth offloads would put 64 KB TSO/GRO super-frames with unfinished checksums on the
# bridge; switch them off so the capture holds wire-sized frames with valid checksums.
no_offload() {
	nsx "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 ||
		log "warning: could not switch off offloads on $2 in $(ns "$1")"
}

mac_of() { printf '02:77:00:00:00:%02x' "${IP4[$1]##*.}"; }

TOPO=""
add_ns() {
	# add_ns ROLE KIND [extra IPv4 ...] -- [extra IPv6 ...]
	local r=$1 kind=$2
	shift 2
	local n port
	n=$(ns "$r")
	port=p-$r
	ip netns add "$n"
	ip -n "$n" link set lo up
	ip -n "$(ns rtr)" link add "$port" type veth peer name eth0 netns "$n"
	ip netns exec "$(ns rtr)" sysctl -qw "net.ipv6.conf.$port.disable_ipv6=1"
	ip -n "$(ns rtr)" link set "$port" master br0 up
	no_offload rtr "$port"
	no_offload "$r" eth0
	nsx "$r" sysctl -qw net.ipv6.conf.eth0.router_solicitations=0 net.ipv6.conf.eth0.accept_ra=0
	ip -n "$n" link set eth0 address "$(mac_of "$r")"
	local v4=("${IP4[$r]}") v6=("${IP6[$r]}") a side=4
	for a in "$@"; do
		if [[ $a == -- ]]; then side=6; continue; fi
		if [[ $side == 4 ]]; then v4+=("$a"); else v6+=("$a"); fi
	done
	for a in "${v4[@]}"; do ip -n "$n" addr add "$a/24" dev eth0; done
	for a in "${v6[@]}"; do ip -n "$n" -6 addr add "$a/64" dev eth0 nodad; done
	ip -n "$n" link set eth0 up
	# Only the lab subnet and multicast are reachable: no default route exists.
	ip -n "$n" route add 224.0.0.0/4 dev eth0
	mkdir -p "/etc/netns/$n"
	printf 'nameserver %s\nnameserver %s\n' "${IP4[rtr]}" "${IP6[rtr]}" >"/etc/netns/$n/resolv.conf"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$n/hosts"
	TOPO+=$(printf '{"role":"%s","kind":"%s","namespace":"%s","interface":"eth0","router_port":"%s","mac":"%s","ipv4":%s,"ipv6":%s}\n' \
		"$r" "$kind" "$n" "$port" "$(mac_of "$r")" "$(json_list "${v4[@]}")" "$(json_list "${v6[@]}")")$'\n'
}

json_list() {
	local json="[" a sep=""
	for a in "$@"; do
		json+="$sep\"$a\""
		sep=","
	done
	echo "$json]"
}

build_router() {
	local n
	n=$(ns rtr)
	ip netns add "$n"
	ip -n "$n" link set lo up
	# One bridge, multicast snooping off: every group is flooded to every port, and the
	# capture on br0 (promiscuous) sees each frame once as it crosses the bridge.
	ip -n "$n" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
	ip -n "$n" link set br0 address "$(mac_of rtr)"
	ip -n "$n" addr add "${IP4[rtr]}/24" dev br0
	ip -n "$n" -6 addr add "${IP6[rtr]}/64" dev br0 nodad
	ip -n "$n" link set br0 up
	no_offload rtr br0
	# Bridged IPv4/IPv6 traverse this namespace's iptables (used for the loss window).
	nsx rtr sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 2>/dev/null ||
		log "warning: br_netfilter sysctls unavailable in the router namespace"
	TOPO+=$(printf '{"role":"rtr","kind":"router","namespace":"%s","interface":"br0","router_port":null,"mac":"%s","ipv4":["%s"],"ipv6":["%s"],"bridge":{"name":"br0","mcast_snooping":0,"stp":0},"capture":true,"dns":true}\n' \
		"$n" "$(mac_of rtr)" "${IP4[rtr]}" "${IP6[rtr]}")$'\n'
}

# --- content ----------------------------------------------------------------------
make_content() {
	local secs=$1 v name size fps vb ab kind ext dir
	mkdir -p "$W/www/hls" "$W/live"
	for kind in ts fmp4; do
		for v in "${HLS_VARIANTS[@]}"; do
			read -r name size fps vb ab <<<"$v"
			dir=$W/www/hls/$kind/$name
			mkdir -p "$dir"
			local segopt=(-hls_segment_type mpegts)
			ext=ts
			if [[ $kind == fmp4 ]]; then
				segopt=(-hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4)
				ext=m4s
			fi
			ffmpeg -nostdin -y -hide_banner -loglevel error \
				-f lavfi -i "testsrc=size=$size:rate=$fps:duration=$secs" \
				-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
				-c:v libx264 -preset veryfast -profile:v main -level 3.0 -pix_fmt yuv420p \
				-b:v "$vb" -maxrate "$vb" -bufsize "$((vb * 2))" \
				-g "$((fps * HLS_SEGMENT_S))" -keyint_min "$((fps * HLS_SEGMENT_S))" -sc_threshold 0 \
				-c:a aac -b:a "$ab" -ac 1 \
				-f hls -hls_time "$HLS_SEGMENT_S" -hls_playlist_type vod "${segopt[@]}" \
				-hls_segment_filename "$dir/seg_%03d.$ext" "$dir/index.m3u8"
		done
	done
	# Progressive TS for the panel: constant mux rate (ISO/IEC 13818-1 null-packet padding).
	ffmpeg -nostdin -y -hide_banner -loglevel error \
		-f lavfi -i "testsrc=size=160x90:rate=10:duration=$secs" \
		-f lavfi -i "sine=frequency=660:sample_rate=48000:duration=$secs" \
		-c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p \
		-b:v "$CH_VIDEO_BPS" -maxrate "$CH_VIDEO_BPS" -bufsize "$CH_VIDEO_BPS" -g 20 \
		-c:a mp2 -b:a "$CH_AUDIO_BPS" -ac 1 \
		-f mpegts -muxrate "$PROG_MUXRATE" -pcr_period 80 -pat_period 0.25 \
		-metadata service_provider=streamscope-lab -metadata service_name=panel-$PROG_ID \
		"$W/live/$PROG_ID.ts"
	"$PY" "$LIB/truth.py" content --www "$W/www" --live "$W/live" --segment-s "$HLS_SEGMENT_S" \
		--variants "$(printf '%s;' "${HLS_VARIANTS[@]}")" --out "$W/content.json"
}

make_certs() {
	local name
	mkdir -p "$W/certs"
	for name in cdn-a.lab.test cdn-b.lab.test; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
			-subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
			-keyout "$W/certs/$name.key" -out "$W/certs/$name.crt" 2>/dev/null
	done
}

write_nginx_conf() {
	mkdir -p "$W/nginx/tmp" "$W/logs"
	local name srv=""
	for name in cdn-a.lab.test cdn-b.lab.test; do
		srv+="
    server {
        listen ${NAME4[$name]}:80;
        listen [${NAME6[$name]}]:80;
        listen ${NAME4[$name]}:443 ssl;
        listen [${NAME6[$name]}]:443 ssl;
        server_name $name;
        ssl_certificate $W/certs/$name.crt;
        ssl_certificate_key $W/certs/$name.key;
        root $W/www;
        location /hls/ { add_header Cache-Control \"max-age=2\"; }
        location / { return 404; }
    }"
	done
	cat >"$W/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/logs/nginx-error.log info;
events { worker_connections 256; }
http {
    types {
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
        video/iso.segment m4s;
        video/mp4 mp4;
    }
    default_type application/octet-stream;
    log_format truth escape=json '{"msec":"\$msec","request_time":"\$request_time",'
        '"remote_addr":"\$remote_addr","remote_port":"\$remote_port",'
        '"server_addr":"\$server_addr","server_port":"\$server_port","host":"\$host",'
        '"sni":"\$ssl_server_name","scheme":"\$scheme","method":"\$request_method",'
        '"uri":"\$request_uri","protocol":"\$server_protocol","status":"\$status",'
        '"body_bytes_sent":"\$body_bytes_sent","bytes_sent":"\$bytes_sent",'
        '"connection":"\$connection","connection_requests":"\$connection_requests",'
        '"user_agent":"\$http_user_agent"}';
    access_log $W/logs/access.log truth;
    client_body_temp_path $W/nginx/tmp/body;
    proxy_temp_path $W/nginx/tmp/proxy;
    fastcgi_temp_path $W/nginx/tmp/fastcgi;
    uwsgi_temp_path $W/nginx/tmp/uwsgi;
    scgi_temp_path $W/nginx/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 20;
    keepalive_requests 1000;
    server_tokens off;
$srv
    server {
        listen ${NAME4[panel.lab.test]}:$PANEL_PORT;
        listen [${NAME6[panel.lab.test]}]:$PANEL_PORT;
        server_name panel.lab.test;
        location = /player_api.php {
            default_type application/json;
            if (\$arg_action = get_live_streams) {
                return 200 '[{"num":1,"name":"Lab One","stream_type":"live","stream_id":$PROG_ID,"category_id":"1"}]';
            }
            return 200 '{"user_info":{"username":"\$arg_username","password":"\$arg_password","auth":1,"status":"Active","max_connections":"1"},"server_info":{"url":"panel.lab.test","port":"$PANEL_PORT","server_protocol":"http"}}';
        }
        location ~ ^/live/[^/]+/[^/]+/(?<sid>[0-9]+)\.ts\$ {
            alias $W/live/\$sid.ts;
            # a live restream is sent at the stream's own rate after a preroll burst
            limit_rate_after $((PROG_MUXRATE * 2 / 8));
            limit_rate $((PROG_MUXRATE / 8));
        }
        location / { return 404; }
    }
}
EOF
}

start_services() {
	local name hr=()
	for name in "${SRV_NAMES[@]}"; do hr+=("--host-record=$name,${NAME4[$name]},${NAME6[$name]}"); done
	spawn rtr "$W/logs/dnsmasq.out" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
		--bind-interfaces --listen-address="${IP4[rtr]}" --listen-address="${IP6[rtr]}" \
		--local=/lab.test/ --domain-needed --local-ttl=300 --cache-size=0 \
		"${hr[@]}" --user=root --group=root --log-queries \
		--log-facility="$W/logs/dnsmasq.log" --pid-file="$W/dnsmasq.pid"
	spawn srv "$W/logs/nginx.out" nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/logs/nginx-error.log"
	# Readiness: probe every service from a client namespace before the capture starts.
	local _ ok=0
	for _ in $(seq 1 50); do
		if nsx "$PROBE" curl -fsS -o /dev/null --max-time 2 "http://cdn-a.lab.test/hls/ts/master.m3u8" 2>/dev/null &&
			nsx "$PROBE" curl -fsSk -o /dev/null --max-time 2 "https://cdn-b.lab.test/hls/fmp4/master.m3u8" 2>/dev/null &&
			nsx "$PROBE" curl -fsS -o /dev/null --max-time 2 "http://panel.lab.test:$PANEL_PORT/player_api.php?action=ping" 2>/dev/null; then
			ok=1
			break
		fi
		sleep 0.2
	done
	[[ $ok == 1 ]] || die "lab services did not come up (see $W/logs)"
	: >"$W/logs/access.log"
	: >"$W/logs/dnsmasq.log"
}

# ffmpeg head-end: one channel per process, MPEG-TS at a constant mux rate.
start_channel() {
	local name=$1 group=$2 port=$3 encap=$4 src=$5 tone=$6 out
	local common=(-nostdin -hide_banner -loglevel warning
		-re -f lavfi -i "$src=size=160x90:rate=10"
		-re -f lavfi -i "sine=frequency=$tone:sample_rate=48000"
		-c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p
		-b:v "$CH_VIDEO_BPS" -maxrate "$CH_VIDEO_BPS" -bufsize "$CH_VIDEO_BPS" -g 20
		-c:a mp2 -b:a "$CH_AUDIO_BPS" -ac 1
		-metadata service_provider=streamscope-lab -metadata "service_name=$name")
	if [[ $encap == udp ]]; then
		spawn head "$W/logs/ffmpeg-$name.log" ffmpeg "${common[@]}" -flush_packets 0 -f mpegts -muxrate "$CH_MUXRATE" -pcr_period 80 -pat_period 0.25 \
			"udp://$group:$port?pkt_size=1316&ttl=$CH_TTL"
	else
		spawn head "$W/logs/ffmpeg-$name.log" ffmpeg "${common[@]}" -flush_packets 0 -f rtp_mpegts \
			-mpegts_muxer_options "muxrate=$CH_MUXRATE:pcr_period=80:pat_period=0.25" \
			"rtp://$group:$port?pkt_size=1328&ttl=$CH_TTL"
	fi
	HEADEND_PIDS+=("$SPAWNED")
	ACTORS+=$(printf '{"type":"channel","name":"%s","namespace":"%s","source":"%s","group":"%s","port":%d,"encap":"%s","video_source":"%s","mux_rate_bps":%d,"video_bps":%d,"audio_bps":%d,"video_codec":"h264","audio_codec":"mp2","resolution":"160x90","fps":10,"ts_per_datagram":7,"ttl":%d,"pcr_period_ms":80,"pat_period_ms":250,"rtcp_port":%s}\n' \
		"$name" "$(ns head)" "${IP4[head]}" "$group" "$port" "$encap" "$src" "$CH_MUXRATE" "$CH_VIDEO_BPS" "$CH_AUDIO_BPS" "$CH_TTL" \
		"$([[ $encap == rtp ]] && echo $((port + 1)) || echo null)")$'\n'
}

start_capture() {
	spawn rtr "$W/logs/tcpdump.err" tcpdump -i br0 -s 0 -U -Z root -w "$PCAP"
	TCPDUMP_PID=$SPAWNED
	local _
	for _ in $(seq 1 50); do
		grep -q "listening on" "$W/logs/tcpdump.err" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "listening on" "$W/logs/tcpdump.err" || die "tcpdump did not start: $(cat "$W/logs/tcpdump.err")"
	CAP_START=$(now)
}

stop_capture() {
	sleep 0.5
	CAP_END=$(now)
	kill -TERM "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" || true
	TCPDUMP_PID=""
}

# player ROLE NAME START_OFF STOP_OFF ARGS...
player() {
	local r=$1 name=$2 s=$3 e=$4
	shift 4
	spawn "$r" "$W/logs/client-$name.out" "$PY" "$LIB/player.py" --name "$name" --log "$W/logs/client-$name.jsonl" \
		--start "$(fadd "$T0" "$s")" --stop "$(fadd "$T0" "$e")" "$@"
	ACTOR_PIDS+=("$SPAWNED")
	ACTORS+=$(printf '{"type":"client","name":"%s","role":"%s","namespace":"%s","ipv4":"%s","ipv6":"%s","start_epoch":%s,"stop_epoch":%s,"args":%s}\n' \
		"$name" "$r" "$(ns "$r")" "${IP4[$r]}" "${IP6[$r]}" "$(fadd "$T0" "$s")" "$(fadd "$T0" "$e")" "$(json_list "$@")")$'\n'
}

# receiver ROLE NAME IGMP_VERSION AT...
receiver() {
	local r=$1 name=$2 ver=$3
	shift 3
	local at=() a
	for a in "$@"; do at+=(--at "$a"); done
	if [[ $ver == 2 ]]; then nsx "$r" sysctl -qw net.ipv4.conf.eth0.force_igmp_version=2; fi
	spawn "$r" "$W/logs/rx-$name.out" "$PY" "$LIB/mcast_rx.py" --name "$name" --log "$W/logs/rx-$name.jsonl" \
		--iface-ip "${IP4[$r]}" --t0 "$T0" "${at[@]}"
	ACTOR_PIDS+=("$SPAWNED")
	ACTORS+=$(printf '{"type":"receiver","name":"%s","role":"%s","namespace":"%s","ipv4":"%s","igmp_version":%d,"schedule":%s}\n' \
		"$name" "$r" "$(ns "$r")" "${IP4[$r]}" "$ver" "$(json_list "$@")")$'\n'
}

# fault_event KIND EVENT T_CMD [EXTRA_JSON_MEMBERS]: T_CMD is when the iptables command was
# issued, "t" (now) is when it had returned, i.e. when the rule change was certainly in force.
fault_event() {
	printf '{"kind":"%s","event":"%s","t_cmd":%s,"t":%s%s}\n' "$1" "$2" "$3" "$(now)" "${4:+,$4}" >>"$W/logs/faults.jsonl"
}

# --- scenarios ----------------------------------------------------------------------
# Each scenario has: scn_<name>_roles (namespaces it needs), and scn_<name>_run (actors
# and the fault timeline, offsets relative to T0; the capture runs from before T0 to D).
scn_steady_roles() { echo "srv head c1 c2 c3 rx1 rx2"; }
scn_steady_run() {
	local D=$1
	player c1 c1 1 $((D - 2)) --mode hls --hosts cdn-a.lab.test --scheme http --port 80 --family 4 \
		--master /hls/ts/master.m3u8 --variant 0
	player c2 c2 2 $((D - 2)) --mode hls --hosts cdn-b.lab.test --scheme https --port 443 --family 6 \
		--master /hls/fmp4/master.m3u8 --variant 1
	player c3 c3 3 $((D - 3)) --mode progressive --hosts panel.lab.test --port "$PANEL_PORT" --family 4 \
		--user "$CRED_USER" --password "$CRED_PASS" --stream-id "$PROG_ID" --rate "$PROG_MUXRATE"
	local z1=$((D * 35 / 100)) z2=$((D * 70 / 100)) z3=$((D / 2))
	receiver rx1 rx1 3 "1:join:$CH1_GROUP:$CH1_PORT:$CH1_ENCAP" \
		"$z1:leave:$CH1_GROUP:$CH1_PORT" "$z1:join:$CH2_GROUP:$CH2_PORT:$CH2_ENCAP" \
		"$z2:leave:$CH2_GROUP:$CH2_PORT" "$z2:join:$CH1_GROUP:$CH1_PORT:$CH1_ENCAP" \
		"$((D - 3)):leave:$CH1_GROUP:$CH1_PORT"
	receiver rx2 rx2 2 "3:join:$CH2_GROUP:$CH2_PORT:$CH2_ENCAP" \
		"$z3:leave:$CH2_GROUP:$CH2_PORT" "$z3:join:$CH1_GROUP:$CH1_PORT:$CH1_ENCAP" \
		"$((D - 4)):leave:$CH1_GROUP:$CH1_PORT"
}

scn_takedown_roles() { echo "srv c1 c2 c3 c4"; }
scn_takedown_run() {
	local D=$1
	local fs=$((D * 3 / 10)) fe=$((D * 7 / 10))
	# Three players on cdn-b (two fall back to cdn-a after repeated failures, one only
	# retries), one control player on cdn-a.
	player c1 t1 1 $((D - 2)) --mode hls --hosts cdn-b.lab.test,cdn-a.lab.test --scheme https --port 443 \
		--family 4 --master /hls/ts/master.m3u8 --variant 0 --switch-after 3
	player c2 t2 1.5 $((D - 2)) --mode hls --hosts cdn-b.lab.test,cdn-a.lab.test --scheme https --port 443 \
		--family 6 --master /hls/fmp4/master.m3u8 --variant 0 --switch-after 4
	player c3 t3 2 $((D - 2)) --mode hls --hosts cdn-b.lab.test --scheme https --port 443 \
		--family 4 --master /hls/ts/master.m3u8 --variant 0
	player c4 t4 2.5 $((D - 2)) --mode hls --hosts cdn-a.lab.test --scheme https --port 443 \
		--family 4 --master /hls/fmp4/master.m3u8 --variant 0
	sleep_until "$(fadd "$T0" "$fs")"
	local t_cmd
	t_cmd=$(now)
	nsx srv iptables -I INPUT -d "${NAME4[cdn-b.lab.test]}" -p tcp --dport 443 \
		-m comment --comment sstb-takedown -j REJECT --reject-with tcp-reset
	nsx srv ip6tables -I INPUT -d "${NAME6[cdn-b.lab.test]}" -p tcp --dport 443 \
		-m comment --comment sstb-takedown -j REJECT --reject-with tcp-reset
	fault_event takedown start "$t_cmd"
	sleep_until "$(fadd "$T0" "$fe")"
	local c4 c6
	c4=$(nsx srv iptables -L INPUT -n -v -x | awk '/sstb-takedown/ { print $1 }')
	c6=$(nsx srv ip6tables -L INPUT -n -v -x | awk '/sstb-takedown/ { print $1 }')
	t_cmd=$(now)
	nsx srv iptables -D INPUT -d "${NAME4[cdn-b.lab.test]}" -p tcp --dport 443 \
		-m comment --comment sstb-takedown -j REJECT --reject-with tcp-reset
	nsx srv ip6tables -D INPUT -d "${NAME6[cdn-b.lab.test]}" -p tcp --dport 443 \
		-m comment --comment sstb-takedown -j REJECT --reject-with tcp-reset
	fault_event takedown end "$t_cmd" "\"rejected_ipv4_packets\":${c4:-0},\"rejected_ipv6_packets\":${c6:-0}"
	FAULTS+=$(printf '{"kind":"takedown","target":"cdn-b.lab.test","port":443,"addresses":["%s","%s"],"namespace":"%s","mechanism":"iptables/ip6tables INPUT -d ADDR -p tcp --dport 443 -j REJECT --reject-with tcp-reset","planned_start_epoch":%s,"planned_end_epoch":%s}\n' \
		"${NAME4[cdn-b.lab.test]}" "${NAME6[cdn-b.lab.test]}" "$(ns srv)" "$(fadd "$T0" "$fs")" "$(fadd "$T0" "$fe")")$'\n'
}

scn_loss_roles() { echo "srv head c1 rx1 rx2"; }
scn_loss_run() {
	local D=$1
	local fs=$((D / 3)) fe=$((D * 2 / 3)) p=0.1
	player c1 c1 1 $((D - 2)) --mode hls --hosts cdn-a.lab.test --scheme http --port 80 --family 4 \
		--master /hls/ts/master.m3u8 --variant 0
	receiver rx1 rx1 3 "1:join:$CH1_GROUP:$CH1_PORT:$CH1_ENCAP" "$((D - 2)):leave:$CH1_GROUP:$CH1_PORT"
	receiver rx2 rx2 2 "1.5:join:$CH2_GROUP:$CH2_PORT:$CH2_ENCAP" "$((D - 2)):leave:$CH2_GROUP:$CH2_PORT"
	local rules
	rules="-d $CH1_GROUP -p udp --dport $CH1_PORT -m statistic --mode random --probability $p -m comment --comment sstb-loss-ch1 -j DROP
-d $CH2_GROUP -p udp --dport $CH2_PORT -m statistic --mode random --probability $p -m comment --comment sstb-loss-ch2 -j DROP"
	sleep_until "$(fadd "$T0" "$fs")"
	local t_cmd
	t_cmd=$(now)
	# raw PREROUTING on the bridge path: dropped datagrams never reach br0, so they are
	# missing from the capture and from every receiver, like loss upstream of the probe.
	# Both rules go in with one atomic iptables-restore transaction.
	printf '*raw\n%s\nCOMMIT\n' "$(sed 's/^/-I PREROUTING /' <<<"$rules")" | nsx rtr iptables-restore --noflush
	fault_event loss start "$t_cmd"
	sleep_until "$(fadd "$T0" "$fe")"
	t_cmd=$(now)
	# End the window atomically with an ACCEPT rule in front, then read the drop
	# counters, then remove everything.
	nsx rtr iptables -t raw -I PREROUTING 1 -d 239.77.1.0/24 -p udp -m comment --comment sstb-loss-end -j ACCEPT
	local d1 d2
	d1=$(nsx rtr iptables -t raw -L PREROUTING -n -v -x | awk '/sstb-loss-ch1/ { print $1 }')
	d2=$(nsx rtr iptables -t raw -L PREROUTING -n -v -x | awk '/sstb-loss-ch2/ { print $1 }')
	fault_event loss end "$t_cmd" "\"dropped_packets\":{\"$CH1_GROUP:$CH1_PORT\":${d1:-0},\"$CH2_GROUP:$CH2_PORT\":${d2:-0}}"
	printf '*raw\n%s\n-D PREROUTING -d 239.77.1.0/24 -p udp -m comment --comment sstb-loss-end -j ACCEPT\nCOMMIT\n' \
		"$(sed 's/^/-D PREROUTING /' <<<"$rules")" | nsx rtr iptables-restore --noflush
	[[ -z $(nsx rtr iptables -t raw -S PREROUTING | grep sstb- || true) ]] || die "loss rules were not removed"
	FAULTS+=$(printf '{"kind":"loss","target":"multicast","groups":[{"group":"%s","port":%d,"counter":"sstb-loss-ch1"},{"group":"%s","port":%d,"counter":"sstb-loss-ch2"}],"probability":%s,"namespace":"%s","mechanism":"iptables -t raw PREROUTING (bridged, br_netfilter) -m statistic --mode random -j DROP","planned_start_epoch":%s,"planned_end_epoch":%s}\n' \
		"$CH1_GROUP" "$CH1_PORT" "$CH2_GROUP" "$CH2_PORT" "$p" "$(ns rtr)" "$(fadd "$T0" "$fs")" "$(fadd "$T0" "$fe")")$'\n'
}

# --- main ---------------------------------------------------------------------------
SCENARIO="" OUTDIR=./testbed-out OUT_PREFIX="" DURATION="" NO_INSTALL=0 KEEP_WORKDIR=0 CLEANUP=0
while [[ $# -gt 0 ]]; do
	case $1 in
	-o | --outdir) OUTDIR=$2; shift 2 ;;
	--prefix) OUT_PREFIX=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--no-install) NO_INSTALL=1; shift ;;
	--keep-workdir) KEEP_WORKDIR=1; shift ;;
	--cleanup) CLEANUP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) usage >&2; exit 64 ;;
	*) [[ -z $SCENARIO ]] || { usage >&2; exit 64; }; SCENARIO=$1; shift ;;
	esac
done

if [[ $EUID -ne 0 ]]; then
	echo "testbed: must run as root (it creates network namespaces, runs tcpdump and iptables)" >&2
	exit 2
fi

if [[ $CLEANUP == 0 ]]; then
	case $SCENARIO in
	steady | loss) : "${DURATION:=30}" ;;
	takedown) : "${DURATION:=40}" ;;
	"") usage >&2; exit 64 ;;
	*) die "unknown scenario '$SCENARIO' (steady, takedown, loss)" ;;
	esac
	[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 20 ]] || die "--duration must be a whole number of seconds, at least 20"
	[[ $OUT_PREFIX =~ ^[A-Za-z0-9._-]*$ ]] || die "--prefix may only hold letters, digits, '.', '_' and '-'"

	ensure_deps
fi

mkdir -p "$STATE_DIR"
exec 9>"$STATE_DIR/lock"
flock -n 9 || die "another testbed run holds $STATE_DIR/lock"

if [[ $CLEANUP == 1 ]]; then
	cleanup_all
	log "cleanup done"
	rm -f "$STATE_DIR/lock"
	rmdir "$STATE_DIR" 2>/dev/null || true
	exit 0
fi

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cleanup_all # leftovers of an interrupted earlier run
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
PCAP=$OUTDIR/$OUT_PREFIX$SCENARIO.pcap
TRUTH=$OUTDIR/$OUT_PREFIX$SCENARIO.truth.json
rm -f "$PCAP" "$PCAP.partial" "$TRUTH"
W=$(mktemp -d /tmp/sstb.XXXXXX)
echo "$W" >"$STATE_DIR/workdir"
mkdir -p "$W/logs"
: >"$W/logs/faults.jsonl"

CRED_USER=lab$(openssl rand -hex 3)
CRED_PASS=$(openssl rand -hex 6)

log "scenario $SCENARIO, ${DURATION}s, work directory $W"
log "making content"
make_content $((DURATION + 10))
make_certs
write_nginx_conf

log "building lab"
build_router
ROLES=$(scn_"${SCENARIO}"_roles)
for r in $ROLES; do
	case $r in
	srv) add_ns srv server "${NAME4[cdn-b.lab.test]}" "${NAME4[panel.lab.test]}" -- \
		"${NAME6[cdn-b.lab.test]}" "${NAME6[panel.lab.test]}" ;;
	head) add_ns head headend ;;
	c*) add_ns "$r" client ;;
	rx*) add_ns "$r" receiver ;;
	esac
done
PROBE=""
for r in $ROLES; do
	if [[ $r == c* ]]; then
		PROBE=$r
		break
	fi
done
start_services

ACTORS="" FAULTS="" ACTOR_PIDS=() HEADEND_PIDS=()
if [[ " $ROLES " == *" head "* ]]; then
	start_channel lab-one "$CH1_GROUP" "$CH1_PORT" "$CH1_ENCAP" testsrc 440
	start_channel lab-two "$CH2_GROUP" "$CH2_PORT" "$CH2_ENCAP" testsrc2 880
	sleep 1.5
	for p in "${HEADEND_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "head-end ffmpeg exited: $(cat "$W"/logs/ffmpeg-*.log)"; done
fi

log "capturing on br0 -> $PCAP"
start_capture
T0=$(fadd "$(now)" 0.5)
"scn_${SCENARIO}_run" "$DURATION"

# Players and receivers end by themselves before D; wait for them (bounded).
deadline=$(fadd "$T0" $((DURATION + 15)))
for p in "${ACTOR_PIDS[@]}"; do
	while kill -0 "$p" 2>/dev/null; do
		if awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n > d) }'; then
			log "warning: actor $p still running at the deadline; ending it"
			kill -TERM "$p" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	wait "$p" || log "warning: actor $p exited with status $?"
done
sleep_until "$(fadd "$T0" "$DURATION")"
for p in "${HEADEND_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${HEADEND_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
stop_capture
log "capture stopped: $(stat -c %s "$PCAP") bytes"

# Ground truth.
printf '%s' "$TOPO" >"$W/topology.jsonl"
printf '%s' "$ACTORS" >"$W/actors.jsonl"
printf '%s' "$FAULTS" >"$W/faults_planned.jsonl"
cat >"$W/meta.json" <<EOF
{"scenario":"$SCENARIO","duration_s":$DURATION,"t0_epoch":$T0,"capture_start_epoch":$CAP_START,
 "capture_end_epoch":$CAP_END,"pcap":"$(basename "$PCAP")","capture_namespace":"$(ns rtr)",
 "capture_interface":"br0","net4":"$NET4","net6":"$NET6","panel_port":$PANEL_PORT,
 "credentials":{"username":"$CRED_USER","password":"$CRED_PASS"},
 "names":{"cdn-a.lab.test":["${NAME4[cdn-a.lab.test]}","${NAME6[cdn-a.lab.test]}"],
          "cdn-b.lab.test":["${NAME4[cdn-b.lab.test]}","${NAME6[cdn-b.lab.test]}"],
          "panel.lab.test":["${NAME4[panel.lab.test]}","${NAME6[panel.lab.test]}"]},
 "dns_server":["${IP4[rtr]}","${IP6[rtr]}"],
 "tools":{"nginx":"$(nginx -v 2>&1 | sed 's/.*\///')","ffmpeg":"$(ffmpeg -version | awk 'NR==1{print $3}')",
          "tcpdump":"$(tcpdump --version 2>&1 | awk 'NR==1{print $3}')","kernel":"$(uname -r)"}}
EOF
"$PY" "$LIB/truth.py" build --workdir "$W" --pcap "$PCAP" --out "$TRUTH"
RUN_OK=1
log "wrote $PCAP and $TRUTH"
