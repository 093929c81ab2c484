#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "disliked_replies.h"
#include "model_report.h"
#include "selffeed/common/digest.h"
#include "selffeed/store/store.h"
#include "snapshots.h"

namespace selffeed::app {
namespace {

struct StoreFlags {
  std::string path = "./selffeed-data";
};

void add_store_flag(CLI::App& cmd, StoreFlags& flags) {
  cmd.add_option("--store", flags.path, "store directory")->envname("SELFFEED_STORE")->capture_default_str();
}

Result<std::unique_ptr<store::Store>> open_store(const StoreFlags& flags, store::OpenMode mode) {
  return store::Store::open({.path = flags.path, .mode = mode});
}

// Runs `write` on `file` (created or truncated), or on standard output when it is empty.
int write_output(const std::string& file, const std::function<int(std::ostream&)>& write) {
  if (file.empty()) return write(std::cout);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return fail(invalid_argument_error("cannot write '" + file + "'"));
  return write(out);
}

std::optional<ExampleKind> kind_from_flag(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return parse_example_kind(text);
}

struct PrivacyFlags {
  bool redact = false;
  std::string key_file;
};

void add_privacy_flags(CLI::App& cmd, PrivacyFlags& flags) {
  cmd.add_flag("--redact", flags.redact,
               "replace email addresses, web addresses and phone numbers in every utterance");
  cmd.add_option("--pseudonym-key-file", flags.key_file,
                 "replace user and conversation ids by pseudonyms keyed with the secret in this file (the same "
                 "key gives the same pseudonyms)")
      ->envname("SELFFEED_PSEUDONYM_KEY_FILE");
}

Result<ExportPrivacy> privacy_from(const PrivacyFlags& flags) {
  ExportPrivacy privacy{.redact = flags.redact};
  if (!flags.key_file.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(privacy.pseudonym_key, read_pseudonym_key(flags.key_file));
  }
  return privacy;
}

// The lineage of a bundle directory (its bundle.json) or of a version in the registry.
Result<std::string> lineage_of(const store::Store& store, const std::string& bundle_or_version) {
  const std::filesystem::path info = std::filesystem::path(bundle_or_version) / "bundle.json";
  if (std::filesystem::is_regular_file(info)) {
    std::ifstream in(info);
    const nlohmann::json bundle = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!bundle.is_object()) return data_loss_error("'" + info.string() + "' is not a JSON object");
    return bundle.value("lineage", nlohmann::json::object()).dump();
  }
  auto record = store.get_model(bundle_or_version);
  if (!record.ok()) {
    return not_found_error("'" + bundle_or_version + "' is neither a bundle directory nor a version in the registry");
  }
  return record->lineage_json;
}

// What the export of a model's snapshot says about it beside the pin.
Status check_against_pin(const PinnedSnapshot& pinned, std::uint64_t exported, const std::string& sha256) {
  if (pinned.sha256.empty()) {
    std::cerr << "its lineage pinned no snapshot hash (trained before snapshots were pinned)\n";
  } else if (exported < pinned.seqs.size()) {
    std::cerr << pinned.seqs.size() - exported << " of the " << pinned.seqs.size()
              << " examples it was trained on are no longer in the store (deleted users): not the snapshot it "
                 "pinned, "
              << pinned.sha256 << "\n";
  } else if (sha256 != pinned.sha256) {
    return data_loss_error("the examples differ from the snapshot it pinned, " + pinned.sha256);
  } else {
    std::cerr << "the snapshot it pinned, to the byte\n";
  }
  return ok_status();
}

}  // namespace

