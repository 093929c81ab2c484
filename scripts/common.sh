# Shared by the scripts: repository root, build directory, binary, data directory.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${SELFFEED_BUILD_DIR:-$root/build}"
selffeed="$build/app/selffeed"
# Real dialogue data: SELFFEED_DATA, or the shared folder beside the checkout.
data="${SELFFEED_DATA:-$root/../shared/data}"

require_data() {
  local file=$1
  if [[ ! -f "$data/$file" ]]; then
    echo "selffeed: $data/$file not found. Point SELFFEED_DATA at a folder with personachat/ and self_dialogue/" \
         "(see shared/data/README.md), or put the official PersonaChat files there." >&2
    exit 1
  fi
}
