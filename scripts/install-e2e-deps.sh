#!/usr/bin/env bash
# Installs what the end-to-end tests need, from Debian's packages: chromium (/usr/bin/chromium),
# chromium-driver (/usr/bin/chromedriver), nginx (/usr/sbin/nginx) and caddy (/usr/bin/caddy)
# for the proxy tests, sqlite3 (/usr/bin/sqlite3) for the backup test, and systemd's
# systemd-analyze (/usr/bin/systemd-analyze) for the unit-file check; and the independent SCIM
# conformance checker (scim2-tester, from PyPI) for python3. Idempotent: packages already
# installed are left alone, and apt is not touched at all when nothing is missing. Prints what
# it did.
#
# Usage: scripts/install-e2e-deps.sh        (as root, or with sudo available)
set -euo pipefail

packages=(chromium chromium-driver nginx caddy sqlite3 systemd)

# The independent SCIM conformance checker the scim_conformance test runs
# (scripts/scim-conformance.py), from PyPI, pinned.
python_packages=(scim2-tester==0.5.2 scim2-client==0.13.2 scim2-models==0.12.3 httpx2==2.16.2)
if python3 -c 'import scim2_tester, httpx2' 2>/dev/null; then
    echo "install-e2e-deps: scim2-tester already installed"
else
    echo "install-e2e-deps: installing ${python_packages[*]} (pip)"
    ok=""
    for n in 1 2 3; do
        if python3 -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"; then
            ok=1
            break
        fi
        echo "install-e2e-deps: pip attempt $n of 3 failed" >&2
        sleep $((n * 5))
    done
    [ -n "$ok" ] && python3 -c 'import scim2_tester, httpx2' || {
        echo "install-e2e-deps: FAILED to install scim2-tester" >&2
        exit 1
    }
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

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-e2e-deps: nothing to do"
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
# The nginx and caddy packages' postinst scripts try to start their services; in a container
# without an init system that fails harmlessly (invoke-rc.d reports it), and the tests start
# their own.
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
for b in /usr/bin/chromium /usr/bin/chromedriver /usr/sbin/nginx /usr/bin/caddy /usr/bin/sqlite3 \
    /usr/bin/systemd-analyze; do
    [ -x "$b" ] || { echo "install-e2e-deps: $b missing after install" >&2; exit 1; }
done
echo "install-e2e-deps: done"
