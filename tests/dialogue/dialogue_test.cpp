#include "selffeed/dialogue/dialogue.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "testing.h"
#include "toy_dialogue.h"

namespace selffeed::dialogue {
namespace {

using selffeed::testing::TempDir;

constexpr ModelConfig kTiny{.d_model = 32, .n_heads = 2, .n_layers = 1, .ffn_size = 16, .context_tokens = 32,
                            .candidate_tokens = 16};

class DialogueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    configure_threads({.intra_op = 1});
    std::vector<std::string> texts;
    for (const auto& p : selffeed::testing::toy_dialogue()) {
      texts.push_back(p.context);
      texts.push_back(p.target);
    }
    auto t = Tokenizer::train(texts, {.vocab_size = 120});
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    tokenizer_ = *t;
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }

  static std::vector<TextPair> pairs() {
    std::vector<TextPair> out;
    for (const auto& p : selffeed::testing::toy_dialogue()) out.push_back({p.context, p.target});
    return out;
  }

  std::unique_ptr<DialogueModel> make_model(std::uint64_t seed = 7) {
    auto m = DialogueModel::create(kTiny, tokenizer_, seed);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return std::move(m).value();
  }

  static inline std::shared_ptr<const Tokenizer> tokenizer_;
};

TEST_F(DialogueTest, TokenizerKeepsTheContextTagsWhole) {
  std::vector<std::string> pieces = tokenizer_->pieces("__p2__ hello ! __p1__ what colour is your car ?");
  EXPECT_EQ(std::count(pieces.begin(), pieces.end(), "__p1__"), 1);
  EXPECT_EQ(std::count(pieces.begin(), pieces.end(), "__p2__"), 1);
  EXPECT_EQ(tokenizer_->pieces("__null__"), std::vector<std::string>{"__null__"});
  EXPECT_NE(tokenizer_->piece_id("__p1__"), tokenizer_->piece_id("__p2__"));
  EXPECT_GT(tokenizer_->piece_id("__null__"), 1);  // not pad (0) or unk (1)
}

TEST_F(DialogueTest, NormalizationMatchesPersonaChatStyle) {
  EXPECT_EQ(normalize_text("Hello, how ARE you?"), "hello , how are you ?");
  EXPECT_EQ(normalize_text("  i'm   fine!! "), "i'm fine ! !");
  EXPECT_EQ(normalize_text("__p1__ ok."), "__p1__ ok .");
  EXPECT_EQ(tokenizer_->encode("What colour is your car?"), tokenizer_->encode("what colour is your car ?"));
}

TEST_F(DialogueTest, InBatchLossDecreasesOnAToySet) {
  auto model = make_model();
  std::vector<TextPair> batch = pairs();
  auto first = model->evaluate_in_batch(batch);
  ASSERT_OK(first);
  for (int i = 0; i < 60; ++i) ASSERT_OK(model->train_step(batch, {.learning_rate = 0.01, .warmup_steps = 5}));
  auto last = model->evaluate_in_batch(batch);
  ASSERT_OK(last);
  EXPECT_LT(last->loss, first->loss * 0.5) << first->loss << " -> " << last->loss;
  EXPECT_GT(last->hits_at_1, 0.8f);
  EXPECT_EQ(model->steps(), 60);
}

TEST_F(DialogueTest, BatchScoringEqualsOneByOne) {
  auto model = make_model();
  std::vector<std::string> contexts;
  std::vector<std::vector<std::string>> candidates;
  for (const auto& p : pairs()) {
    contexts.push_back(p.context);
    candidates.push_back({p.target, "my kite is in the park .", "hello ! how are you doing on this fine long day ?"});
  }
  auto together = model->score(contexts, candidates);
  ASSERT_OK(together);
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    auto alone = model->score(std::span(&contexts[i], 1), std::span(&candidates[i], 1));
    ASSERT_OK(alone);
    for (std::size_t j = 0; j < candidates[i].size(); ++j) {
      EXPECT_NEAR((*together)[i][j], (*alone)[0][j], 1e-4) << i << "," << j;
    }
  }
  // rank() over a pool agrees with score() for the same pairs.
  std::vector<std::string> pool = {"my car is red .", "my bike is in the lake .", "my door is grey ."};
  ASSERT_OK(model->set_candidate_pool(pool));
  std::vector<RankRequest> requests = {{.context = contexts[0]}, {.context = contexts[5]}};
  auto ranked = model->rank(requests, 3);
  ASSERT_OK(ranked);
  for (std::size_t r = 0; r < requests.size(); ++r) {
    std::vector<std::vector<std::string>> one = {pool};
    auto direct = model->score(std::span(&requests[r].context, 1), one);
    ASSERT_OK(direct);
    ASSERT_EQ((*ranked)[r].size(), 3u);
    for (const RankedReply& reply : (*ranked)[r]) {
      EXPECT_NEAR(reply.score, (*direct)[0][static_cast<std::size_t>(reply.candidate_id)], 1e-4);
    }
    EXPECT_GE((*ranked)[r][0].score, (*ranked)[r][1].score);
  }
}

