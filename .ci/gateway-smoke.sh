#!/usr/bin/env bash
# End-to-end check of the demo gateway binary, as the README runs it: it serves the routes,
# answers a slow request with a 504 problem within its timeout, keeps credentials out of its
# logs, accepts the demo JWT only in demo mode, refuses an empty key file on SIGHUP, exits 78 on a
# bad configuration, and on SIGTERM
# lets an in-flight request finish while a half-sent request cannot hold it open.
# Loopback only. Usage: .ci/gateway-smoke.sh PATH_TO_GATEWAY_BINARY
set -euo pipefail
gateway="$1"
# The most the demo logs per request (its default is one line at info), so the check that
# credentials stay out of the log reads every line a layer writes.
export RUST_LOG="${RUST_LOG:-info,tower_http=debug,palisade=debug}"
key=pal_demo_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM
work=$(mktemp -d)
log="$work/gateway.log"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

fail() { echo "FAIL: $*"; echo "--- gateway log"; cat "$log"; exit 1; }

# start LOG ARGS... : starts a gateway, sets $pid and $addr once it listens.
start() {
  local out="$1"; shift
  "$gateway" --addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 "$@" >"$out" 2>&1 &
  pid=$!
  pids+=("$pid")
  addr=""
  for _ in $(seq 1 100); do
    addr=$(grep -o 'addr=127\.0\.0\.1:[0-9]*' "$out" | head -n1 | cut -d= -f2 || true)
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "gateway did not start:"; cat "$out"; exit 1
}

expect() { # expect STATUS CURL_ARGS...
  local want="$1"; shift
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@")
  [ "$got" = "$want" ] || fail "curl $* -> $got, wanted $want"
  echo "ok: $want for $*"
}

# wait_exit PID SECONDS : true if the process ends within SECONDS.
wait_exit() {
  for _ in $(seq 1 $(( $2 * 10 ))); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# An empty PALISADE_TRUSTED_PROXIES means "no trusted proxies", not a start-up failure.
PALISADE_TRUSTED_PROXIES= start "$log" --timeout 3s
echo "gateway on $addr"

expect 200 "http://$addr/healthz"
expect 401 "http://$addr/v1/hello"
expect 200 -H "x-api-key: $key" "http://$addr/v1/hello"
expect 200 -H "x-api-key: $key" -H 'content-type: application/json' -d '{"message":"hi","tags":["demo"]}' "http://$addr/v1/echo"
expect 400 -H "x-api-key: $key" -H 'content-type: application/json' -d '{"message":"hi","\u006dessage":"x"}' "http://$addr/v1/echo"
expect 422 -H "x-api-key: $key" -H 'content-type: application/json' -d '{"message":"hi","admin":true}' "http://$addr/v1/echo"
expect 415 -H "x-api-key: $key" -H 'content-type: text/plain' -d '{"message":"hi"}' "http://$addr/v1/echo"
expect 200 "http://$addr/readyz"
# JWTs from the demo issuer (discovery and a JWKS fetch, over loopback) beside API keys.
token=$(grep -o 'a demo token (24 h): [A-Za-z0-9_.-]*' "$log" | head -n1 | sed 's/.*: //')
[ -n "$token" ] || fail "no demo token in the start-up log"
expect 200 -H "authorization: Bearer $token" "http://$addr/v1/hello"
last=A; [ "${token: -1}" = A ] && last=Q
expect 401 -H "authorization: Bearer ${token%?}$last" "http://$addr/v1/hello"
expect 200 -H "x-api-key: $key" "http://$addr/v1/upstream"
curl -s --max-time 10 -H "x-api-key: $key" "http://$addr/v1/upstream" | grep -q '"work":"done"' \
  || fail "/v1/upstream did not pass the upstream's answer on"
# /metrics, on its own listener: each layer's admitted and refused counts, a JWT histogram.
metrics=$(grep -o 'metrics=127\.0\.0\.1:[0-9]*' "$log" | head -n1 | cut -d= -f2 || true)
[ -n "$metrics" ] || fail "no metrics listener in the start-up log"
curl -s --max-time 10 "http://$metrics/metrics" >"$work/metrics.txt" || fail "GET /metrics failed"
for series in 'palisade_ratelimit_requests_total{tier="ip",outcome="admitted"}' \
  'palisade_apikey_requests_total{outcome="accepted"}' 'palisade_jwt_requests_total{outcome="accepted"}' \
  'palisade_jwt_verify_seconds_bucket' 'palisade_json_requests_total{outcome="duplicate_key"}'; do
  grep -qF "$series" "$work/metrics.txt" || { cat "$work/metrics.txt"; fail "/metrics lacks $series"; }
done
expect 404 "http://$addr/metrics"
echo "ok: /metrics on $metrics, not on the public port"
# The demo header makes the upstream fail (502): once half of the last calls failed (at least
# 5 calls), the breaker opens and calls fail fast (503) without reaching the upstream.
failures=0
status=""
for _ in $(seq 1 10); do
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "x-api-key: $key" -H 'x-demo-error-rate: 1' "http://$addr/v1/upstream")
  [ "$status" = "503" ] && break
  [ "$status" = "502" ] || fail "a failing upstream answered $status, wanted 502 or 503"
  failures=$((failures + 1))
