#!/usr/bin/env bash
# Installs what the real-browser, real-nginx and PostgreSQL end-to-end tests need, from Debian's
# packages: chromium (/usr/bin/chromium), chromium-driver (/usr/bin/chromedriver), nginx
# (/usr/sbin/nginx), and, when no PostgreSQL answers on 127.0.0.1:5432, postgresql, whose
# cluster is then started with trust authentication on the loopback and a database `test`
# (the suite creates and drops its own databases there). Idempotent: packages already installed
# are left alone, and apt is not touched at all when nothing is missing. Prints what it did.
#
# Usage: scripts/install-e2e-deps.sh        (as root, or with sudo available)
set -euo pipefail

packages=(chromium chromium-driver nginx)

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

missing=()
for p in "${packages[@]}"; do
    if installed "$p"; then
        echo "install-e2e-deps: $p already installed ($(dpkg-query -W -f='${Version}' "$p"))"
    else
        missing+=("$p")
    fi
done

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-e2e-deps: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
fi

# A mirror hiccup should not fail a CI run: each apt step gets three tries.
retry() {
    local n
    for n in 1 2 3; do
        "$@" && return 0
        echo "install-e2e-deps: attempt $n of 3 failed: $*" >&2
        sleep $((n * 5))
    done
    return 1
}

if [ "${#missing[@]}" -gt 0 ]; then
echo "install-e2e-deps: apt-get update"
retry "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
echo "install-e2e-deps: installing ${missing[*]}"
# The nginx package's postinst tries to start the service; in a container without an init
# system that fails harmlessly (invoke-rc.d reports it), and the tests start their own nginx.
retry "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "${missing[@]}"
fi

for p in "${missing[@]}"; do
    if installed "$p"; then
        echo "install-e2e-deps: installed $p ($(dpkg-query -W -f='${Version}' "$p"))"
    else
        echo "install-e2e-deps: FAILED to install $p" >&2
        exit 1
    fi
done
for b in /usr/bin/chromium /usr/bin/chromedriver /usr/sbin/nginx; do
    [ -x "$b" ] || { echo "install-e2e-deps: $b missing after install" >&2; exit 1; }
done

if [ "$need_postgres" -eq 1 ]; then
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
fi
echo "install-e2e-deps: done"
