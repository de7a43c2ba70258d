#!/usr/bin/env bash
# End-to-end check of the demo gateway binary, as the README runs it: it serves the routes,
# answers a slow request with a 504 problem within its timeout, and on SIGTERM lets an in-flight
# request finish. Loopback only. Usage: .ci/gateway-smoke.sh PATH_TO_GATEWAY_BINARY
set -euo pipefail
gateway="$1"
key=pal_demo_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM
log=$(mktemp)
"$gateway" --addr 127.0.0.1:0 --timeout 3s >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

addr=""
for _ in $(seq 1 100); do
  addr=$(grep -o 'addr=127\.0\.0\.1:[0-9]*' "$log" | head -n1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "gateway did not start:"; cat "$log"; exit 1; }
echo "gateway on $addr"

expect() { # expect STATUS CURL_ARGS...
  local want="$1"; shift
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@")
  [ "$got" = "$want" ] || { echo "FAIL: curl $* -> $got, wanted $want"; cat "$log"; exit 1; }
  echo "ok: $want for $*"
}

expect 200 "http://$addr/healthz"
expect 401 "http://$addr/v1/hello"
expect 200 -H "x-api-key: $key" "http://$addr/v1/hello"
expect 200 -H "x-api-key: $key" -H 'content-type: application/json' -d '{"a":1}' "http://$addr/v1/echo"
start=$(date +%s%N)
expect 504 -H "x-api-key: $key" "http://$addr/v1/slow?ms=5000"
# The handler would answer 200 after 5 s, so a 504 is the timeout's answer; the time is shown,
# not asserted (shared machines are noisy).
echo "info: the 504 came after $(( ($(date +%s%N) - start) / 1000000 )) ms (timeout 3 s)"
curl -s --max-time 10 -H "x-api-key: $key" "http://$addr/v1/slow?ms=5000" | grep -q '"type":"https://docs.rs/palisade-core' \
  || { echo "FAIL: the 504 body is not a Palisade problem"; exit 1; }

# SIGTERM while a request is in flight: it still gets its answer, then the process exits.
out=$(mktemp)
curl -s -o "$out" -w '%{http_code}' --max-time 10 -H "x-api-key: $key" "http://$addr/v1/slow?ms=2000" >"$out.status" &
curl_pid=$!
# Wait until the gateway has logged the request, then send SIGTERM.
for _ in $(seq 1 100); do
  grep -q 'uri=/v1/slow?ms=2000' "$log" && break
  sleep 0.05
done
grep -q 'uri=/v1/slow?ms=2000' "$log" || { echo "FAIL: the slow request never reached the gateway"; cat "$log"; exit 1; }
kill -TERM "$pid"
wait "$curl_pid"
[ "$(cat "$out.status")" = "200" ] || { echo "FAIL: in-flight request got $(cat "$out.status")"; cat "$log"; exit 1; }
grep -q '"slept_ms":2000' "$out" || { echo "FAIL: in-flight body: $(cat "$out")"; exit 1; }
wait "$pid" || true
grep -q "shutting down" "$log" || { echo "FAIL: no shutdown log"; cat "$log"; exit 1; }
echo "ok: SIGTERM let the in-flight request finish"
rm -f "$out" "$out.status"
echo "gateway smoke test passed"
