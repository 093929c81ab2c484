#include "selffeed/clients/load.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "selffeed/clients/clients.h"

namespace selffeed::clients {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReplyTimeout = std::chrono::seconds(30);

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const std::size_t i = std::min(sorted.size() - 1, static_cast<std::size_t>(p * static_cast<double>(sorted.size())));
  return sorted[i];
}

struct UserResult {
  std::vector<double> latencies_ms;
  std::uint64_t errors = 0;
  bool connected = false;
};

void simulate_user(const LoadOptions& options, int user, Clock::time_point deadline, UserResult& out) {
  auto client = WsClient::connect(options.url, {.local_address = options.local_address});
  if (!client.ok()) {
    ++out.errors;
    return;
  }
  out.connected = true;
  WsClient& ws = **client;
  // People do not type in lockstep: each user starts at a random point of one think time
  // and thinks 0.5x..1.5x of it between messages.
  std::mt19937 rng(static_cast<unsigned>(user) * 2654435761u + 1);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  const auto think = [&](double scale) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(options.think_time * scale);
  };
  if (options.think_time.count() > 0) {
    std::this_thread::sleep_for(think(std::uniform_real_distribution<double>(0, 1)(rng)));
  }
  std::size_t next = static_cast<std::size_t>(user) * 7919 % options.utterances.size();
  auto exchange = [&](const nlohmann::json& request, std::string_view expected) -> bool {
    if (!ws.send_text(request.dump()).ok()) return false;
    auto frame = ws.read(kReplyTimeout);
    if (!frame.ok()) return false;
    const auto reply = nlohmann::json::parse(*frame, nullptr, false);
    return reply.is_object() && reply.value("type", "") == expected;
  };
  while (Clock::now() < deadline) {
    if (!exchange({{"type", "hello"}, {"user_id", "load-" + std::to_string(user)}}, "welcome")) {
      ++out.errors;
      return;
    }
    for (int m = 0; m < options.messages_per_conversation && Clock::now() < deadline; ++m) {
      const auto sent = Clock::now();
      const bool ok = exchange({{"type", "message"}, {"text", options.utterances[next]}}, "reply");
      next = (next + 1) % options.utterances.size();
      if (!ok) {
        ++out.errors;
        if (ws.close_info()) return;
        continue;
      }
      out.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
      if (options.think_time.count() > 0) std::this_thread::sleep_for(think(jitter(rng)));
    }
  }
  ws.close();
}

}  // namespace

Result<LoadReport> run_load(const LoadOptions& options) {
  if (options.utterances.empty()) return invalid_argument_error("the load generator needs utterances");
  std::vector<UserResult> results(static_cast<std::size_t>(std::max(1, options.users)));
  const auto start = Clock::now();
  const auto deadline = start + options.duration;
  std::vector<std::thread> threads;
  for (std::size_t u = 0; u < results.size(); ++u) {
    threads.emplace_back(simulate_user, std::cref(options), static_cast<int>(u), deadline, std::ref(results[u]));
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  LoadReport report;
  report.users = static_cast<int>(results.size());
  report.seconds = seconds;
  std::vector<double> all;
  bool any_connected = false;
  for (const UserResult& r : results) {
    all.insert(all.end(), r.latencies_ms.begin(), r.latencies_ms.end());
    report.errors += r.errors;
    any_connected |= r.connected;
  }
  if (!any_connected) return unavailable_error("no simulated user could connect to " + options.url);
  std::sort(all.begin(), all.end());
  report.turns = all.size();
  report.turns_per_second = static_cast<double>(all.size()) / seconds;
  report.p50_ms = percentile(all, 0.50);
  report.p95_ms = percentile(all, 0.95);
  report.p99_ms = percentile(all, 0.99);
  report.max_ms = all.empty() ? 0 : all.back();
  return report;
}

}  // namespace selffeed::clients
