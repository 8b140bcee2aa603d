#!/usr/bin/env bash
# `make run`: serves ./var on 127.0.0.1:8000 (override with DUCKSTORE_* env vars).
set -euo pipefail
cd "$(dirname "$0")/.."
export DUCKSTORE_DATA_DIR="${DUCKSTORE_DATA_DIR:-./var}"
export DUCKSTORE_HTTP_ADDR="${DUCKSTORE_HTTP_ADDR:-127.0.0.1:8000}"
mkdir -p "$DUCKSTORE_DATA_DIR"
echo "duckstore: REST on http://$DUCKSTORE_HTTP_ADDR, data in $DUCKSTORE_DATA_DIR"
if [ -z "${DUCKSTORE_ADMIN_KEY:-}" ]; then
  echo "duckstore: admin key in $DUCKSTORE_DATA_DIR/admin.key (created on first start)"
fi
exec build/duckstore serve
