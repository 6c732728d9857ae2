#!/usr/bin/env bash
# Installs every Debian package and Go tool the tests need. Idempotent.
# The packages come from the one list in lab/deps (`go run ./lab deps -print`
# shows it); `lab deps` installs what is missing with apt-get, with no
# packaged service (kea, bind9, unbound, chrony) started on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./lab deps
export PATH=$PATH:$(go env GOPATH)/bin
command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@latest