done
[ "$status" = "503" ] && [ "$failures" -ge 1 ] || fail "the breaker did not open ($failures failures, last $status)"
expect 503 -H "x-api-key: $key" "http://$addr/v1/upstream"
curl -s --max-time 10 "http://$addr/readyz" | grep -q '"state":"open"' || fail "/readyz does not report the open breaker"
echo "ok: the upstream breaker opened and /readyz reports it"
expect 405 -X POST "http://$addr/healthz"
curl -s -i --max-time 10 -X POST "http://$addr/healthz" | grep -qi '^content-type: application/problem+json' \
  || fail "the 405 is not a problem"
expect 401 "http://$addr/v1/hello?api_key=$key"
start_ns=$(date +%s%N)
expect 504 -H "x-api-key: $key" "http://$addr/v1/slow?ms=5000"
# The handler would answer 200 after 5 s, so a 504 is the timeout's answer; the time is shown,
# not asserted (shared machines are noisy).
echo "info: the 504 came after $(( ($(date +%s%N) - start_ns) / 1000000 )) ms (timeout 3 s)"
curl -s --max-time 10 -H "x-api-key: $key" "http://$addr/v1/slow?ms=5000" | grep -q '"type":"https://docs.rs/palisade-core' \
  || fail "the 504 body is not a Palisade problem"
# A burst from one address is cut off by the per-IP limit (20/s, burst 40), with Retry-After.
limited=0
for _ in $(seq 1 80); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$addr/v1/hello")
  [ "$code" = "429" ] && { limited=1; break; }
done
[ "$limited" = 1 ] || fail "80 quick requests from one address were never rate limited"
curl -s -i --max-time 5 "http://$addr/v1/hello" | grep -qi '^retry-after:' || fail "the 429 has no Retry-After"
echo "ok: a burst from one address got 429 with Retry-After"
sleep 3
leaks=$(grep -e "$key" -e 'api_key' -e "${token:0:40}" "$log" \
  | grep -v -e 'accepting the public demo key' -e 'gateway listening' -e 'a demo token' || true)
[ -z "$leaks" ] || fail "a key or a query string reached the log: $leaks"
echo "ok: no key or query string in the log"

# SIGTERM with a half-sent request held open and a request in flight: the in-flight one gets its
# answer, the half-sent one cannot keep the process alive.
exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ' >&3
out="$work/out"
started=$(grep -c 'started processing request' "$log")
curl -s -o "$out" -w '%{http_code}' --max-time 10 -H "x-api-key: $key" "http://$addr/v1/slow?ms=2000" >"$out.status" &
curl_pid=$!
# Wait until the gateway has logged the request, then send SIGTERM.
for _ in $(seq 1 100); do
  [ "$(grep -c 'started processing request' "$log")" -gt "$started" ] && break
  sleep 0.05
