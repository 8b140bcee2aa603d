#!/usr/bin/env bash
# Installs everything duckstore needs to build, run and test, on a fresh Debian machine.
# Idempotent: each step checks first and does nothing when its work is already done.
#   Debian packages: apt-get (only the missing ones), PHP for the Keboola Connection package in clients/php.
#   DuckDB 1.4.4: two npm packages fetched with `npm pack`, verified against pinned
#   SHA-256 sums, unpacked into third_party/duckdb (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libsodium-dev libssl-dev zlib1g-dev
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler grpc-proto
  libcriterion-dev
  clang libclang-rt-14-dev
  python3 python3-pytest python3-requests python3-grpcio python3-protobuf
  libpq-dev postgresql
  wrk
  php-cli php-curl php-google-protobuf php-psr-log phpunit composer
  nodejs npm
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A machine may carry its own Node.js outside Debian's packages; npm is all we need from it.
if command -v npm >/dev/null 2>&1; then
  tmp=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# DuckDB, pinned. The library comes from the Node bindings package, the header from the duckdb package.
DUCKDB_VERSION=1.4.4
LIB_PKG="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
LIB_TGZ="duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz"
LIB_SHA256="732fac4dc6b8f198870b9c4bb6ddf13544466daca00ad28ba2f1d80de5d7aa4b"
HDR_PKG="duckdb@1.4.4"
HDR_TGZ="duckdb-1.4.4.tgz"
HDR_SHA256="5bb967dcbcd517670ba5f169f238fb9d6787e53752c60ebe24386169d76941ed"
DEST=third_party/duckdb

if [ -f "$DEST/.version" ] && [ "$(cat "$DEST/.version")" = "$DUCKDB_VERSION" ] \
   && [ -f "$DEST/lib/libduckdb.so" ] && [ -f "$DEST/include/duckdb.h" ]; then
  exit 0
fi

echo "setup: fetching DuckDB $DUCKDB_VERSION with npm pack"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$LIB_PKG" "$HDR_PKG" >/dev/null 2>&1) || {
  echo "setup: npm pack failed for $LIB_PKG / $HDR_PKG" >&2; exit 1; }
check() {
  local got
  got=$(sha256sum "$work/$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "setup: checksum mismatch for $1: expected $2, got $got" >&2
    exit 1
  fi
}
check "$LIB_TGZ" "$LIB_SHA256"
check "$HDR_TGZ" "$HDR_SHA256"
rm -rf "$DEST"
mkdir -p "$DEST/lib" "$DEST/include"
tar -xzf "$work/$LIB_TGZ" -C "$work" package/libduckdb.so
mv "$work/package/libduckdb.so" "$DEST/lib/"
tar -xzf "$work/$HDR_TGZ" -C "$work" package/src/duckdb/src/include/duckdb.h
mv "$work/package/src/duckdb/src/include/duckdb.h" "$DEST/include/"
echo "$DUCKDB_VERSION" > "$DEST/.version"
echo "setup: DuckDB $DUCKDB_VERSION ready in $DEST"
