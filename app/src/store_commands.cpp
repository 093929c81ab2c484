#include <fstream>
#include <functional>
#include <iostream>
#include <memory>

#include "commands.h"
#include "selffeed/store/store.h"

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
  const auto kinds = CLI::IsMember({"HH", "HB", "FB", "ST"});

  CLI::App* exp = store_cmd->add_subcommand("export", "write examples as self-feeding JSONL");
  add_store_flag(*exp, *flags);
  exp->add_option("--kind", *kind, "only this kind")->check(kinds);
  exp->add_option("--after", *after, "only examples with seq greater than this watermark");
  exp->add_option("--out", *file, "output file (default: standard output)");
  exp->callback([&action, flags, kind, after, file] {
    action = [flags, kind, after, file] {
      auto store = open_store(*flags, store::OpenMode::kReadOnly);
      if (!store.ok()) return fail(store.status());
      return write_output(*file, [&](std::ostream& out) {
        auto lines = (*store)->export_examples(out, {.kind = kind_from_flag(*kind), .after_seq = *after});
        if (!lines.ok()) return fail(lines.status());
        std::cerr << "exported " << *lines << " examples\n";
        return 0;
      });
    };
  });

  auto user = std::make_shared<std::string>();
  auto updated_after = std::make_shared<std::int64_t>(0);
  CLI::App* transcripts = store_cmd->add_subcommand(
      "transcripts", "write conversations with all their turns as JSON Lines, oldest first, to read them");
  add_store_flag(*transcripts, *flags);
  transcripts->add_option("--user", *user, "only this user's conversations");
  transcripts->add_option("--updated-after-ms", *updated_after,
                          "only conversations updated after this time (milliseconds since 1970)");
  transcripts->add_option("--out", *file, "output file (default: standard output)");
  transcripts->callback([&action, flags, user, updated_after, file] {
    action = [flags, user, updated_after, file] {
      auto store = open_store(*flags, store::OpenMode::kReadOnly);
      if (!store.ok()) return fail(store.status());
      store::TranscriptFilter filter{.updated_after_ms = *updated_after};
      if (!user->empty()) filter.user_id = *user;
      return write_output(*file, [&](std::ostream& out) {
        auto lines = (*store)->export_transcripts(out, filter);
        if (!lines.ok()) return fail(lines.status());
        std::cerr << "exported " << *lines << " conversations\n";
        return 0;
      });
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
