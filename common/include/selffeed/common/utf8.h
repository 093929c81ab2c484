// Strict UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), for text that arrives from untrusted clients.
#pragma once

#include <cstddef>
#include <string_view>

namespace selffeed {

bool is_valid_utf8(std::string_view text);

// Byte offset of the first invalid sequence, or text.size() when the text is valid.
std::size_t first_invalid_utf8(std::string_view text);

}  // namespace selffeed