TEST(TfIdfTest, CosineIgnoresSpeakerTagsAndWeighsRareWordsMore) {
  std::vector<std::string> docs = {"the jazz band", "the dog", "the cat", "the park"};
  TfIdf tfidf(docs);
  EXPECT_NEAR(TfIdf::cosine(tfidf.vector("__p2__ Jazz, __p1__ band"), tfidf.vector("jazz , band")), 1.0, 1e-9);
  EXPECT_EQ(TfIdf::cosine(tfidf.vector("__p1__ hello"), tfidf.vector("the dog")), 0.0);
  // "the" is in every document, "jazz" in one: sharing "jazz" counts for more.
  std::vector<float> scores = tfidf.cosine_to_documents("__p1__ the jazz");
  ASSERT_EQ(scores.size(), docs.size());
  EXPECT_GT(scores[0], 2 * scores[1]);
  EXPECT_GT(scores[1], 0);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    EXPECT_NEAR(scores[i], TfIdf::cosine(tfidf.vector("__p1__ the jazz"), tfidf.vector(docs[i])), 1e-6) << i;
  }
}

TEST_F(DialogueTest, TheLexicalTermAddsWeightedTfIdfCosineEverywhereAndIsSaved) {
  TempDir dir;
  auto model = make_model();
  std::vector<std::string> pool = {"my car is red .", "my bike is in the lake .", "my door is grey .", "i like red cars"};
  ASSERT_OK(model->set_candidate_pool(pool));
  std::vector<std::string> contexts = {pairs()[0].context, "__p1__ is your bike red ?"};
  std::vector<std::vector<std::string>> lists = {pool, pool};
  auto dense = model->score(contexts, lists);
  ASSERT_OK(dense);
  ASSERT_OK(model->set_lexical_weight(2.5));
  EXPECT_EQ(model->config().lexical_weight, 2.5);
  auto hybrid = model->score(contexts, lists);
  ASSERT_OK(hybrid);
  TfIdf tfidf(pool);
  bool some_overlap = false;
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    for (std::size_t j = 0; j < pool.size(); ++j) {
      const double cosine = TfIdf::cosine(tfidf.vector(contexts[i]), tfidf.vector(pool[j]));
      some_overlap |= cosine > 0;
      EXPECT_NEAR((*hybrid)[i][j], (*dense)[i][j] + 2.5 * cosine, 1e-4) << i << "," << j;
    }
  }
  EXPECT_TRUE(some_overlap);
  // rank() over the pool gives the same hybrid scores, for a batch of contexts.
  auto ranked = model->rank({{RankRequest{.context = contexts[0]}, RankRequest{.context = contexts[1]}}}, 4);
  ASSERT_OK(ranked);
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    for (const RankedReply& r : (*ranked)[i]) {
      EXPECT_NEAR(r.score, (*hybrid)[i][static_cast<std::size_t>(r.candidate_id)], 1e-4);
    }
  }
  ASSERT_OK(model->save(dir.str("bundle"), {.version = "lex"}, {}));
  auto loaded = DialogueModel::load(dir.str("bundle"));
  ASSERT_OK(loaded);
  EXPECT_EQ((*loaded)->config().lexical_weight, 2.5);
  EXPECT_EQ(*(*loaded)->score(contexts, lists), *hybrid);
  // Its tokenizer alone, for a satisfaction estimator, reads the text the same way.
  auto tokenizer = DialogueModel::load_tokenizer(dir.str("bundle"));
  ASSERT_OK(tokenizer);
  EXPECT_EQ((*tokenizer)->encode(contexts[0]), tokenizer_->encode(contexts[0]));
  EXPECT_EQ(DialogueModel::load_tokenizer(dir.str("nowhere")).status().code(), StatusCode::kNotFound);

  // A model made with the term on and no pool yet scores too (every word weighs the same).
  ModelConfig with_term = kTiny;
  with_term.lexical_weight = 1;
  auto fresh = DialogueModel::create(with_term, tokenizer_, 7);
  ASSERT_OK(fresh);
  auto fresh_scores = (*fresh)->score(contexts, lists);
  ASSERT_OK(fresh_scores);
  EXPECT_EQ((*fresh_scores)[0].size(), pool.size());

  EXPECT_EQ(model->set_lexical_weight(-1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model->set_lexical_weight(std::nan("")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model->config().lexical_weight, 2.5);
}

TEST_F(DialogueTest, ThePersonaTermAddsTheBestCosineToAPersonaSentenceAndIsSaved) {
  TempDir dir;
  auto model = make_model();
  std::vector<std::string> pool = {"i have two dogs .", "i hate the beach .", "i bake bread at night .", "hello !"};
  ASSERT_OK(model->set_candidate_pool(pool));
  const std::vector<std::string> contexts = {"__p1__ what do you like ?", "__p1__ hi"};
  const std::vector<std::vector<std::string>> lists = {pool, pool};
  const std::vector<std::vector<std::string>> personas = {{"my dogs are old .", "i bake bread ."}, {}};
  auto dense = model->score(contexts, lists, personas);
  ASSERT_OK(dense);
  ASSERT_OK(model->set_persona_weight(3));
  auto with_persona = model->score(contexts, lists, personas);
  ASSERT_OK(with_persona);
  TfIdf tfidf(pool);
  for (std::size_t j = 0; j < pool.size(); ++j) {
    double best = 0;
    for (const std::string& sentence : personas[0]) {
      best = std::max(best, TfIdf::cosine(tfidf.vector(sentence), tfidf.vector(pool[j])));
    }
    EXPECT_NEAR((*with_persona)[0][j], (*dense)[0][j] + 3 * best, 1e-4) << j;
    EXPECT_NEAR((*with_persona)[1][j], (*dense)[1][j], 1e-6) << j;  // no persona, no term
  }
  EXPECT_GT((*with_persona)[0][2] - (*dense)[0][2], (*with_persona)[0][1] - (*dense)[0][1]);
  // Without personas the scores are the encoders' alone.
  auto ignored = model->score(contexts, lists);
  ASSERT_OK(ignored);
  EXPECT_EQ(*ignored, *dense);
  EXPECT_EQ(model->score(contexts, lists, std::vector<std::vector<std::string>>{{}}).status().code(),
            StatusCode::kInvalidArgument);

  // rank() adds the same term to the pool's scores; the persona's sentences are replies too,
  // scored as the pool's would be (their own cosine is 1).
  const int everything = static_cast<int>(pool.size() + personas[0].size());
  auto ranked = model->rank({{RankRequest{.context = contexts[0], .persona = personas[0], .block_repeats = false}}},
                            everything);
  ASSERT_OK(ranked);
  ASSERT_EQ((*ranked)[0].size(), static_cast<std::size_t>(everything));
  auto as_replies = model->score({&contexts[0], 1}, std::vector<std::vector<std::string>>{personas[0]},
                                 std::vector<std::vector<std::string>>{personas[0]});
  ASSERT_OK(as_replies);
  float probabilities = 0;
  for (const RankedReply& r : (*ranked)[0]) {
    probabilities += r.probability;
    if (r.candidate_id >= 0) {
      EXPECT_NEAR(r.score, (*with_persona)[0][static_cast<std::size_t>(r.candidate_id)], 1e-4) << r.text;
      continue;
    }
    const auto at = std::find(personas[0].begin(), personas[0].end(), r.text);
    ASSERT_NE(at, personas[0].end()) << r.text;
    EXPECT_NEAR(r.score, (*as_replies)[0][static_cast<std::size_t>(at - personas[0].begin())], 1e-4) << r.text;
  }
  EXPECT_NEAR(probabilities, 1.0, 1e-4);  // one softmax over the pool and the persona
  // A large weight puts the persona first: the sentence itself, then the reply that says it.
  ASSERT_OK(model->set_persona_weight(1000));
  auto led = model->rank({{RankRequest{.context = contexts[0], .persona = {"i bake bread ."}}}}, 2);
  ASSERT_OK(led);
  EXPECT_EQ((*led)[0][0].text, "i bake bread .");
  EXPECT_EQ((*led)[0][0].candidate_id, -1);
  EXPECT_EQ((*led)[0][1].text, "i bake bread at night .");
  // Said once, it is not said again; a sentence the pool also holds is offered once.
  auto again = model->rank({{RankRequest{.context = contexts[0] + " __p2__ i bake bread .",
                                         .persona = {"i bake bread ."}}}}, everything);
  ASSERT_OK(again);
  const auto repeated = std::find_if((*again)[0].begin(), (*again)[0].end(),
                                     [](const RankedReply& r) { return r.text == "i bake bread ."; });
  ASSERT_NE(repeated, (*again)[0].end());
  EXPECT_TRUE(repeated->held_back);
  EXPECT_NE((*again)[0].front().text, "i bake bread .");
  auto shared = model->rank({{RankRequest{.context = contexts[0], .persona = {"i have two dogs ."}}}}, 2);
  ASSERT_OK(shared);
  EXPECT_EQ((*shared)[0][0].text, "i have two dogs .");
  EXPECT_NE((*shared)[0][1].text, "i have two dogs .");
  // Without a persona weight the persona is ignored, as a sentence and as a term.
  ASSERT_OK(model->set_persona_weight(0));
  auto ignored_persona = model->rank({{RankRequest{.context = contexts[0], .persona = {"i bake bread ."},
                                                   .block_repeats = false}}}, everything);
  ASSERT_OK(ignored_persona);
  for (const RankedReply& r : (*ignored_persona)[0]) EXPECT_GE(r.candidate_id, 0) << r.text;

  ASSERT_OK(model->set_persona_weight(3));
  ASSERT_OK(model->save(dir.str("bundle"), {.version = "persona"}, {}));
  auto loaded = DialogueModel::load(dir.str("bundle"));
  ASSERT_OK(loaded);
  EXPECT_EQ((*loaded)->config().persona_weight, 3);
  EXPECT_EQ(*(*loaded)->score(contexts, lists, personas), *with_persona);
  EXPECT_EQ(model->set_persona_weight(-1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model->config().persona_weight, 3);
}

TEST_F(DialogueTest, PersonaSentencesAreScoredWithTheWeightsOfTheMoment) {
  auto model = make_model();
  ASSERT_OK(model->set_candidate_pool({"i have two dogs .", "hello !"}));
  ASSERT_OK(model->set_persona_weight(1000));  // the persona sentence first
  const std::string context = "__p1__ what do you like ?";
  const std::vector<std::string> persona = {"i bake bread ."};
  auto score_of_persona = [&]() {
    auto scores = model->score({&context, 1}, std::vector<std::vector<std::string>>{persona},
                               std::vector<std::vector<std::string>>{persona});
    EXPECT_TRUE(scores.ok());
    return (*scores)[0][0];
  };
  auto ranked_score = [&]() {
    auto ranked = model->rank({{RankRequest{.context = context, .persona = persona}}}, 1);
    EXPECT_TRUE(ranked.ok());
    EXPECT_EQ((*ranked)[0].front().candidate_id, -1);
    return (*ranked)[0].front().score;
  };
  const float before = ranked_score();
  EXPECT_NEAR(before, score_of_persona(), 1e-3);
  EXPECT_NEAR(ranked_score(), before, 1e-6);  // the kept encoding
  ASSERT_OK(model->train_step(pairs(), {.learning_rate = 0.05, .warmup_steps = 1}));
  const float after = ranked_score();
  EXPECT_NEAR(after, score_of_persona(), 1e-3);
  EXPECT_GT(std::abs(after - before), 1e-3);
}

TEST_F(DialogueTest, PreviousResponseFilterSkipsTheBotsLastReply) {
  auto model = make_model();
  std::vector<std::string> pool = {"my car is red .", "my bike is in the lake .", "my door is grey ."};
  ASSERT_OK(model->set_candidate_pool(pool));
  std::string context = pairs()[0].context;
  auto plain = model->rank({{RankRequest{.context = context}}}, 1);
  ASSERT_OK(plain);
  std::string top = (*plain)[0][0].text;
  auto filtered = model->rank({{RankRequest{.context = context, .previous_reply = top}}}, 2);
  ASSERT_OK(filtered);
  ASSERT_EQ((*filtered)[0].size(), 2u);
  for (const RankedReply& r : (*filtered)[0]) EXPECT_NE(r.text, top);
}

// A deleted user's replies are never offered, not even when nothing else is left.
TEST_F(DialogueTest, WithdrawnRepliesAreNeverOffered) {
  auto model = make_model();
  const std::vector<std::string> pool = {"my car is red .", "my bike is in the lake .", "my door is grey ."};
  ASSERT_OK(model->set_candidate_pool(pool));
  const std::string context = pairs()[0].context;
  auto plain = model->rank({{RankRequest{.context = context}}}, 3);
  ASSERT_OK(plain);
  ASSERT_EQ((*plain)[0].size(), 3u);
  const std::int64_t top = (*plain)[0][0].candidate_id;
  // The best one withdrawn: the other two, in their order.
  RankRequest request{.context = context, .withdrawn = std::make_shared<const std::vector<std::int64_t>>(
                                              std::vector<std::int64_t>{top})};
  auto without_top = model->rank({&request, 1}, 3);
  ASSERT_OK(without_top);
  ASSERT_EQ((*without_top)[0].size(), 2u);
  EXPECT_EQ((*without_top)[0][0].text, (*plain)[0][1].text);
  EXPECT_EQ((*without_top)[0][1].text, (*plain)[0][2].text);
  // All but one withdrawn, and that one the previous reply: nothing is offered.
  std::vector<std::int64_t> all_but_top;
  for (std::int64_t id = 0; id < 3; ++id) {
    if (id != top) all_but_top.push_back(id);
  }
  request.withdrawn = std::make_shared<const std::vector<std::int64_t>>(all_but_top);
  request.previous_reply = pool[static_cast<std::size_t>(top)];
  auto nothing = model->rank({&request, 1}, 3);
  ASSERT_OK(nothing);
  EXPECT_TRUE((*nothing)[0].empty());
}

// The lexical term pulls up replies that parrot the user; rank() offers them only when
// nothing else is left.
TEST_F(DialogueTest, RankingSkipsRepeatsOfTheContextUnlessNothingElseIsLeft) {
  auto model = make_model();
  const std::string echo = "so , do you like dogs ?";
  ASSERT_OK(model->set_candidate_pool({echo, "my car is red .", "my door is grey ."}));
  ASSERT_OK(model->set_lexical_weight(100));  // the echo's TF-IDF cosine decides the order
  const std::string context = "__p2__ hello there . __p1__ do you like dogs ?";
  EXPECT_TRUE(model->repeats_context(echo, context));
  EXPECT_TRUE(model->repeats_context("Hello there!", context));
  EXPECT_FALSE(model->repeats_context("my car is red .", context));
  EXPECT_FALSE(model->repeats_context("i like dogs", context));

  auto raw = model->rank({{RankRequest{.context = context, .block_repeats = false}}}, 3);
  ASSERT_OK(raw);
  EXPECT_EQ((*raw)[0][0].text, echo);
  auto served = model->rank({{RankRequest{.context = context}}}, 3);
  ASSERT_OK(served);
  ASSERT_EQ((*served)[0].size(), 3u);
  EXPECT_NE((*served)[0][0].text, echo);
  EXPECT_FALSE((*served)[0][0].held_back);
  EXPECT_EQ((*served)[0][2].text, echo);  // last, but still there: k replies when the pool has them
  EXPECT_TRUE((*served)[0][2].held_back);

  // What the user said earlier in the conversation counts as well.
  RankRequest later{.context = "__p1__ dogs ?", .earlier_utterances = {"do you like dogs ?"}, .block_repeats = false};
  auto later_raw = model->rank({{later}}, 1);
  ASSERT_OK(later_raw);
  EXPECT_EQ((*later_raw)[0][0].text, echo);
  later.block_repeats = true;
  auto later_served = model->rank({{later}}, 1);
  ASSERT_OK(later_served);
  EXPECT_NE((*later_served)[0][0].text, echo);

  // A question the bot already asked counts too, whatever the reply says around it.
  RankRequest asked{.context = "__p1__ i like cats .", .asked_questions = {"Do you like dogs?"}, .block_repeats = false};
  auto asked_raw = model->rank({{asked}}, 1);
  ASSERT_OK(asked_raw);
  EXPECT_EQ((*asked_raw)[0][0].text, echo);
  asked.block_repeats = true;
  auto asked_served = model->rank({{asked}}, 3);
  ASSERT_OK(asked_served);
  EXPECT_EQ((*asked_served)[0][2].text, echo);
  asked.asked_questions = {"do you have cats ?"};
  auto other_question = model->rank({{asked}}, 1);
  ASSERT_OK(other_question);
  EXPECT_EQ((*other_question)[0][0].text, echo);

  // Judged by what it asks: "hi how are you" earlier, "i am doing fine , how are you ?" now.
  const std::string how = "i am doing fine , how are you ?";
  ASSERT_OK(model->set_candidate_pool({how, "my car is red ."}));
  auto held_back = [&](std::vector<std::string> asked_before) {
    auto both = model->rank({{RankRequest{.context = "__p1__ i'm good thanks .", .asked_questions = std::move(asked_before)}}}, 2);
    EXPECT_TRUE(both.ok()) << both.status().to_string();
    if (!both.ok()) return false;
    return std::any_of((*both)[0].begin(), (*both)[0].end(), [&](const RankedReply& r) { return r.text == how && r.held_back; });
  };
  EXPECT_FALSE(held_back({}));
  EXPECT_TRUE(held_back({"hi how are you"}));
  EXPECT_FALSE(held_back({"hi how old are you"}));
  // Nor, once it asked, how the user is in other words.
  auto after = [&](std::vector<std::string> own_answers) {
    auto both = model->rank({{RankRequest{.context = "__p1__ i'm good thanks .", .own_answers = std::move(own_answers)}}}, 2);
    EXPECT_TRUE(both.ok()) << both.status().to_string();
    return both.ok() && std::any_of((*both)[0].begin(), (*both)[0].end(),
                                    [&](const RankedReply& r) { return r.text == how && r.held_back; });
  };
  EXPECT_FALSE(after({"hello there !"}));
  EXPECT_TRUE(after({"hello there ! how's it going ?"}));

  ASSERT_OK(model->set_candidate_pool({echo}));
  auto only_echoes = model->rank({{RankRequest{.context = context}}}, 1);
  ASSERT_OK(only_echoes);
  ASSERT_EQ((*only_echoes)[0].size(), 1u);
  EXPECT_EQ((*only_echoes)[0][0].text, echo);
  EXPECT_TRUE((*only_echoes)[0][0].held_back);
}

// One sentence of a longer message is parroted too, unless it is as short as a greeting.
TEST_F(DialogueTest, RankingSkipsRepliesThatParrotOneStatementOfTheMessage) {
  auto model = make_model();
  const std::string parrot = "that sounds like fun . do you like dogs ?";
  ASSERT_OK(model->set_candidate_pool({parrot, "my car is red .", "my door is grey ."}));
  ASSERT_OK(model->set_lexical_weight(100));
  const std::string context = "__p1__ That sounds like fun! I like to paint and draw.";
  EXPECT_TRUE(model->repeats_context(parrot, context));
  EXPECT_TRUE(model->repeats_context("i like to paint and draw a lot", "__p1__ cool . i like to paint and draw ."));
  EXPECT_FALSE(model->repeats_context("hi there ! do you like dogs ?", "__p1__ hi there ! i like to paint and draw ."));
  EXPECT_FALSE(model->repeats_context("that sounds great . do you draw ?", context));

  auto raw = model->rank({{RankRequest{.context = context, .block_repeats = false}}}, 3);
  ASSERT_OK(raw);
  EXPECT_EQ((*raw)[0][0].text, parrot);
  auto served = model->rank({{RankRequest{.context = context}}}, 3);
  ASSERT_OK(served);
  EXPECT_EQ((*served)[0][2].text, parrot);
}

// The bot keeps the name it gave itself and greets only at the start of a conversation;
// a reply that does otherwise is offered only when nothing else is left.
TEST_F(DialogueTest, RankingKeepsTheBotInCharacter) {
  auto model = make_model();
  const std::string renamed = "my name is liz . i like dogs .";
  const std::string greeting = "hi there ! i like dogs .";
  ASSERT_OK(model->set_candidate_pool({renamed, greeting, "i like cats ."}));
  ASSERT_OK(model->set_lexical_weight(100));
  const std::string context = "__p1__ do you like dogs ?";

  auto top_two = [&](RankRequest request) {
    auto ranked = model->rank({{request}}, 3);
    EXPECT_TRUE(ranked.ok()) << ranked.status().to_string();
    if (!ranked.ok() || (*ranked)[0].size() != 3) return std::vector<std::string>{};
    return std::vector<std::string>{(*ranked)[0][0].text, (*ranked)[0][1].text};
  };
  const std::vector<std::string> raw =
      top_two({.context = context, .bot_name = "kellie", .may_greet = false, .block_repeats = false});
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_NE(raw[0], "i like cats .");
  EXPECT_NE(raw[1], "i like cats .");
  EXPECT_EQ(top_two({.context = context, .bot_name = "kellie", .may_greet = false})[0], "i like cats .");
  // Its own name again, or no name yet: the introduction is fine.
  for (const std::string& name : {std::string("liz"), std::string()}) {
    const auto served = top_two({.context = context, .bot_name = name, .may_greet = false});
    ASSERT_EQ(served.size(), 2u);
    EXPECT_EQ(served[0], renamed) << "bot name '" << name << "'";
    EXPECT_EQ(served[1], "i like cats .");
  }
  const auto may_greet = top_two({.context = context, .bot_name = "kellie"});
  ASSERT_EQ(may_greet.size(), 2u);
  EXPECT_EQ(may_greet[0], greeting);

  // A wall of greetings above the one reply that fits: it is found further down.
  std::vector<std::string> greetings;
  for (int i = 0; i < 200; ++i) greetings.push_back("hi there number " + std::to_string(i) + " !");
  greetings.push_back("i like cats .");
  ASSERT_OK(model->set_candidate_pool(greetings));
  auto found = model->rank({{RankRequest{.context = "__p1__ hi there number", .may_greet = false}}}, 1);
  ASSERT_OK(found);
  EXPECT_EQ((*found)[0][0].text, "i like cats .");

  // A nurse does not become an accountant.
  ASSERT_OK(model->set_candidate_pool({"i am an accountant . i like numbers .", "i like dogs ."}));
  auto answer = [&](const std::string& occupation) {
    auto top = model->rank({{RankRequest{.context = "__p1__ do you like numbers ? what do you do ?",
                                         .bot_occupation = occupation}}}, 1);
    EXPECT_TRUE(top.ok()) << top.status().to_string();
    return top.ok() ? (*top)[0][0].text : std::string();
  };
  EXPECT_EQ(answer(""), "i am an accountant . i like numbers .");
  EXPECT_EQ(answer("accountant"), "i am an accountant . i like numbers .");
  EXPECT_EQ(answer("nurse"), "i like dogs .");

  // A bot with two dogs has neither three nor none, whether or not the persona weighs in.
  for (const std::string& denial : {std::string("i have 3 dogs ."), std::string("no , i do not have any pets .")}) {
    ASSERT_OK(model->set_candidate_pool({denial, "i like walks ."}));
    // Whether the denial comes last, held back, among both replies.
    auto held_back = [&](std::vector<std::string> persona) {
      auto both = model->rank({{RankRequest{.context = "__p1__ do you have dogs ?", .persona = std::move(persona)}}}, 2);
      EXPECT_TRUE(both.ok()) << both.status().to_string();
      if (!both.ok() || (*both)[0].size() != 2) return false;
      const RankedReply& last = (*both)[0][1];
      return last.text == denial && last.held_back;
    };
    EXPECT_FALSE(held_back({"i like cheese ."})) << denial;
    EXPECT_TRUE(held_back({"i have two dogs ."})) << denial;
  }

  // Nor another favorite colour than the one in its persona or one it gave earlier.
  ASSERT_OK(model->set_candidate_pool({"i love the color red .", "i like walks ."}));
  auto held_back = [&](std::vector<std::string> persona, std::vector<std::string> own_answers) {
    auto both = model->rank({{RankRequest{.context = "__p1__ what color do you like ?",
                                          .persona = std::move(persona),
                                          .own_answers = std::move(own_answers)}}},
                            2);
    EXPECT_TRUE(both.ok()) << both.status().to_string();
    if (!both.ok() || (*both)[0].size() != 2) return false;
    return (*both)[0][1].text == "i love the color red ." && (*both)[0][1].held_back;
  };
  EXPECT_FALSE(held_back({}, {}));
  EXPECT_FALSE(held_back({}, {"red is my favorite color !"}));
  EXPECT_TRUE(held_back({"my favorite color is blue ."}, {}));
  EXPECT_TRUE(held_back({}, {"hi !", "my favorite color is blue ."}));
}

// Asked about itself, the bot says what its persona gives it, its own sentence if need be,
// rather than a reply that leaves it out; with nothing that says it, it answers as before.
TEST_F(DialogueTest, AskedAboutItselfTheBotSaysWhatItKnows) {
  auto model = make_model();
  ASSERT_OK(model->set_candidate_pool({"what is yours ?", "i like pizza .", "i am a nurse in a big hospital .",
                                       "i have two dogs , they are great ."}));
  ASSERT_OK(model->set_persona_weight(0.001));  // its sentences are replies, their scores barely lifted
  auto top = [&](const std::string& question, const RankRequest& about) {
    RankRequest request = about;
    request.context = "__p1__ " + question;
    auto ranked = model->rank({{request}}, 1);
    EXPECT_TRUE(ranked.ok()) << ranked.status().to_string();
    return ranked.ok() ? (*ranked)[0][0] : RankedReply{};
  };
  const RankRequest emma{.persona = {"my name is emma .", "i have two dogs ."}, .bot_name = "emma",
                         .bot_occupation = "nurse"};
  const RankedReply name = top("what is your name ?", emma);
  EXPECT_EQ(name.text, "my name is emma .");
  EXPECT_FALSE(name.held_back);
  EXPECT_EQ(top("what do you do for a living ?", emma).text, "i am a nurse in a big hospital .");
  const std::string pets = top("do you have any pets ?", emma).text;
  EXPECT_TRUE(pets == "i have two dogs ." || pets == "i have two dogs , they are great .") << pets;
  // Asked again, it says it again; a sentence said already is not volunteered otherwise.
  RankRequest told = emma;
  told.earlier_utterances = {"hi ! what is your name ?", "my name is emma ."};
  EXPECT_EQ(top("sorry , what is your name ?", told).text, "my name is emma .");
  const RankedReply volunteered = top("i like tea .", told);
  EXPECT_NE(volunteered.text, "my name is emma .");
  // A bot without pets in its persona has nothing to say about them: no reply dodges.
  EXPECT_FALSE(top("do you have any pets ?", RankRequest{.persona = {"i like tea ."}}).held_back);
  // Telling how it is comes after the other replies unless the user asked.
  ASSERT_OK(model->set_candidate_pool({"i'm great ! how are you ?", "i have lived here for years ."}));
  auto held = [&](const std::string& message) {
    auto both = model->rank({{RankRequest{.context = "__p1__ " + message}}}, 2);
    EXPECT_TRUE(both.ok()) << both.status().to_string();
    return both.ok() && (*both)[0].size() == 2 && (*both)[0][1].text == "i'm great ! how are you ?" &&
           (*both)[0][1].held_back;
  };
  EXPECT_TRUE(held("how long have you lived there ?"));
  EXPECT_FALSE(held("hello , how is it going today"));
  // Nothing says the name: the best reply that dodges, marked as held back.
  ASSERT_OK(model->set_candidate_pool({"what is yours ?", "i like pizza ."}));
  const RankedReply dodge = top("what is your name ?", RankRequest{.bot_name = "emma"});
  EXPECT_TRUE(dodge.held_back);
}

// A reply that only asks the user's question back is held back; one that answers first
// and then asks back is not.
TEST_F(DialogueTest, RankingSkipsRepliesThatOnlyAskTheQuestionBack) {
  auto model = make_model();
  const std::string mirror = "what is your favorite song ?";
  const std::string answer_then_ask = "jazz ! what is your favorite song ?";
  ASSERT_OK(model->set_candidate_pool({mirror, answer_then_ask, "my car is red ."}));
  ASSERT_OK(model->set_lexical_weight(100));
  const std::string context = "__p2__ i like that band . __p1__ Me too! I have been a fan of theirs for years. What is your favorite song?";
  EXPECT_TRUE(model->only_asks_back(mirror, context));
  EXPECT_TRUE(model->only_asks_back("so ? what is your favorite song ?", context));
  EXPECT_FALSE(model->repeats_context(mirror, context)) << "the other rules do not catch it";
  EXPECT_FALSE(model->only_asks_back(answer_then_ask, context));
  // A filler before the question answers nothing; "no" does.
  EXPECT_TRUE(model->only_asks_back("nice . . lol ! what is your favorite song ?", context));
  EXPECT_FALSE(model->only_asks_back("no . what is your favorite song ?", context));
  EXPECT_FALSE(model->only_asks_back("where do you live ?", context));
  EXPECT_FALSE(model->only_asks_back(mirror, "__p2__ what is your favorite song ? __p1__ i like jazz ."))
      << "only the partner's last message counts";
  EXPECT_FALSE(model->only_asks_back("", context));

  auto raw = model->rank({{RankRequest{.context = context, .block_repeats = false}}}, 3);
  ASSERT_OK(raw);
  ASSERT_EQ((*raw)[0].size(), 3u);
  EXPECT_NE((*raw)[0][2].text, mirror);  // ahead of "my car is red ." as ranked
  auto served = model->rank({{RankRequest{.context = context}}}, 3);
  ASSERT_OK(served);
  ASSERT_EQ((*served)[0].size(), 3u);
  EXPECT_EQ((*served)[0][0].text, answer_then_ask);
  EXPECT_EQ((*served)[0][2].text, mirror);
}

TEST_F(DialogueTest, SaveThenLoadGivesIdenticalScoresAndResumesTraining) {
  TempDir dir;
  auto model = make_model();
  std::vector<TextPair> batch = pairs();
  for (int i = 0; i < 5; ++i) ASSERT_OK(model->train_step(batch, {}));
  ASSERT_OK(model->set_candidate_pool({"my car is red .", "my boat is blue ."}));
  BundleInfo info{.version = "t1", .metrics_json = R"({"hits@1": 0.5})", .lineage_json = R"({"seed": 7})"};
  ASSERT_OK(model->save(dir.str("bundle"), info, {.with_optimizer = true}));
  EXPECT_EQ(model->save(dir.str("bundle"), info, {}).code(), StatusCode::kAlreadyExists);

  auto loaded = DialogueModel::load(dir.str("bundle"));
  ASSERT_OK(loaded);
  EXPECT_EQ((*loaded)->info().version, "t1");
  EXPECT_EQ((*loaded)->steps(), 5);
  EXPECT_EQ((*loaded)->candidate_pool(), model->candidate_pool());
  std::vector<std::string> contexts = {batch[0].context, batch[3].context};
  std::vector<std::vector<std::string>> cands = {{batch[0].target, batch[1].target}, {batch[3].target, batch[2].target}};
  auto a = model->score(contexts, cands);
  auto b = (*loaded)->score(contexts, cands);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(*a, *b);
  auto ranked_a = model->rank({{RankRequest{.context = contexts[0]}}}, 2);
  auto ranked_b = (*loaded)->rank({{RankRequest{.context = contexts[0]}}}, 2);
  EXPECT_EQ((*ranked_a)[0][0].score, (*ranked_b)[0][0].score);

  // The optimizer state came back too: one more step gives the same loss on both.
  auto next_a = model->train_step(batch, {});
  auto next_b = (*loaded)->train_step(batch, {});
  ASSERT_OK(next_a);
  ASSERT_OK(next_b);
  EXPECT_FLOAT_EQ(*next_a, *next_b);
}

// The "steps" a bundle records: what its weights were trained for, whether or not the
// optimizer was saved with them (served bundles leave it out; fine-tuning starts a new one).
TEST_F(DialogueTest, ABundleRecordsTheStepsItsWeightsWereTrainedFor) {
  TempDir dir;
  auto recorded_steps = [&](const char* bundle) {
    std::ifstream in(dir.path() / bundle / "bundle.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t at = text.find("\"steps\": ");
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + 9));
  };
  std::vector<TextPair> batch = pairs();
  BundleInfo info{.version = "t"};
  auto model = make_model();
  for (int i = 0; i < 5; ++i) ASSERT_OK(model->train_step(batch, {}));
  ASSERT_OK(model->save(dir.str("served"), info, {}));
  EXPECT_EQ(recorded_steps("served"), 5);

  auto tuned = DialogueModel::load(dir.str("served"));
  ASSERT_OK(tuned);
  for (int i = 0; i < 2; ++i) ASSERT_OK((*tuned)->train_step(batch, {}));
  EXPECT_EQ((*tuned)->steps(), 2);  // the optimizer's own count, which the learning-rate warmup follows
  ASSERT_OK((*tuned)->save(dir.str("checkpoint"), info, {.with_optimizer = true}));
  EXPECT_EQ(recorded_steps("checkpoint"), 7);

  auto resumed = DialogueModel::load(dir.str("checkpoint"));
  ASSERT_OK(resumed);
  EXPECT_EQ((*resumed)->steps(), 2);
  ASSERT_OK((*resumed)->save(dir.str("again"), info, {}));
  EXPECT_EQ(recorded_steps("again"), 7);
}

