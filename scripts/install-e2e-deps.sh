#!/usr/bin/env bash
# Installs what the real-browser and real-nginx end-to-end tests need, from Debian's packages:
# chromium (/usr/bin/chromium), chromium-driver (/usr/bin/chromedriver) and nginx
# (/usr/sbin/nginx); and the independent OpenID relying party of the provider tests: Node.js
# (Debian's nodejs and npm, unless a node is already on PATH) and openid-client from the npm
# registry, pinned by tests/api/provider_rp/package-lock.json, into
# tests/api/provider_rp/node_modules. Idempotent: packages already installed are left alone,
# apt is not touched at all when nothing is missing, and npm runs only when the pinned
# openid-client is not installed yet. Prints what it did.
#
# Usage: scripts/install-e2e-deps.sh        (as root, or with sudo available)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rp="$root/tests/api/provider_rp"

packages=(chromium chromium-driver nginx)
if ! command -v node >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${packages[@]}"; do
    if installed "$p"; then
        echo "install-e2e-deps: $p already installed ($(dpkg-query -W -f='${Version}' "$p"))"
    else
        missing+=("$p")
    fi
done

# The relying-party library for the provider tests (needs node and npm, from PATH or above).
install_rp() {
    local want have
    want="$(sed -n 's/.*"openid-client": "\([^"]*\)".*/\1/p' "$rp/package.json" | head -n1)"
    have="$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "$rp/node_modules/openid-client/package.json" 2>/dev/null | head -n1 || true)"
    if [ -n "$have" ] && [ "$have" = "$want" ]; then
        echo "install-e2e-deps: openid-client $have already installed"
        return 0
    fi
    echo "install-e2e-deps: npm ci (openid-client $want) in tests/api/provider_rp"
    local n
    for n in 1 2 3; do
        (cd "$rp" && npm ci --no-audit --no-fund) && break
        echo "install-e2e-deps: npm attempt $n of 3 failed" >&2
        [ "$n" -eq 3 ] && return 1
        sleep $((n * 5))
    done
    echo "install-e2e-deps: installed openid-client $want"
}

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-e2e-deps: no Debian package missing"
    install_rp
    echo "install-e2e-deps: done"
    exit 0
fi

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

echo "install-e2e-deps: apt-get update"
retry "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
echo "install-e2e-deps: installing ${missing[*]}"
# The nginx package's postinst tries to start the service; in a container without an init
# system that fails harmlessly (invoke-rc.d reports it), and the tests start their own nginx.
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
for b in /usr/bin/chromium /usr/bin/chromedriver /usr/sbin/nginx; do
    [ -x "$b" ] || { echo "install-e2e-deps: $b missing after install" >&2; exit 1; }
done
install_rp
echo "install-e2e-deps: done"
