#!/usr/bin/env bash
# Runs every test of Mitra: static checks (gofmt, go vet, staticcheck),
# then go test -race over all packages.
# Services are taken from MITRA_TEST_POSTGRES (default
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and
# MITRA_TEST_NATS (default nats://127.0.0.1:4222). When no NATS server
# answers there and nats-server is installed, one with JetStream is started
# on a free loopback port for the run. In CI (CI=true) tests whose service
# is unreachable fail; elsewhere they skip saying why. The console's
# browser tests save screenshots under MITRA_TEST_ARTEFACTS (default: a
# temporary directory named in the test log).
set -euo pipefail
cd "$(dirname "$0")"
unformatted=$(gofmt -l cmd internal)
if [ -n "$unformatted" ]; then
  echo "gofmt: these files are not formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi

if [ -z "${MITRA_TEST_NATS:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
    nats_dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 14222)
    "$nats_bin" -a 127.0.0.1 -p "$port" -js -sd "$nats_dir" >"$nats_dir/log" 2>&1 &
    nats_pid=$!
    trap 'kill $nats_pid 2>/dev/null; rm -rf "$nats_dir"' EXIT
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
    export MITRA_TEST_NATS="nats://127.0.0.1:$port"
    echo "test.sh: started nats-server with JetStream at $MITRA_TEST_NATS" >&2
  fi
fi

# The console's browser tests (internal/web) drive Debian's chromium; CI
# runs as root on a fresh machine, so install it there when missing.
# Without it the browser tests skip, and fail under CI=true.
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing chromium for the console's browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: chromium is not installed (apt-get install -y chromium): the console's browser tests will skip" >&2
  fi
fi

go vet ./...
# staticcheck at a pinned version, fetched through the Go module proxy.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -race -count=1 -timeout 15m "$@" ./...
