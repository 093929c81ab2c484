#include "snapshots.h"

#include <fstream>
#include <iterator>

#include "selffeed/common/digest.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::app {

namespace {
constexpr std::size_t kMinKeyBytes = 16;
constexpr std::size_t kPseudonymHexDigits = 20;
}  // namespace

store::ExportRewrite export_rewrite(const ExportPrivacy& privacy) {
  store::ExportRewrite rewrite;
  if (privacy.redact) rewrite.text = trainer::redact_personal_data;
  if (!privacy.pseudonym_key.empty()) {
    rewrite.id = [key = privacy.pseudonym_key](std::string_view id) { return pseudonym(key, id); };
  }
  return rewrite;
}

std::string pseudonym(std::string_view key, std::string_view id) {
  return "anon-" + hmac_sha256_hex(key, id).substr(0, kPseudonymHexDigits);
}

Result<std::string> read_pseudonym_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found_error("cannot read the pseudonym key '" + path + "'");
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < kMinKeyBytes) {
    return invalid_argument_error("the pseudonym key '" + path + "' has " + std::to_string(key.size()) +
                                  " bytes; it needs at least " + std::to_string(kMinKeyBytes) +
                                  " (e.g. head -c 32 /dev/urandom | base64 > " + path + ")");
  }
  return key;
}

Result<std::string> snapshot_sha256(const store::Store& store, const std::set<std::uint64_t>& seqs) {
  Sha256Stream hash;
  SELFFEED_RETURN_IF_ERROR(store.export_examples(hash, {.seqs = seqs}).status());
  return hash.hex_digest();
}

}  // namespace selffeed::app
