#include "snapshots.h"

#include <fstream>
#include <functional>
#include <iterator>

#include <nlohmann/json.hpp>

#include "selffeed/common/digest.h"
#include "selffeed/feedback/policy.h"
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

Result<std::uint64_t> export_preference_pairs(const store::Store& store, const store::TranscriptFilter& filter,
                                              const store::ExportRewrite& rewrite, std::ostream& out) {
  auto rewritten = [](const std::function<std::string(std::string_view)>& f, const std::string& s) {
    return f ? f(s) : s;
  };
  std::uint64_t lines = 0;
  SELFFEED_RETURN_IF_ERROR(store.scan_transcripts(filter, [&](const Conversation& c, std::vector<Turn> turns) {
    for (Turn& t : turns) {
      t.text = rewritten(rewrite.text, t.text);
      if (t.suggestion) t.suggestion = rewritten(rewrite.text, *t.suggestion);
    }
    for (const feedback::PreferencePair& pair : feedback::preference_pairs(turns)) {
      nlohmann::json line = {{"context", pair.context},
                             {"chosen", pair.chosen},
                             {"rejected", pair.rejected},
                             {"source", pair.suggested ? "suggestion" : "feedback"},
                             {"reason", pair.rejected_because
                                            ? nlohmann::json(dislike_reason_name(*pair.rejected_because))
                                            : nlohmann::json(nullptr)},
                             {"conversation_id", rewritten(rewrite.id, c.id)},
                             {"turn", pair.answer_turn},
                             {"model_version", pair.model_version}};
      if (!c.user_id.empty()) line["user_id"] = rewritten(rewrite.id, c.user_id);
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      ++lines;
    }
    return static_cast<bool>(out);
  }));
  if (!out) return internal_error("writing the preference pairs failed after " + std::to_string(lines) + " lines");
  return lines;
}

Result<std::string> snapshot_sha256(const store::Store& store, const std::set<std::uint64_t>& seqs) {
  Sha256Stream hash;
  SELFFEED_RETURN_IF_ERROR(store.export_examples(hash, {.seqs = seqs}).status());
  return hash.hex_digest();
}

}  // namespace selffeed::app
