#!/usr/bin/env bash
# Installs everything selffeed needs on Debian 12 (bookworm), idempotently.
#
# 1. Debian packages (apt-get, --no-install-recommends).
# 2. SentencePiece rebuilt from Debian's own source package against the system
#    protobuf. Debian's libsentencepiece bundles protobuf-lite 3.14 and crashes any
#    process that also loads LibTorch (protobuf 3.21); see docs/stack.md.
#
# Environment:
#   SELFFEED_DEPS_PREFIX  where the rebuilt SentencePiece goes (default /opt/selffeed-deps)
#   SELFFEED_WITH_BROWSER=0  skip Chromium, Node.js and playwright-core (the browser test)
set -euo pipefail

prefix="${SELFFEED_DEPS_PREFIX:-/opt/selffeed-deps}"
spm_version="0.1.97"

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

packages=(
  g++ cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread
  librocksdb-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev
  libboost1.81-dev libboost-json1.81-dev libboost-system1.81-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libre2-dev
  libssl-dev
  protobuf-compiler libprotobuf-dev dpkg-dev
)
if [[ "${SELFFEED_WITH_BROWSER:-1}" == 1 ]]; then
  packages+=(chromium)
  # A machine may already have Node.js from elsewhere (NodeSource); Debian's npm would clash.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
  apt_log=$(mktemp /tmp/selffeed-apt.XXXXXX.log)
  if ! { "${sudo_cmd[@]}" apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
       >"$apt_log" 2>&1; then
    tail -n 30 "$apt_log"
    echo "install-deps: apt-get failed; full log in $apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
else
  echo "install-deps: Debian packages already installed"
fi

# LibTorch's speed depends on libblas.so.3 pointing at OpenBLAS (reference BLAS is ~30x slower).
blas_alt=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
if [[ "$blas_alt" != *openblas* ]]; then
  echo "install-deps: pointing libblas.so.3 at OpenBLAS"
  "${sudo_cmd[@]}" update-alternatives --set libblas.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
fi

stamp="$prefix/sentencepiece/.selffeed-built-$spm_version"
if [[ ! -f "$stamp" ]]; then
  echo "install-deps: rebuilding SentencePiece $spm_version against the system protobuf (about a minute)"
  src_list=/etc/apt/sources.list.d/selffeed-deb-src.sources
  if ! grep -rqs "^Types:.*deb-src" /etc/apt/sources.list.d/ && ! grep -qs "^deb-src" /etc/apt/sources.list; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | "${sudo_cmd[@]}" tee "$src_list" >/dev/null
    "${sudo_cmd[@]}" apt-get update -qq
  fi
  work=$(mktemp -d)
  chmod 755 "$work"  # apt-get source downloads as the unprivileged _apt user
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq --download-only "sentencepiece=$spm_version*" >/dev/null 2>&1 \
     || apt-get source -qq --download-only sentencepiece >/dev/null)
  (cd "$work" && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  src="$work/src"
  # Drop the bundled protobuf so that its headers cannot shadow the system ones.
  rm -rf "$src/third_party/protobuf-lite"
  sed -i 's|"third_party/protobuf-lite/google/protobuf/message_lite.h"|<google/protobuf/message_lite.h>|' "$src/src/init.h"
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSPM_USE_BUILTIN_PROTOBUF=OFF -DCMAKE_INSTALL_PREFIX="$prefix/sentencepiece" >/dev/null
  cmake --build "$work/build" -j"$(nproc)" >/dev/null
  "${sudo_cmd[@]}" cmake --install "$work/build" >/dev/null
  "${sudo_cmd[@]}" touch "$stamp"
  echo "install-deps: SentencePiece installed in $prefix/sentencepiece"
else
  echo "install-deps: SentencePiece already built in $prefix/sentencepiece"
fi

if [[ "${SELFFEED_WITH_BROWSER:-1}" == 1 ]]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [[ ! -d "$here/tests/browser/node_modules/playwright-core" ]]; then
    echo "install-deps: installing playwright-core from npm"
    (cd "$here/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "install-deps: done"
