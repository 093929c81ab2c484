#include "selffeed/common/digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <stdexcept>

namespace selffeed {
namespace {

std::string to_hex(const unsigned char* bytes, unsigned int size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(2 * size, '0');
  for (unsigned int i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return hex;
}

struct MdContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using MdContext = std::unique_ptr<EVP_MD_CTX, MdContextDeleter>;

// OpenSSL fails here only when out of memory or misbuilt: nothing a caller can handle.
void check(int ok, const char* what) {
  if (ok != 1) throw std::runtime_error(std::string("OpenSSL ") + what + " failed");
}

MdContext new_sha256() {
  MdContext context(EVP_MD_CTX_new());
  if (!context) throw std::bad_alloc();
  check(EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr), "SHA-256 init");
  return context;
}

std::string finish(EVP_MD_CTX* context) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  check(EVP_DigestFinal_ex(context, digest.data(), &size), "SHA-256 final");
  return to_hex(digest.data(), size);
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  MdContext context = new_sha256();
  check(EVP_DigestUpdate(context.get(), data.data(), data.size()), "SHA-256 update");
  return finish(context.get());
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  const unsigned char* ok =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), mac.data(), &size);
  if (ok == nullptr) throw std::runtime_error("OpenSSL HMAC-SHA-256 failed");
  return to_hex(mac.data(), size);
}

// Hashes in blocks of its own buffer; forwards each block to the sink as it goes.
class Sha256Stream::Buffer : public std::streambuf {
 public:
  explicit Buffer(std::ostream* sink) : sink_(sink), context_(new_sha256()) { setp(block_.data(), block_.data() + block_.size()); }

  std::string hex_digest() {
    sync();
    // Finalise a copy, so that writing may go on after a look at the digest.
    MdContext copy(EVP_MD_CTX_new());
    if (!copy) throw std::bad_alloc();
    check(EVP_MD_CTX_copy_ex(copy.get(), context_.get()), "SHA-256 copy");
    return finish(copy.get());
  }

 protected:
  int_type overflow(int_type c) override {
    if (!hash_and_pass_on()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }

  int sync() override {
    if (!hash_and_pass_on()) return -1;
    return sink_ == nullptr || sink_->flush() ? 0 : -1;
  }

 private:
  // Hashes the buffered bytes, writes them to the sink and empties the buffer.
  bool hash_and_pass_on() {
    const std::ptrdiff_t size = pptr() - pbase();
    if (size == 0) return true;
    check(EVP_DigestUpdate(context_.get(), pbase(), static_cast<std::size_t>(size)), "SHA-256 update");
    setp(block_.data(), block_.data() + block_.size());
    return sink_ == nullptr || static_cast<bool>(sink_->write(block_.data(), size));
  }

  std::ostream* sink_;
  MdContext context_;
  std::array<char, 1 << 16> block_{};
};

Sha256Stream::Sha256Stream(std::ostream* sink) : std::ostream(nullptr), buffer_(std::make_unique<Buffer>(sink)) {
  rdbuf(buffer_.get());
}

Sha256Stream::~Sha256Stream() { buffer_->pubsync(); }

std::string Sha256Stream::hex_digest() { return buffer_->hex_digest(); }

}  // namespace selffeed
