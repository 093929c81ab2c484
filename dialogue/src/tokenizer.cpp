#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "selffeed/common/context.h"
#include "selffeed/common/records.h"
#include "selffeed/common/log.h"
#include "selffeed/dialogue/dialogue.h"

namespace selffeed::dialogue {

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor processor;
  std::string serialized;
  // SentencePiece emits a lone word-boundary piece before each user-defined symbol
  // ("▁", "__p1__"); it carries no information, so encode() drops it.
  int lone_space_id = -1;
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::string normalize_text(std::string_view text) {
  // Lower-case and put spaces around punctuation, the way PersonaChat is distributed, so
  // "Hello, you?" and "hello , you ?" become the same pieces. Tags are kept whole.
  std::string out;
  out.reserve(text.size() + 16);
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    bool tag_char = c == '_' && i + 1 < text.size() && text[i + 1] == '_';
    if (std::ispunct(c) && c != '\'' && c != '_' && !tag_char) {
      out.push_back(' ');
      out.push_back(static_cast<char>(c));
      out.push_back(' ');
    } else if (std::isspace(c)) {
      out.push_back(' ');
    } else {
      out.push_back(static_cast<char>(std::tolower(c)));
    }
  }
  std::string collapsed;
  collapsed.reserve(out.size());
  for (char c : out) {
    if (c == ' ' && (collapsed.empty() || collapsed.back() == ' ')) continue;
    collapsed.push_back(c);
  }
  while (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
  return collapsed;
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::from_serialized(std::string serialized) {
  auto impl = std::make_unique<Impl>();
  auto status = impl->processor.LoadFromSerializedProto(serialized);
  if (!status.ok()) return data_loss_error("invalid SentencePiece model: " + status.ToString());
  for (std::string_view tag : {kPartnerTag, kSelfTag, kNullContext}) {
    if (impl->processor.PieceToId(std::string(tag)) == impl->processor.unk_id()) {
      return failed_precondition_error("SentencePiece model lacks the special piece " + std::string(tag));
    }
  }
  if (impl->processor.pad_id() != 0) return failed_precondition_error("SentencePiece model must use pad id 0");
  int space = impl->processor.PieceToId("\xE2\x96\x81");
  if (space != impl->processor.unk_id()) impl->lone_space_id = space;
  impl->serialized = std::move(serialized);
  return std::shared_ptr<const Tokenizer>(new Tokenizer(std::move(impl)));
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found_error("cannot read tokenizer model '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Result<std::shared_ptr<const Tokenizer>> t = from_serialized(std::move(bytes));
  if (!t.ok()) return t.status().with_context("tokenizer '" + path + "'");
  return t;
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::train(const std::vector<std::string>& texts,
                                                          const TokenizerOptions& options) {
  if (texts.empty()) return invalid_argument_error("cannot train a tokenizer on no text");
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("selffeed-spm-" + std::to_string(::getpid()) + "-" + std::to_string(unix_millis()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  {
    std::ofstream corpus(dir / "corpus.txt", std::ios::binary);
    for (const std::string& t : texts) corpus << normalize_text(t) << '\n';
    if (!corpus) return internal_error("cannot write the tokenizer corpus in " + dir.string());
  }
  std::string args = "--input=" + (dir / "corpus.txt").string() + " --model_prefix=" + (dir / "spm").string() +
                     " --vocab_size=" + std::to_string(options.vocab_size) +
                     " --model_type=unigram --character_coverage=1.0 --hard_vocab_limit=false"
                     " --pad_id=0 --unk_id=1 --bos_id=-1 --eos_id=-1"
                     " --user_defined_symbols=__p1__,__p2__,__null__"
                     " --input_sentence_size=1000000 --shuffle_input_sentence=true --minloglevel=1"
                     " --num_threads=2 --seed_sentencepiece_size=200000";
  auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) return internal_error("SentencePiece training failed: " + status.ToString());
  return load((dir / "spm.model").string());
}

std::vector<std::int64_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  impl_->processor.Encode(normalize_text(text), &ids).IgnoreError();
  std::vector<std::int64_t> out;
  out.reserve(ids.size());
  for (int id : ids) {
    if (id != impl_->lone_space_id) out.push_back(id);
  }
  return out;
}

std::vector<std::int64_t> Tokenizer::encode_for_model(std::string_view text, int limit, Keep keep) const {
  std::vector<std::int64_t> ids = encode(text);
  if (ids.empty()) ids.push_back(impl_->processor.unk_id());
  if (limit > 0 && static_cast<int>(ids.size()) > limit) {
    if (keep == Keep::kLast) ids.erase(ids.begin(), ids.end() - limit);
    else ids.resize(static_cast<std::size_t>(limit));
  }
  return ids;
}

std::vector<std::string> Tokenizer::pieces(std::string_view text) const {
  std::vector<std::string> pieces;
  for (std::int64_t id : encode(text)) pieces.push_back(impl_->processor.IdToPiece(static_cast<int>(id)));
  return pieces;
}

int Tokenizer::vocab_size() const { return impl_->processor.GetPieceSize(); }
int Tokenizer::piece_id(std::string_view piece) const { return impl_->processor.PieceToId(std::string(piece)); }
const std::string& Tokenizer::serialized() const { return impl_->serialized; }

}  // namespace selffeed::dialogue
