// Cryptographic digests (OpenSSL): SHA-256 for content hashes that people compare across
// machines (a dataset snapshot and the hash a model pinned), HMAC-SHA-256 for pseudonyms
// that only the holder of the key can reproduce, so a guessed user id cannot be checked.
//
//   std::string h = selffeed::sha256_hex(text);
//   selffeed::Sha256Stream out(&file);  // writes to `file` and hashes what it writes
//   out << line;  out.hex_digest();
//   std::string p = selffeed::hmac_sha256_hex(key, "alice");
#pragma once

#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>

namespace selffeed {

// Lower-case hex of SHA-256(data): 64 characters.
std::string sha256_hex(std::string_view data);

// Lower-case hex of HMAC-SHA-256(key, data): 64 characters.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// An output stream that hashes every byte written through it and passes it on to `sink`
// (none: it only hashes).
class Sha256Stream : public std::ostream {
 public:
  explicit Sha256Stream(std::ostream* sink = nullptr);
  ~Sha256Stream() override;
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  // SHA-256 of everything written so far (flushes first); writing may go on.
  std::string hex_digest();

 private:
  class Buffer;
  std::unique_ptr<Buffer> buffer_;
};

}  // namespace selffeed
