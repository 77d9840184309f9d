# Shared set-up steps for scripts/serve and scripts/test (sourced, not run).
# Everything here is idempotent: a second run on a ready machine does nothing but check.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

say() { printf '>> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

# ensure_debian_packages PKG... : apt-get install the ones not yet installed.
ensure_debian_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv [EXTRA] : a virtualenv in .venv with roomcast installed (editable), plus extras.
ensure_venv() {
  local extra="${1:-}" py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "roomcast needs Python >= 3.11 (found: $("$py" --version 2>&1))"; return 1
  fi
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    if ! "$py" -m venv --help >/dev/null 2>&1 || ! "$py" -c 'import ensurepip' 2>/dev/null; then
      ensure_debian_packages python3-venv
    fi
    say "creating $VENV"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
  fi
  local spec="$ROOT" stamp
  [ -n "$extra" ] && spec="$ROOT[$extra]"
  stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${extra:-base}"
  if [ ! -f "$stamp" ]; then
    say "installing roomcast${extra:+ [$extra]} into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$spec"
    touch "$stamp"
  fi
}

# ensure_postgres : a PostgreSQL on 127.0.0.1:5432 and a role for the tests; exports
# ROOMCAST_TEST_PG_URL (unless already set) and ROOMCAST_REQUIRE_PG=1.
ensure_postgres() {
  export ROOMCAST_REQUIRE_PG=1
  if [ -n "${ROOMCAST_TEST_PG_URL:-}" ]; then return 0; fi
  if ! command -v pg_isready >/dev/null || ! pg_isready -q -h 127.0.0.1 -p 5432; then
    ensure_debian_packages postgresql
    local ver
    ver="$(ls /etc/postgresql | sort -V | tail -1)"
    say "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 -p 5432 || { say "PostgreSQL did not start"; return 1; }
  fi
  local sql="DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'roomcast_test') THEN
      CREATE ROLE roomcast_test LOGIN CREATEDB PASSWORD 'roomcast_test';
    END IF; END \$\$;"
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -c "$sql" >/dev/null
  else
    psql -q -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -c "$sql" >/dev/null
  fi
  export ROOMCAST_TEST_PG_URL="postgresql+asyncpg://roomcast_test:roomcast_test@127.0.0.1:5432/postgres"
}

# ensure_redis : a Redis on 127.0.0.1:6379 for the multi-node tests; exports ROOMCAST_TEST_REDIS_URL
# (unless already set).
ensure_redis() {
  if [ -n "${ROOMCAST_TEST_REDIS_URL:-}" ]; then return 0; fi
  if ! command -v redis-cli >/dev/null || ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    ensure_debian_packages redis-server
    say "starting Redis"
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { say "Redis did not start"; return 1; }
  fi
  export ROOMCAST_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
}
