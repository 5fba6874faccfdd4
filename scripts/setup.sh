#!/usr/bin/env bash
# Everything uigniter needs on a Debian 12 host, idempotent: Debian packages (QEMU, busybox,
# squashfs-tools, e2fsprogs, iproute2, nftables, the kernel source and its build tools,
# chromium for the dashboard's browser tests), npm dependencies, the TypeScript build and
# the dashboard's bundle, and the guest kernel (about 5-15 minutes the
# first time on 2 cores; cached after, keyed by source version and config fragment).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "uigniter's setup installs packages and its daemon manages network namespaces: run it as root" >&2
  exit 1
fi

PACKAGES=(qemu-system-x86 busybox-static squashfs-tools e2fsprogs iproute2 nftables util-linux cpio
  linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev xz-utils kmod curl wrk chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.uigniter-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
else
  say "npm dependencies: up to date"
fi

say "building (tsc -b, and the dashboard with esbuild)"
npm run -s build

say "guest kernel (cached after the first build)"
node dist/src/cli/main.js kernel build
