#!/usr/bin/env bash
# Installs what the end-to-end tests need, and nothing when it is all there already:
# - from Debian's packages: chromium (/usr/bin/chromium) and chromium-driver
#   (/usr/bin/chromedriver) for the browser tests, nginx (/usr/sbin/nginx) and caddy
#   (/usr/bin/caddy) for the proxy tests, sqlite3 (/usr/bin/sqlite3) for the backup test,
#   systemd's systemd-analyze (/usr/bin/systemd-analyze) for the unit-file check, Node.js
#   (nodejs, npm) unless a node is already on PATH, and, when no PostgreSQL answers on
#   127.0.0.1:5432, postgresql, whose cluster is then started with trust authentication on the
#   loopback and a database `test` (the suite creates and drops its own databases there);
# - from PyPI, pinned: the independent SCIM conformance checker (scim2-tester) for python3;
# - from the npm registry, pinned by tests/api/provider_rp/package-lock.json: the certified
#   OpenID relying party (openid-client) the provider tests drive, into
#   tests/api/provider_rp/node_modules.
# Idempotent: what is installed is left alone, and apt, pip and npm run only for what is
# missing. Prints what it did.
#
# Usage: scripts/install-e2e-deps.sh        (as root, or with sudo available)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rp="$root/tests/api/provider_rp"

packages=(chromium chromium-driver nginx caddy sqlite3 systemd)
if ! command -v node >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# PostgreSQL: only when nothing answers already (a developer's own server is left alone).
pg_answers() {
    timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>/dev/null
}
need_postgres=0
if pg_answers; then
    echo "install-e2e-deps: PostgreSQL answers on 127.0.0.1:5432"
else
    need_postgres=1
    packages+=(postgresql)
fi

sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
fi

# A mirror hiccup should not fail a CI run: each network step gets three tries.
retry() {
    local n
    for n in 1 2 3; do
        "$@" && return 0
        echo "install-e2e-deps: attempt $n of 3 failed: $*" >&2
        sleep $((n * 5))
    done
    return 1
}

install_debian_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        if installed "$p"; then
            echo "install-e2e-deps: $p already installed ($(dpkg-query -W -f='${Version}' "$p"))"
        else
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "install-e2e-deps: no Debian package missing"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] && [ "${#sudo[@]}" -eq 0 ]; then
        echo "install-e2e-deps: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "install-e2e-deps: apt-get update"
    retry "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    echo "install-e2e-deps: installing ${missing[*]}"
    # The nginx and caddy packages' postinst scripts try to start their services; in a
    # container without an init system that fails harmlessly (invoke-rc.d reports it), and the
    # tests start their own.
    retry "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "${missing[@]}"
    for p in "${missing[@]}"; do
        if installed "$p"; then
            echo "install-e2e-deps: installed $p ($(dpkg-query -W -f='${Version}' "$p"))"
        else
            echo "install-e2e-deps: FAILED to install $p" >&2
            exit 1
        fi
    done
}

# The independent SCIM conformance checker the scim_conformance test runs
# (scripts/scim-conformance.py).
install_scim_checker() {
    local python_packages=(scim2-tester==0.5.2 scim2-client==0.13.2 scim2-models==0.12.3 httpx2==2.16.2)
    if python3 -c 'import scim2_tester, httpx2' 2>/dev/null; then
        echo "install-e2e-deps: scim2-tester already installed"
        return 0
    fi
    echo "install-e2e-deps: installing ${python_packages[*]} (pip)"
    retry python3 -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"
    python3 -c 'import scim2_tester, httpx2' || {
        echo "install-e2e-deps: FAILED to install scim2-tester" >&2
        exit 1
    }
}

# The relying-party library of the provider tests (needs node and npm, from PATH or above).
install_rp() {
    local want have
    want="$(sed -n 's/.*"openid-client": "\([^"]*\)".*/\1/p' "$rp/package.json" | head -n1)"
    have="$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "$rp/node_modules/openid-client/package.json" 2>/dev/null | head -n1 || true)"
    if [ -n "$have" ] && [ "$have" = "$want" ]; then
        echo "install-e2e-deps: openid-client $have already installed"
        return 0
    fi
    echo "install-e2e-deps: npm ci (openid-client $want) in tests/api/provider_rp"
    retry bash -c "cd '$rp' && npm ci --no-audit --no-fund"
    echo "install-e2e-deps: installed openid-client $want"
}

# A PostgreSQL installed above: its cluster on 127.0.0.1:5432, trust on the loopback, database
# `test`.
start_postgres() {
    local version conf
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    echo "install-e2e-deps: starting PostgreSQL $version on 127.0.0.1:5432"
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
        "${sudo[@]}" pg_createcluster "$version" main -- --auth-local=trust --auth-host=trust
    fi
    conf="/etc/postgresql/$version/main"
    # The tests connect over TCP as `postgres` without a password: trust the loopback only.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
        "${sudo[@]}" sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
    fi
    "${sudo[@]}" sed -i "s/^#\?listen_addresses.*/listen_addresses = '127.0.0.1'/" "$conf/postgresql.conf"
    "${sudo[@]}" sed -i "s/^#\?port = .*/port = 5432/" "$conf/postgresql.conf"
    "${sudo[@]}" pg_ctlcluster "$version" main restart || "${sudo[@]}" pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do
        pg_answers && break
        sleep 1
    done
    pg_answers || { echo "install-e2e-deps: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
    "${sudo[@]}" runuser -u postgres -- psql -h 127.0.0.1 -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
        || "${sudo[@]}" runuser -u postgres -- createdb -h 127.0.0.1 test
    echo "install-e2e-deps: PostgreSQL $version answers on 127.0.0.1:5432 (trust, database test)"
}

install_debian_packages
for b in /usr/bin/chromium /usr/bin/chromedriver /usr/sbin/nginx /usr/bin/caddy /usr/bin/sqlite3 \
    /usr/bin/systemd-analyze; do
    [ -x "$b" ] || { echo "install-e2e-deps: $b missing after install" >&2; exit 1; }
done
if [ "$need_postgres" -eq 1 ]; then
    start_postgres
fi
install_scim_checker
install_rp
echo "install-e2e-deps: done"