void add_store_commands(CLI::App& app, Action& action) {
  CLI::App* store_cmd = app.add_subcommand("store", "inspect, export and import the RocksDB store");
  store_cmd->require_subcommand(1);

  auto flags = std::make_shared<StoreFlags>();

  CLI::App* stats = store_cmd->add_subcommand("stats", "count conversations, turns, examples and models");
  add_store_flag(*stats, *flags);
  stats->callback([&action, flags] {
    action = [flags] {
      auto store = open_store(*flags, store::OpenMode::kReadOnly);
      if (!store.ok()) return fail(store.status());
      auto stats = (*store)->stats();
      if (!stats.ok()) return fail(stats.status());
      std::cout << "store          " << (*store)->path() << "\n"
                << "conversations  " << stats->conversations << "\n"
                << "turns          " << stats->turns << "\n";
      for (const auto& [kind, n] : stats->examples) {
        std::cout << "examples " << example_kind_name(kind) << "    " << n << "\n";
      }
      std::cout << "models         " << stats->models << "\n"
                << "last seq       " << stats->last_seq << "\n"
                << "deleted users  " << stats->deleted_users << "\n";
      return 0;
    };
  });

  auto kind = std::make_shared<std::string>();
  auto after = std::make_shared<std::uint64_t>(0);
  auto file = std::make_shared<std::string>();
  auto privacy = std::make_shared<PrivacyFlags>();
  auto snapshot_of = std::make_shared<std::string>();
  const auto kinds = CLI::IsMember({"HH", "HB", "FB", "ST"});

  CLI::App* exp = store_cmd->add_subcommand(
      "export", "write examples as self-feeding JSONL, in seq order; prints the SHA-256 of what it wrote");
  add_store_flag(*exp, *flags);
  exp->add_option("--kind", *kind, "only this kind")->check(kinds);
  exp->add_option("--after", *after, "only examples with seq greater than this watermark");
  exp->add_option("--snapshot-of", *snapshot_of,
                  "only the harvested examples this bundle directory or registered version was trained on, "
                  "checked against the SHA-256 its lineage pinned");
  add_privacy_flags(*exp, *privacy);
  exp->add_option("--out", *file, "output file (default: standard output)");
  exp->callback([&action, flags, kind, after, file, privacy, snapshot_of] {
    action = [flags, kind, after, file, privacy, snapshot_of] {
      auto options = privacy_from(*privacy);
      if (!options.ok()) return fail(options.status());
      auto store = open_store(*flags, store::OpenMode::kReadOnly);
      if (!store.ok()) return fail(store.status());
      store::ExportFilter filter{.kind = kind_from_flag(*kind), .after_seq = *after};
      std::optional<PinnedSnapshot> pinned;
      if (!snapshot_of->empty()) {
        auto lineage = lineage_of(**store, *snapshot_of);
        if (!lineage.ok()) return fail(lineage.status());
        auto snapshot = pinned_snapshot(*lineage);
        if (!snapshot.ok()) return fail(snapshot.status().with_context(*snapshot_of));
        pinned = std::move(snapshot).value();
        filter.seqs = pinned->seqs;
      }
      return write_output(*file, [&](std::ostream& sink) {
        Sha256Stream out(&sink);
        auto lines = (*store)->export_examples(out, filter, export_rewrite(*options));
        if (!lines.ok()) return fail(lines.status());
        const std::string sha256 = out.hex_digest();
        std::cerr << "exported " << *lines << " examples, sha256 " << sha256 << "\n";
        if (!pinned) return 0;
        if (options->redact || !options->pseudonym_key.empty() || filter.kind || filter.after_seq > 0) {
          std::cerr << "(filtered or rewritten: not comparable with the snapshot " << *snapshot_of << " pinned)\n";
          return 0;
        }
        const Status checked = check_against_pin(*pinned, *lines, sha256);
        return checked.ok() ? 0 : fail(checked);
      });
    };
  });

  auto user = std::make_shared<std::string>();
  auto updated_after = std::make_shared<std::int64_t>(0);
  CLI::App* pairs = store_cmd->add_subcommand(
      "pairs", "write preference pairs as JSON Lines: per answer users said the bot could have bettered (a "
               "suggestion, or the answer to its feedback request), the context, what they chose and the answer");
  add_store_flag(*pairs, *flags);
  pairs->add_option("--user", *user, "only this user's conversations");
  add_privacy_flags(*pairs, *privacy);
  pairs->add_option("--out", *file, "output file (default: standard output)");
  pairs->callback([&action, flags, user, file, privacy] {
    action = [flags, user, file, privacy] {
      auto options = privacy_from(*privacy);
      if (!options.ok()) return fail(options.status());
      auto store = open_store(*flags, store::OpenMode::kReadOnly);
      if (!store.ok()) return fail(store.status());
      store::TranscriptFilter filter;
      if (!user->empty()) filter.user_id = *user;
      return write_output(*file, [&](std::ostream& out) {
        auto lines = export_preference_pairs(**store, filter, export_rewrite(*options), out);
        if (!lines.ok()) return fail(lines.status());
        std::cerr << "exported " << *lines << " preference pairs\n";
        return 0;
      });
    };
  });

  auto reason = std::make_shared<std::string>();
  auto min_users = std::make_shared<std::uint64_t>(1);
  CLI::App* disliked = store_cmd->add_subcommand(
      "disliked", "list the bot's answers users rated down, by text, with the reasons they gave and how many users "
                  "did: the review queue for withdrawing a reply (POST /admin/replies/withdraw)");
  add_store_flag(*disliked, *flags);
  std::vector<std::string> reasons;
  for (DislikeReason r : kAllDislikeReasons) reasons.emplace_back(dislike_reason_name(r));
  disliked->add_option("--reason", *reason, "only the thumbs down given for this reason")
      ->check(CLI::IsMember(reasons));
  disliked->add_option("--min-users", *min_users, "only replies this many users disliked")->capture_default_str();
  disliked->add_option("--since-ms", *updated_after, "only answers from this time on (milliseconds since 1970)");
  disliked->callback([&action, flags, reason, min_users, updated_after] {
    action = [flags, reason, min_users, updated_after] {
      auto store = open_store(*flags, store::OpenMode::kReadOnly);
      if (!store.ok()) return fail(store.status());
      DislikedFilter filter{.since_ms = *updated_after, .min_users = *min_users};
      if (!reason->empty()) filter.reason = parse_dislike_reason(*reason);
      auto replies = disliked_replies(**store, filter);
      if (!replies.ok()) return fail(replies.status());
      std::cout << to_json(*replies).dump(2) << '\n';
      return 0;
    };
  });

  CLI::App* transcripts = store_cmd->add_subcommand(
      "transcripts", "write conversations with all their turns as JSON Lines, oldest first, to read them");
  add_store_flag(*transcripts, *flags);
  transcripts->add_option("--user", *user, "only this user's conversations");
  transcripts->add_option("--updated-after-ms", *updated_after,
                          "only conversations updated after this time (milliseconds since 1970)");
  add_privacy_flags(*transcripts, *privacy);
  transcripts->add_option("--out", *file, "output file (default: standard output)");
  transcripts->callback([&action, flags, user, updated_after, file, privacy] {
    action = [flags, user, updated_after, file, privacy] {
      auto options = privacy_from(*privacy);
      if (!options.ok()) return fail(options.status());
      auto store = open_store(*flags, store::OpenMode::kReadOnly);
      if (!store.ok()) return fail(store.status());
      store::TranscriptFilter filter{.updated_after_ms = *updated_after};
      if (!user->empty()) filter.user_id = *user;
      return write_output(*file, [&](std::ostream& out) {
        auto lines = (*store)->export_transcripts(out, filter, export_rewrite(*options));
        if (!lines.ok()) return fail(lines.status());
        std::cerr << "exported " << *lines << " conversations\n";
        return 0;
      });
    };
  });

  CLI::App* index = store_cmd->add_subcommand(
      "index-conversations", "index the examples of a store from before session 27 by conversation, so that a user "
                             "deleting a conversation does not make the server read them all (stop the server first)");
  add_store_flag(*index, *flags);
  index->callback([&action, flags] {
    action = [flags] {
      auto store = open_store(*flags, store::OpenMode::kReadWrite);
      if (!store.ok()) return fail(store.status());
      auto n = (*store)->index_conversations();
      if (!n.ok()) return fail(n.status());
      std::cout << "indexed " << *n << " examples by conversation\n";
      return 0;
    };
  });

  CLI::App* imp = store_cmd->add_subcommand("import", "append examples from self-feeding JSONL");
  add_store_flag(*imp, *flags);
  imp->add_option("--in", *file, "input file")->required()->check(CLI::ExistingFile);
  imp->add_option("--kind", *kind, "kind of lines without a \"kind\" field (default HH)")->check(kinds);
  imp->callback([&action, flags, kind, file] {
    action = [flags, kind, file] {
      std::ifstream in(*file, std::ios::binary);
      if (!in) return fail(invalid_argument_error("cannot read '" + *file + "'"));
      auto store = open_store(*flags, store::OpenMode::kReadWrite);
      if (!store.ok()) return fail(store.status());
      store::ImportOptions options{.default_kind = kind_from_flag(*kind).value_or(ExampleKind::kHH),
                                   .source = "import:" + *file};
      auto n = (*store)->import_examples(in, options);
      if (!n.ok()) return fail(n.status());
      std::cerr << "imported " << *n << " examples\n";
      return 0;
    };
  });
}

}  // namespace selffeed::app
