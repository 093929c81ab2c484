// A stable hash: the same value on every machine, build and run (std::hash promises none
// of that), for data splits and draws that must not move when the code is rebuilt.
//
//   std::uint64_t h = selffeed::fnv1a64("dialogue-17");
//   h = selffeed::fnv1a64("more", h);  // continue over a second piece
#pragma once

#include <cstdint>
#include <string_view>

namespace selffeed {

inline constexpr std::uint64_t kFnv1a64Basis = 0xcbf29ce484222325ULL;

// FNV-1a 64 of `text`, continuing from `h`.
constexpr std::uint64_t fnv1a64(std::string_view text, std::uint64_t h = kFnv1a64Basis) {
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace selffeed
