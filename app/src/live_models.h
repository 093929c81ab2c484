// The models one server generation answers with: the dialogue ranker, a satisfaction
// scorer and the version they carry. Swapped as a unit between batches.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "selffeed/common/status.h"
#include "selffeed/dialogue/dialogue.h"

namespace selffeed::app {

class SatisfactionScorer {
 public:
  virtual ~SatisfactionScorer() = default;
  // P(satisfied) for each "__p2__ <bot> __p1__ <user>" context, in one batch.
  virtual Result<std::vector<double>> score(std::span<const std::string> contexts) = 0;
  // Below this the user is taken to be unsatisfied.
  virtual double threshold() const = 0;
  virtual std::string_view name() const = 0;
};

// kModel: the bundle's learned estimator (an error when it has none); kRegex: the paper's
// regex baseline (0 when a complaint pattern matches, else 1: deterministic, used by the
// tests); kAuto: the learned one when the bundle has it, else the regexes.
enum class ScorerKind { kAuto, kModel, kRegex };

struct LiveModels {
  std::string version;
  std::string bundle_dir;
  std::unique_ptr<dialogue::DialogueModel> dialogue;
  std::unique_ptr<SatisfactionScorer> satisfaction;
};

// Loads a bundle for serving; kFailedPrecondition when it has no candidate pool.
Result<std::shared_ptr<LiveModels>> load_live_models(const std::string& bundle_dir, ScorerKind scorer);

}  // namespace selffeed::app
