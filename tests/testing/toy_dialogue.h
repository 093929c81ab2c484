// A tiny synthetic dialogue corpus the tests write themselves: questions about an
// object's colour or place, answered consistently, so a model can learn it in seconds.
#pragma once

#include <string>
#include <vector>

#include "selffeed/common/context.h"

namespace selffeed::testing {

struct ToyPair {
  std::string context;
  std::string target;
};

inline std::vector<ToyPair> toy_dialogue() {
  const std::vector<std::string> objects = {"car", "house", "bike", "boat", "kite", "lamp", "door", "shoe"};
  const std::vector<std::string> colours = {"red", "blue", "green", "yellow", "black", "white", "pink", "grey"};
  const std::vector<std::string> places = {"garage", "garden", "lake", "park", "attic", "kitchen", "shop", "street"};
  std::vector<ToyPair> pairs;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    std::vector<std::string> h1 = {"hello !", "what colour is your " + objects[i] + " ?"};
    pairs.push_back({format_context(h1), "my " + objects[i] + " is " + colours[i] + " ."});
    std::vector<std::string> h2 = {"nice .", "where is your " + objects[i] + " ?"};
    pairs.push_back({format_context(h2), "my " + objects[i] + " is in the " + places[i] + " ."});
  }
  return pairs;
}

}  // namespace selffeed::testing