TEST_F(DialogueTest, MissingOrCorruptBundlesGiveClearErrors) {
  TempDir dir;
  auto missing = DialogueModel::load(dir.str("nope"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  auto model = make_model();
  ASSERT_OK(model->save(dir.str("b"), {.version = "t"}, {}));
  // Truncated weights.
  std::filesystem::resize_file(dir.path() / "b" / "dialogue.pt", 100);
  auto truncated = DialogueModel::load(dir.str("b"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("dialogue.pt"), std::string::npos) << truncated.status().message();

  // Garbage tokenizer.
  ASSERT_OK(model->save(dir.str("c"), {.version = "t"}, {}));
  std::ofstream(dir.path() / "c" / "tokenizer.model", std::ios::trunc) << "not a model";
  EXPECT_EQ(DialogueModel::load(dir.str("c")).status().code(), StatusCode::kDataLoss);

  // Not a bundle description.
  ASSERT_OK(model->save(dir.str("d"), {.version = "t"}, {}));
  std::ofstream(dir.path() / "d" / "bundle.json", std::ios::trunc) << "{\"format\": \"something else\"}";
  EXPECT_EQ(DialogueModel::load(dir.str("d")).status().code(), StatusCode::kDataLoss);

  // Missing weights.
  ASSERT_OK(model->save(dir.str("e"), {.version = "t"}, {}));
  std::filesystem::remove(dir.path() / "e" / "dialogue.pt");
  EXPECT_EQ(DialogueModel::load(dir.str("e")).status().code(), StatusCode::kNotFound);
}

TEST_F(DialogueTest, TrainingIsDeterministicForASeed) {
  auto a = make_model(11);
  auto b = make_model(11);
  std::vector<TextPair> batch = pairs();
  for (int i = 0; i < 3; ++i) {
    auto la = a->train_step(batch, {});
    auto lb = b->train_step(batch, {});
    ASSERT_OK(la);
    ASSERT_OK(lb);
    EXPECT_FLOAT_EQ(*la, *lb);
  }
}

}  // namespace
}  // namespace selffeed::dialogue
