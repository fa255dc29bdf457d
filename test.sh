#!/usr/bin/env bash
# Runs every test of Mitra: static checks, then go test over all packages.
# Services (PostgreSQL, NATS) are taken from MITRA_TEST_* variables with the
# local defaults; in CI (CI=true) tests that need them fail when they are
# unreachable, elsewhere they skip saying why.
set -euo pipefail
cd "$(dirname "$0")"
unformatted=$(gofmt -l cmd internal)
if [ -n "$unformatted" ]; then
  echo "gofmt: these files are not formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 15m "$@" ./...
