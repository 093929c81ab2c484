#!/usr/bin/env bash
# Fails when a heavy third-party header appears outside the module allowed to use it
# (docs/STYLE: torch in the model modules, RocksDB in store, Beast/Asio in websocket and the
# C++ clients, SentencePiece in dialogue, spdlog in .cpp files only). Run by ctest.
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

failures=0
# check LABEL REGEX ALLOWED_PATH_REGEX
check() {
  local label=$1 pattern=$2 allowed=$3
  local hits
  hits=$(grep -rEn --include='*.h' --include='*.hpp' --include='*.cpp' "^\s*#\s*include\s*[<\"]($pattern)" \
           common store dialogue satisfaction feedback trainer websocket clients app tests bench 2>/dev/null \
         | grep -Ev "^($allowed)" || true)
  if [[ -n "$hits" ]]; then
    echo "check_includes: $label headers outside their module:"
    echo "$hits" | sed 's/^/  /'
    failures=$((failures + 1))
  fi
}

check RocksDB 'rocksdb/' 'store/src/|tests/store/'
check LibTorch 'torch/|ATen/|c10/' 'dialogue/src/|dialogue/nn/|satisfaction/src/|trainer/src/|tests/(dialogue|satisfaction|trainer)/|bench/[a-z_]*torch'
check Beast/Asio 'boost/beast|boost/asio' 'websocket/src/|clients/src/|tests/websocket/|bench/[a-z_]*load'
check SentencePiece 'sentencepiece' 'dialogue/src/'
# spdlog: .cpp files, plus the one header meant for .cpp files only.
check spdlog 'spdlog/' '[^:]*\.cpp:|common/include/selffeed/common/log\.h:'

# Public headers include nothing heavy at all (their own module's headers and the STL).
public_hits=$(grep -rEn "^\s*#\s*include\s*<(rocksdb|torch|ATen|c10|boost|sentencepiece|nlohmann|CLI)" \
                common/include store/include dialogue/include satisfaction/include feedback/include \
                trainer/include websocket/include 2>/dev/null || true)
if [[ -n "$public_hits" ]]; then
  echo "check_includes: public headers include third-party headers:"
  echo "$public_hits" | sed 's/^/  /'
  failures=$((failures + 1))
fi

if ((failures)); then exit 1; fi
echo "check_includes: ok"