done
[ "$(grep -c 'started processing request' "$log")" -gt "$started" ] || fail "the slow request never reached the gateway"
kill -TERM "$pid"
wait "$curl_pid" || true
[ "$(cat "$out.status")" = "200" ] || fail "in-flight request got $(cat "$out.status")"
grep -q '"slept_ms":2000' "$out" || fail "in-flight body: $(cat "$out")"
wait_exit "$pid" 15 || fail "the gateway did not exit with a half-sent request held open"
exec 3>&-
grep -q "shutting down" "$log" || fail "no shutdown log"
echo "ok: SIGTERM let the in-flight request finish and a half-sent request did not hold the process"

# A configuration error is a readable message and exit status 78.
set +e
"$gateway" --addr 127.0.0.1:0 --trusted-proxies 10.0.0.0/40 >"$work/bad.out" 2>&1
status=$?
set -e
[ "$status" = "78" ] || { cat "$work/bad.out"; fail "bad configuration exited $status, wanted 78"; }
grep -q '^error: invalid --trusted-proxies' "$work/bad.out" || fail "message: $(cat "$work/bad.out")"
grep -q 'Error {\|kind:' "$work/bad.out" && fail "a Debug dump: $(cat "$work/bad.out")"
echo "ok: bad configuration -> status 78: $(head -n1 "$work/bad.out")"

# --demo beside a real credential source is refused.
set +e
"$gateway" --addr 127.0.0.1:0 --demo --api-keys /dev/null >"$work/demo.out" 2>&1
status=$?
set -e
[ "$status" = "78" ] || { cat "$work/demo.out"; fail "--demo with --api-keys exited $status, wanted 78"; }
grep -q '^error: invalid --demo' "$work/demo.out" || fail "message: $(cat "$work/demo.out")"
echo "ok: --demo beside --api-keys -> status 78"

# A --config file with a bad value is refused with its key and line.
printf '[server.rate_limit.ip]\nquota = "lots"\n' >"$work/bad.toml"
set +e
"$gateway" --addr 127.0.0.1:0 --config "$work/bad.toml" >"$work/config.out" 2>&1
status=$?
set -e
[ "$status" = "78" ] || { cat "$work/config.out"; fail "a bad --config exited $status, wanted 78"; }
grep -q '^error: invalid --config .*`server.rate_limit.ip.quota` (line 2)' "$work/config.out" \
  || fail "message: $(cat "$work/config.out")"
echo "ok: bad --config -> status 78: $(head -n1 "$work/config.out")"

# SIGHUP with an emptied key file: refused, the current keys stay in force.
keys="$work/keys.txt"
echo "sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=demo scopes=hello:read" >"$keys"
log="$work/reload.log"
start "$log" --api-keys "$keys"
expect 200 -H "x-api-key: $key" "http://$addr/v1/hello"
# A real credential source configured: no demo issuer, no demo token, no demo key beside it.
grep -q 'a demo token' "$log" && fail "the demo issuer ran beside --api-keys"
expect 401 -H "authorization: Bearer $token" "http://$addr/v1/hello"
echo "ok: the demo token is refused once --api-keys is given"
: >"$keys"
kill -HUP "$pid"
for _ in $(seq 1 100); do grep -q 'not reloaded' "$log" && break; sleep 0.05; done
grep -q 'not reloaded' "$log" || fail "the empty key file was not refused"
expect 200 -H "x-api-key: $key" "http://$addr/v1/hello"
echo "ok: an empty key file on SIGHUP was refused and the key still works"
kill -TERM "$pid"
wait_exit "$pid" 15 || fail "the second gateway did not exit"

echo "gateway smoke test passed"
