#!/usr/bin/env bash
# Installs what zraft needs to build and test on Debian 12, if missing.
# Idempotent: re-running installs nothing new. Needs root (or sudo).
set -euo pipefail
# chromium-headless-shell: the cluster page's browser test (system_ui);
# dpkg-dev: CPack's .deb (dpkg-shlibdeps finds its dependencies).
# iptables: the chaos campaign's partitions (without it they are left out).
pkgs=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
      libzmq3-dev libcjson-dev libcriterion-dev libmicrohttpd-dev libcurl4-openssl-dev curl
      libgnutls28-dev procps python3 python3-yaml redis-tools openssl
      chromium-headless-shell dpkg-dev file iptables)
# kubectl renders deploy/k8s in the tests (test/deploy): Debian's
# kubernetes-client, unless a kubectl is already installed (another
# package's /usr/bin/kubectl would conflict with it).
command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
