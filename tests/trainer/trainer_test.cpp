#include "selffeed/trainer/trainer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "testing.h"
#include "toy_dialogue.h"

namespace selffeed::trainer {
namespace {

using selffeed::testing::TempDir;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(LoadersTest, ParlaiTextKeepsPersonasAndTagsContextsRelativeToTheResponder) {
  TempDir dir;
  write(dir.str("a.txt"),
        "1 your persona: i like cats.\n"
        "2 partner's persona: i am a baker.\n"
        "3 __SILENCE__\thi there !\n"
        "4 hello , how are you ?\ti am great .\n"
        "5 cool .\tbye .\n"
        "1 your persona: i surf.\n"
        "2 your persona:  i live by the sea. \n"
        "3 do you surf ?\tyes , daily .\t\tno .|yes , daily .|maybe\n");
  auto self_only = load_parlai_text(dir.str("a.txt"));
  ASSERT_OK(self_only);
  ASSERT_EQ(self_only->size(), 4u);
  EXPECT_EQ((*self_only)[0].context, "__null__");
  EXPECT_EQ((*self_only)[0].target, "hi there !");
  EXPECT_EQ((*self_only)[1].context, "__p2__ hi there ! __p1__ hello , how are you ?");
  EXPECT_EQ((*self_only)[2].context, "__p2__ i am great . __p1__ cool .");
  EXPECT_EQ((*self_only)[3].context, "__p1__ do you surf ?");  // a new episode starts fresh
  EXPECT_EQ((*self_only)[3].candidates, (std::vector<std::string>{"no .", "yes , daily .", "maybe"}));
  EXPECT_TRUE((*self_only)[0].candidates.empty());
  // Each episode's persona lines belong to its examples, and to no other episode's.
  EXPECT_EQ((*self_only)[0].persona, (std::vector<std::string>{"i like cats."}));
  EXPECT_EQ((*self_only)[2].persona, (std::vector<std::string>{"i like cats."}));
  EXPECT_EQ((*self_only)[3].persona, (std::vector<std::string>{"i surf.", "i live by the sea."}));

  auto both = load_parlai_text(dir.str("a.txt"), {.both_sides = true});
  ASSERT_OK(both);
  ASSERT_EQ(both->size(), 6u);
  // The partner's reply, seen from the partner's side: the roles flip.
  EXPECT_EQ((*both)[1].context, "__p1__ hi there !");
  EXPECT_EQ((*both)[1].target, "hello , how are you ?");
  EXPECT_EQ((*both)[1].persona, (std::vector<std::string>{"i am a baker."}));
  EXPECT_EQ((*both)[2].persona, (std::vector<std::string>{"i like cats."}));
  EXPECT_EQ((*both)[5].persona, (std::vector<std::string>{"i surf.", "i live by the sea."}));

  EXPECT_EQ(load_parlai_text(dir.str("missing.txt")).status().code(), StatusCode::kNotFound);
  write(dir.str("bad.txt"), "x oops\tno\n");
  EXPECT_EQ(load_parlai_text(dir.str("bad.txt")).status().code(), StatusCode::kInvalidArgument);
}

TEST(LoadersTest, SelfFeedingJsonlAndSelfDialogueTsv) {
  TempDir dir;
  write(dir.str("f.jsonl"),
        "{\"context\": \"__p1__ hi\", \"response\": \"hello\", \"candidates\": [\"hello\", \"no\"]}\n\n"
        "{\"context\": \"__null__\", \"response\": \"hey\"}\n");
  auto jsonl = load_self_feeding_jsonl(dir.str("f.jsonl"));
  ASSERT_OK(jsonl);
  ASSERT_EQ(jsonl->size(), 2u);
  EXPECT_EQ((*jsonl)[0].candidates.size(), 2u);
  write(dir.str("bad.jsonl"), "{\"context\": 3}\n");
  EXPECT_EQ(load_self_feeding_jsonl(dir.str("bad.jsonl")).status().code(), StatusCode::kInvalidArgument);

  write(dir.str("d.tsv"),
        "0\ttrain\tmovies\t0\tSeen Alien?\n0\ttrain\tmovies\t1\tYes, twice.\n0\ttrain\tmovies\t2\tScary!\n"
        "1\tvalid\tmusic\t0\tLike jazz?\n"
        "2\ttrain\tmusic\t0\tHi\n2\ttrain\tmusic\t1\tHello\n");
  auto tsv = load_self_dialogue_tsv(dir.str("d.tsv"), "train");
  ASSERT_OK(tsv);
  ASSERT_EQ(tsv->size(), 5u);
  EXPECT_EQ((*tsv)[0].context, "__null__");
  EXPECT_EQ((*tsv)[2].context, "__p2__ Seen Alien? __p1__ Yes, twice.");
  EXPECT_EQ((*tsv)[2].target, "Scary!");
  EXPECT_EQ((*tsv)[4].context, "__p1__ Hi");
}

TEST(LoadersTest, HumanRepliesOfConversationLogs) {
  TempDir dir;
  write(dir.str("logs.jsonl"),
        R"({"dialog": [{"speaker": "model", "text": "Hi! I'm Nina."}, {"speaker": "human_evaluator", "text": "Hello Nina"},)"
        R"( {"speaker": "model", "text": "Do you surf?"}, {"speaker": "human_evaluator", "text": "Daily."}], "x": 1})"
        "\n"
        R"({"dialog": [{"speaker": "human_evaluator", "text": "I open, so I am no target"}]})"
        "\n");
  auto replies = load_human_replies_jsonl(dir.str("logs.jsonl"));
  ASSERT_OK(replies);
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_EQ((*replies)[0].context, "__p1__ Hi! I'm Nina.");
  EXPECT_EQ((*replies)[0].target, "Hello Nina");
  EXPECT_EQ((*replies)[1].context, "__p2__ Hello Nina __p1__ Do you surf?");
  EXPECT_EQ((*replies)[1].target, "Daily.");

  write(dir.str("bad.jsonl"), "{\"dialog\": [{\"speaker\": \"model\"}]}\n");
  auto bad = load_human_replies_jsonl(dir.str("bad.jsonl"));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad.jsonl:1: "), std::string::npos) << bad.status().to_string();
  EXPECT_EQ(load_human_replies_jsonl(dir.str("none.jsonl")).status().code(), StatusCode::kNotFound);
}

TEST(LoadersTest, SyntheticPersonaChatCsvWithQuotedMultiLineFields) {
  TempDir dir;
  write(dir.str("spc.csv"),
        "user 1 personas,user 2 personas,Best Generated Conversation\r\n"
        "\"I bake.\nI knit.\",\"I am a boy, 12.\",\"User 1: Hi!\r\nUser 2: Hello, \"\"friend\"\"!\n"
        "User 1: Do you bake?\"\n"
        "a,b,\"User 2: Only one turn\"\n");
  auto spc = load_synthetic_persona_chat_csv(dir.str("spc.csv"));
  ASSERT_OK(spc);
  ASSERT_EQ(spc->size(), 4u);
  EXPECT_EQ((*spc)[0].context, "__null__");
  EXPECT_EQ((*spc)[0].target, "Hi!");
  EXPECT_EQ((*spc)[1].target, "Hello, \"friend\"!");
  EXPECT_EQ((*spc)[2].context, "__p2__ Hi! __p1__ Hello, \"friend\"!");
  EXPECT_EQ((*spc)[2].target, "Do you bake?");
  EXPECT_EQ((*spc)[3].target, "Only one turn");

  write(dir.str("open.csv"), "Best Generated Conversation\n\"User 1: never closed\n");
  EXPECT_EQ(load_synthetic_persona_chat_csv(dir.str("open.csv")).status().code(), StatusCode::kInvalidArgument);
  write(dir.str("other.csv"), "a,b\n1,2\n");
  EXPECT_EQ(load_synthetic_persona_chat_csv(dir.str("other.csv")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(load_synthetic_persona_chat_csv(dir.str("none.csv")).status().code(), StatusCode::kNotFound);
}

TEST(EvaluationTest, TfidfFindsWordOverlapAndTiesAreNotFree) {
  std::vector<RankingExample> data = {
      {.context = "__p1__ do you like jazz music ?", .target = "jazz music is my favourite",
       .candidates = {"i have a dog", "jazz music is my favourite", "pizza every day"}},
      {.context = "__p1__ what about pizza ?", .target = "pizza every day",
       .candidates = {"pizza every day", "i have a dog", "jazz music is my favourite"}},
  };
  auto m = evaluate_tfidf(data);
  ASSERT_OK(m);
  EXPECT_DOUBLE_EQ(m->hits_at_1, 1.0);
  EXPECT_DOUBLE_EQ(m->mrr, 1.0);
  EXPECT_EQ(m->candidates, 3u);

  // No word overlap at all: every score ties, so the gold (last) ranks last, not first.
  std::vector<RankingExample> ties = {{.context = "__p1__ hmm", .target = "c", .candidates = {"a", "b", "c"}}};
  auto t = evaluate_tfidf(ties);
  ASSERT_OK(t);
  EXPECT_DOUBLE_EQ(t->hits_at_1, 0.0);
  EXPECT_NEAR(t->mrr, 1.0 / 3.0, 1e-12);

  std::vector<RankingExample> no_gold = {{.context = "x", .target = "y", .candidates = {"a", "b"}}};
  EXPECT_EQ(evaluate_tfidf(no_gold).status().code(), StatusCode::kInvalidArgument);
}

// A tiny model that has never trained: it ranks at random, so what a fit finds comes from
// the lexical terms alone.
Result<std::unique_ptr<dialogue::DialogueModel>> untrained_model() {
  dialogue::configure_threads({.intra_op = 1});
  std::vector<std::string> texts;
  for (const auto& p : selffeed::testing::toy_dialogue()) texts.push_back(p.context + " " + p.target);
  SELFFEED_ASSIGN_OR_RETURN(auto tokenizer, dialogue::Tokenizer::train(texts, {.vocab_size = 120}));
  return dialogue::DialogueModel::create(
      {.d_model = 32, .n_heads = 2, .n_layers = 1, .ffn_size = 16, .context_tokens = 32, .candidate_tokens = 16},
      tokenizer, 3);
}

TEST(EvaluationTest, FitLexicalWeightFollowsWhatWordOverlapIsWorthOnHeldOutData) {
  auto model = untrained_model();
  ASSERT_OK(model);
  const std::vector<std::string> objects = {"car", "house", "bike", "boat", "kite", "lamp", "door", "shoe"};
  std::vector<std::string> pool;
  for (const std::string& o : objects) pool.push_back("my " + o + " is here .");
  ASSERT_OK((*model)->set_candidate_pool(pool));
  // An untrained model ranks at random; here the gold names the object the context asks about.
  std::vector<RankingExample> overlap, misleading;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    overlap.push_back({.context = "__p1__ where is your " + objects[i] + " ?", .target = pool[i], .candidates = pool});
    // Here every distractor names it and the gold never does.
    misleading.push_back({.context = "__p1__ where is your " + objects[i] + " ?", .target = pool[(i + 1) % objects.size()]});
    for (std::size_t j = 0; j < 5; ++j) misleading.back().candidates.push_back(pool[i] + " " + std::to_string(j));
    misleading.back().candidates.push_back(misleading.back().target);
  }
  auto fit = fit_lexical_weight(**model, overlap);
  ASSERT_OK(fit);
  EXPECT_GT(fit->weight, 0);
  EXPECT_EQ((*model)->config().lexical_weight, fit->weight);
  EXPECT_DOUBLE_EQ(fit->fitted.hits_at_1, 1.0);
  EXPECT_GE(fit->fitted.mrr, fit->dense.mrr);
  auto check = evaluate_ranking(**model, overlap);
  ASSERT_OK(check);
  EXPECT_DOUBLE_EQ(check->mrr, fit->fitted.mrr);

  auto none = fit_lexical_weight(**model, misleading);
  ASSERT_OK(none);
  EXPECT_EQ(none->weight, 0);
  EXPECT_EQ((*model)->config().lexical_weight, 0);
}

// The trust rule's judge ranks each feedback among the replies of the model's pool, as
// served. Here the lexical term decides: the reply that names what the context asks about
// beats all but its own copy in the pool, and one that shares no word with it is beaten by
// every reply.
TEST(EvaluationTest, FeedbackRelevanceIsTheShareOfThePoolRankedAboveIt) {
  auto model = untrained_model();
  ASSERT_OK(model);
  std::shared_ptr<dialogue::DialogueModel> shared = std::move(*model);
  const auto judge = feedback_relevance(shared);
  const std::vector<dialogue::TextPair> feedback = {{"__p1__ where is your car ?", "my car is here ."},
                                                    {"__p1__ where is your car ?", "nice weather today ."}};
  EXPECT_EQ(judge(feedback).status().code(), StatusCode::kFailedPrecondition) << "no pool to rank in";
  std::vector<std::string> pool;
  for (const std::string o : {"car", "house", "bike", "boat", "kite", "lamp", "door", "shoe"}) {
    pool.push_back("my " + o + " is here .");
  }
  ASSERT_OK(shared->set_candidate_pool(pool));
  ASSERT_OK(shared->set_lexical_weight(100));
  auto ranks = judge(feedback);
  ASSERT_OK(ranks);
  ASSERT_EQ(ranks->size(), 2u);
  EXPECT_LE((*ranks)[0], 1.0 / 8) << "at most its copy, by rounding";
  EXPECT_EQ((*ranks)[1], 1.0);
  ASSERT_OK(shared->set_lexical_weight(0));
  auto dense = judge(feedback);
  ASSERT_OK(dense);
  EXPECT_LT((*dense)[1], 1.0) << "an untrained encoder alone ranks at random";
}

TEST(EvaluationTest, FitPersonaWeightMakesTheBotDrawOnItsPersonaAsOftenAsPeopleDo) {
  auto model = untrained_model();
  ASSERT_OK(model);
  const std::vector<std::string> pets = {"dog", "cat", "horse", "parrot", "rabbit", "snake", "goat", "fish"};
  std::vector<std::string> pool;
  for (const std::string& p : pets) pool.push_back("i have a " + p + " .");
  ASSERT_OK((*model)->set_candidate_pool(pool));
  // The context says nothing about the answer; every person answers with their persona.
  std::vector<RankingExample> held_out;
  while (held_out.size() < kFewestExamplesToFitLexicalWeight) {
    for (std::size_t i = 0; i < pets.size(); ++i) {
      held_out.push_back({.context = "__p1__ tell me about yourself .",
                          .target = pool[i],
                          .persona = {"i like the sea .", "i have a " + pets[i] + " ."}});
    }
  }
  auto fit = fit_persona_weight(**model, held_out);
  ASSERT_OK(fit);
  EXPECT_EQ(fit->examples, held_out.size());
  EXPECT_DOUBLE_EQ(fit->people_rate, 1.0);
  EXPECT_LT(fit->rate_without, 1.0);  // an untrained model picks a pet at random
  EXPECT_GT(fit->weight, 0);
  EXPECT_GE(fit->rate_fitted, fit->people_rate - 1e-9);
  EXPECT_EQ((*model)->config().persona_weight, fit->weight);
  // The smallest such weight: one less falls short.
  ASSERT_OK((*model)->set_persona_weight(fit->weight - 1));
  std::size_t on_persona = 0;
  for (std::size_t i = 0; i < held_out.size(); ++i) {
    auto top = (*model)->rank({{dialogue::RankRequest{.context = held_out[i].context, .persona = held_out[i].persona}}}, 1);
    ASSERT_OK(top);
    on_persona += (*top)[0].front().text == held_out[i].target;
  }
  EXPECT_LT(on_persona, held_out.size());

  // Too few examples with a persona (the others do not count): weight 0.
  std::vector<RankingExample> few(held_out.begin(), held_out.begin() + 10);
  for (int i = 0; i < 200; ++i) few.push_back({.context = "__p1__ hi", .target = pool[0]});
  auto none = fit_persona_weight(**model, few);
  ASSERT_OK(none);
  EXPECT_EQ(none->examples, 10u);
  EXPECT_EQ(none->weight, 0);
  EXPECT_EQ((*model)->config().persona_weight, 0);
}

TEST(EvaluationTest, ServedRepliesAreCountedAgainstThePersonasFacts) {
  auto model = untrained_model();
  ASSERT_OK(model);
  ASSERT_OK((*model)->set_candidate_pool({"i have 3 dogs .", "hello there .", "i like cheese ."}));
  ASSERT_OK((*model)->set_persona_weight(1000));  // the persona's own sentence comes first
  const std::vector<std::string> persona = {"i have two dogs ."};
  std::vector<RankingExample> data;
  for (int i = 0; i < 10; ++i) {
    data.push_back({.context = "__p1__ do you have dogs ?", .target = "i have 3 dogs .", .persona = persona});
    data.push_back({.context = "__p1__ any pets ?", .target = "i have two dogs .", .persona = persona});
  }
  auto rates = evaluate_repeats(**model, data, data.size());
  ASSERT_OK(rates);
  EXPECT_EQ(rates->repeats.examples, data.size());
  EXPECT_EQ(rates->contradicting_persona.examples, data.size());
  EXPECT_DOUBLE_EQ(rates->contradicting_persona.people, 0.5);  // "3 dogs" against two
  EXPECT_DOUBLE_EQ(rates->contradicting_persona.served, 0.0);
  EXPECT_DOUBLE_EQ(rates->drawing_on_persona.served, 1.0);
  // Both questions ask about what the persona has: the persona's sentence answers them, and
  // so, wrongly but about dogs, does "i have 3 dogs .".
  EXPECT_EQ(rates->answering_about_itself.examples, data.size());
  EXPECT_DOUBLE_EQ(rates->answering_about_itself.served, 1.0);
  EXPECT_DOUBLE_EQ(rates->answering_about_itself.people, 1.0);
  EXPECT_EQ(rates->asking_back.examples, data.size());
  EXPECT_EQ(rates->unasked_how_it_is.examples, data.size());
  EXPECT_DOUBLE_EQ(rates->unasked_how_it_is.people, 0.0);
  EXPECT_GE(rates->fact_examples, 10u);  // at least the replies that say the fact itself
  EXPECT_DOUBLE_EQ(rates->same_fact_served, 1.0);
}

TEST(EvaluationTest, RandomCandidatesHoldTheGoldOnceAndNeverDuplicateIt) {
  std::vector<RankingExample> data;
  for (int i = 0; i < 30; ++i) data.push_back({.context = "c", .target = "t" + std::to_string(i % 25)});
  add_random_candidates(data, 5, 3);
  for (const RankingExample& e : data) {
    EXPECT_EQ(e.candidates.size(), 6u);
    EXPECT_EQ(std::count(e.candidates.begin(), e.candidates.end(), e.target), 1);
  }
}

class TrainDialogueTest : public ::testing::Test {
 protected:
  DialogueTrainOptions options(const std::string& run_dir, std::int64_t steps) {
    std::vector<RankingExample> examples;
    for (const auto& p : selffeed::testing::toy_dialogue()) examples.push_back({p.context, p.target, {}});
    std::vector<RankingExample> valid = examples;
    add_random_candidates(valid, 4, 1);
    DialogueTrainOptions o;
    o.run_dir = run_dir;
    o.sources = {{.name = "toy", .examples = examples, .weight = 1.0}};
    o.valid = valid;
    for (const auto& e : examples) o.candidate_pool.push_back(e.target);
    o.model = {.d_model = 32, .n_heads = 2, .n_layers = 1, .ffn_size = 16, .context_tokens = 32, .candidate_tokens = 16};
    o.tokenizer = {.vocab_size = 120};
    o.optimizer = {.learning_rate = 0.01, .warmup_steps = 5};
    o.batch_size = 8;
    o.max_steps = steps;
    o.validate_every = 10;
    o.patience = 100;
    o.seed = 5;
    return o;
  }
};

TEST_F(TrainDialogueTest, LearnsTheToySetAndWritesABundle) {
  TempDir dir;
  std::vector<std::string> progress;
  DialogueTrainOptions o = options(dir.str("run"), 120);
  o.on_progress = [&](const std::string& line) { progress.push_back(line); };
  auto report = train_dialogue(o);
  ASSERT_OK(report);
  EXPECT_EQ(report->steps, 120);
  EXPECT_GT(report->best_valid_hits_at_1, 0.6);
  ASSERT_FALSE(progress.empty());
  EXPECT_NE(progress.back().find("ex/s"), std::string::npos);
  EXPECT_NE(progress.back().find("ETA"), std::string::npos);
  auto bundle = dialogue::DialogueModel::load(report->bundle_dir);
  ASSERT_OK(bundle);
  EXPECT_EQ((*bundle)->candidate_pool_size(), 16u);
  EXPECT_NE((*bundle)->info().lineage_json.find("\"seed\":5"), std::string::npos) << (*bundle)->info().lineage_json;
  // 16 validation examples are too few to fit a lexical weight on: it stays 0.
  EXPECT_EQ(report->lexical_weight, 0);
  EXPECT_EQ((*bundle)->config().lexical_weight, 0);
  EXPECT_NE((*bundle)->info().metrics_json.find("lexical_weight"), std::string::npos);

  // With enough of them it is fitted after training and travels in the bundle.
  std::vector<RankingExample> many;
  while (many.size() < kFewestExamplesToFitLexicalWeight) many.insert(many.end(), o.valid.begin(), o.valid.end());
  o.valid = many;
  o.run_dir = dir.str("fitted");
  o.max_steps = 20;
  auto fitted = train_dialogue(o);
  ASSERT_OK(fitted);
  auto fitted_bundle = dialogue::DialogueModel::load(fitted->bundle_dir);
  ASSERT_OK(fitted_bundle);
  EXPECT_EQ((*fitted_bundle)->config().lexical_weight, fitted->lexical_weight);
  auto refit = fit_lexical_weight(**fitted_bundle, many);
  ASSERT_OK(refit);
  EXPECT_EQ(refit->weight, fitted->lexical_weight);
  EXPECT_DOUBLE_EQ(refit->fitted.hits_at_1, fitted->valid_hits_at_1_with_lexical);

  o.lexical_weight = 3;
  o.run_dir = dir.str("fixed");
  auto fixed = train_dialogue(o);
  ASSERT_OK(fixed);
  auto fixed_bundle = dialogue::DialogueModel::load(fixed->bundle_dir);
  ASSERT_OK(fixed_bundle);
  EXPECT_EQ((*fixed_bundle)->config().lexical_weight, 3);
}

TEST_F(TrainDialogueTest, AResumedRunEndsExactlyWhereAnUninterruptedOneDoes) {
  TempDir dir;
  ASSERT_OK(train_dialogue(options(dir.str("interrupted"), 20)));  // "killed" after step 20
  auto resumed = train_dialogue(options(dir.str("interrupted"), 30));
  ASSERT_OK(resumed);
  auto straight = train_dialogue(options(dir.str("straight"), 30));
  ASSERT_OK(straight);
  EXPECT_EQ(resumed->steps, 30);
  auto a = dialogue::DialogueModel::load(dir.str("interrupted") + "/checkpoint-0000030");
  auto b = dialogue::DialogueModel::load(dir.str("straight") + "/checkpoint-0000030");
  // Only the newest checkpoint is kept.
  EXPECT_FALSE(std::filesystem::exists(dir.str("interrupted") + "/checkpoint-0000020"));
  ASSERT_OK(a);
  ASSERT_OK(b);
  std::vector<std::string> contexts = {selffeed::testing::toy_dialogue()[0].context};
  std::vector<std::vector<std::string>> cands = {{"my car is red .", "my kite is pink ."}};
  EXPECT_EQ(*(*a)->score(contexts, cands), *(*b)->score(contexts, cands));
}

// No steps from a bundle: its weights as they are, with the pool it is given (how a
// bundle is served another candidate pool).
TEST_F(TrainDialogueTest, NoStepsFromABundleKeepsItsWeightsAndTakesTheNewPool) {
  TempDir dir;
  auto trained = train_dialogue(options(dir.str("trained"), 20));
  ASSERT_OK(trained);
  DialogueTrainOptions o = options(dir.str("repooled"), 0);
  o.init_bundle = trained->bundle_dir;
  o.candidate_pool = {"my car is red .", "my kite is pink ."};
  auto repooled = train_dialogue(o);
  ASSERT_OK(repooled);
  auto before = dialogue::DialogueModel::load(trained->bundle_dir);
  auto after = dialogue::DialogueModel::load(repooled->bundle_dir);
  ASSERT_OK(before);
  ASSERT_OK(after);
  EXPECT_EQ((*after)->candidate_pool(), o.candidate_pool);
  std::vector<std::string> contexts = {selffeed::testing::toy_dialogue()[0].context};
  std::vector<std::vector<std::string>> cands = {{"my car is red .", "my kite is pink ."}};
  EXPECT_EQ(*(*after)->score(contexts, cands), *(*before)->score(contexts, cands));
}

// A bounded pool keeps its first distinct replies, and the bundle says how many it left out.
TEST_F(TrainDialogueTest, ThePoolKeepsItsFirstDistinctRepliesUpToTheLimit) {
  TempDir dir;
  DialogueTrainOptions o = options(dir.str("run"), 10);
  o.candidate_pool = {"a dog .", "a dog .", "a cat .", "", "a kite .", "a car ."};
  o.max_candidates = 3;
  auto report = train_dialogue(o);
  ASSERT_OK(report);
  EXPECT_EQ(report->candidates_left_out, 1u);
  auto bundle = dialogue::DialogueModel::load(report->bundle_dir);
  ASSERT_OK(bundle);
  EXPECT_EQ((*bundle)->candidate_pool(), (std::vector<std::string>{"a dog .", "a cat .", "a kite ."}));
  EXPECT_NE((*bundle)->info().lineage_json.find("\"candidates_left_out\":1"), std::string::npos);
}

}  // namespace
}  // namespace selffeed::trainer

namespace selffeed::trainer {
namespace {

TEST(SatisfactionDataTest, RatedBotTurnsFollowedByAHumanBecomeExamples) {
  selffeed::testing::TempDir dir;
  write(dir.str("wild.json"), R"([
    {"dialog": [
      {"id": 0, "sender": "participant1", "sender_class": "Human", "text": "hi", "evaluation_score": null},
      {"id": 1, "sender": "participant2", "sender_class": "Bot", "text": "i like cats", "evaluation_score": 1},
      {"id": 2, "sender": "participant1", "sender_class": "Human", "text": "me too!", "evaluation_score": null},
      {"id": 3, "sender": "participant2", "sender_class": "Bot", "text": "the moon is cheese", "evaluation_score": 0},
      {"id": 4, "sender": "participant1", "sender_class": "Human", "text": "what?", "evaluation_score": null},
      {"id": 5, "sender": "participant2", "sender_class": "Bot", "text": "ok", "evaluation_score": null},
      {"id": 6, "sender": "participant1", "sender_class": "Human", "text": "bye", "evaluation_score": null},
      {"id": 7, "sender": "participant2", "sender_class": "Bot", "text": "rated but last", "evaluation_score": 1}
    ]}])");
  auto labelled = load_convai2_satisfaction(dir.str("wild.json"), /*labelled_only=*/true);
  ASSERT_OK(labelled);
  ASSERT_EQ(labelled->size(), 2u);
  EXPECT_EQ((*labelled)[0].label, 1);
  EXPECT_EQ((*labelled)[0].input.bot_reply, "i like cats");
  EXPECT_EQ((*labelled)[0].input.user_reply, "me too!");
  EXPECT_EQ((*labelled)[0].input.history, std::vector<std::string>{"hi"});
  EXPECT_EQ((*labelled)[1].label, 0);
  EXPECT_EQ(satisfaction::satisfaction_context((*labelled)[1].input), "__p2__ the moon is cheese __p1__ what?");
  EXPECT_EQ((*labelled)[0].dialogue_id, "wild.json#0");
  EXPECT_EQ((*labelled)[0].split, split_of("wild.json#0"));

  auto all = load_convai2_satisfaction(dir.str("wild.json"), /*labelled_only=*/false);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 3u);  // plus the unrated "ok" -> "bye"
  EXPECT_EQ((*all)[2].label, -1);

  write(dir.str("bad.json"), R"({"not": "a list"})");
  EXPECT_EQ(load_convai2_satisfaction(dir.str("bad.json"), true).status().code(), StatusCode::kInvalidArgument);
}

// The export files have no sender_class: participant2 is the bot there too, so a human
// answering a human, or the bot answering the human, is no example.
TEST(SatisfactionDataTest, ExportFilesTakeParticipant2AsTheBot) {
  selffeed::testing::TempDir dir;
  ASSERT_EQ(split_of("export.json#0xb"), Split::kTrain);
  ASSERT_EQ(split_of("export.json#0xa"), Split::kTest);
  write(dir.str("export.json"), R"([{"dialog_id": "0xb", "dialog": [
      {"id": 0, "sender": "participant2", "text": "hey! i am 100 years old"},
      {"id": 1, "sender": "participant1", "text": "wow"},
      {"id": 2, "sender": "participant1", "text": "really?"},
      {"id": 3, "sender": "participant2", "text": "yes, really"},
      {"id": 4, "sender": "participant1", "text": "cool"}]},
    {"dialog_id": "0xa", "dialog": [
      {"id": 0, "sender": "participant2", "text": "hi"},
      {"id": 1, "sender": "participant1", "text": "a test-split reply"}]}])");
  auto all = load_convai2_satisfaction(dir.str("export.json"), /*labelled_only=*/false);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].input.user_reply, "wow");
  EXPECT_EQ((*all)[1].input.bot_reply, "yes, really");
  EXPECT_EQ((*all)[1].input.history, (std::vector<std::string>{"hey! i am 100 years old", "wow", "really?"}));
  EXPECT_EQ((*all)[1].dialogue_id, "export.json#0xb");

  // As dialogue data: the human's replies with the two turns before, train dialogues only.
  auto replies = load_convai2_human_replies(dir.str("export.json"));
  ASSERT_OK(replies);
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_EQ((*replies)[0].target, "wow");
  EXPECT_EQ((*replies)[1].context, "__p2__ really? __p1__ yes, really");
  EXPECT_EQ((*replies)[1].target, "cool");
}

// Rotating the folds (cross-validation) makes every dialogue test data exactly once and
// valid data once; rotation 0 is the fixed split.
TEST(SatisfactionDataTest, RotationsMakeEveryDialogueTestDataOnce) {
  for (int i = 0; i < 200; ++i) {
    const std::string id = "f.json#" + std::to_string(i);
    EXPECT_EQ(split_of(id, 0), split_of(id));
    int counts[3] = {0, 0, 0};
    for (int r = 0; r < kSplitFolds; ++r) ++counts[static_cast<int>(split_of(id, r))];
    EXPECT_EQ(counts[static_cast<int>(Split::kTrain)], 3) << id;
    EXPECT_EQ(counts[static_cast<int>(Split::kValid)], 1) << id;
    EXPECT_EQ(counts[static_cast<int>(Split::kTest)], 1) << id;
  }
}

TEST(SatisfactionDataTest, LoadingWithARotationMovesTheUnlabelledPoolWithIt) {
  selffeed::testing::TempDir dir;
  // Two dialogues with one rated and one unrated reply each.
  std::string dialogues = "[";
  for (int d = 0; d < 2; ++d) {
    dialogues += std::string(d ? "," : "") + R"({"dialog": [
      {"id": 0, "sender": "participant2", "sender_class": "Bot", "text": "hi", "evaluation_score": 1},
      {"id": 1, "sender": "participant1", "sender_class": "Human", "text": "hello"},
      {"id": 2, "sender": "participant2", "sender_class": "Bot", "text": "i like tea"},
      {"id": 3, "sender": "participant1", "sender_class": "Human", "text": "me too"}]})";
  }
  write(dir.str("wild.json"), dialogues + "]");
  const std::vector<std::string> files = {dir.str("wild.json")};
  for (int r = 0; r < kSplitFolds; ++r) {
    auto data = load_satisfaction_data(files, {}, r);
    ASSERT_OK(data);
    ASSERT_EQ(data->labelled.size(), 2u);
    std::size_t train_dialogues = 0;
    for (const auto& e : data->labelled) {
      EXPECT_EQ(e.split, split_of(e.dialogue_id, r));
      train_dialogues += e.split == Split::kTrain;
    }
    EXPECT_EQ(data->unlabelled.size(), train_dialogues) << "rotation " << r;  // only train dialogues feed the pool
  }
  EXPECT_EQ(load_satisfaction_data(files, {}, kSplitFolds).status().code(), StatusCode::kInvalidArgument);
}

// Weak targets keep the label model's order of the replies but not its (badly calibrated)
// probabilities: ranks spread over (0, 1), equal votes equal targets.
TEST(SatisfactionDataTest, WeakTargetsAreTheLabelModelsOrderSpreadEvenly) {
  const char* replies[] = {"haha cool, that sounds great", "what? that makes no sense", "?", "i have two dogs",
                           "haha cool, that sounds great", "lol nice", "what do you mean by that?", "ok"};
  std::vector<SatisfactionExample> pool;
  std::vector<std::vector<satisfaction::Vote>> votes;
  for (const char* reply : replies) {
    SatisfactionExample e;
    e.input = {.history = {"hi", "hello there", "how are you?"}, .bot_reply = "i like tea .", .user_reply = reply};
    votes.push_back(satisfaction::apply_labeling_functions(e.input));
    pool.push_back(std::move(e));
  }
  auto label_model = satisfaction::LabelModel::fit(votes);
  ASSERT_OK(label_model);
  std::mt19937_64 rng(1);
  SatisfactionPairs weak = weak_labels(*label_model, pool, pool.size(), rng);
  ASSERT_EQ(weak.targets.size(), pool.size());
  // The sample is shuffled: find each pair's reply again through its context.
  std::vector<double> probability;
  for (const std::string& context : weak.contexts) {
    for (const SatisfactionExample& e : pool) {
      if (satisfaction::satisfaction_context(e.input) == context) {
        probability.push_back(label_model->probability(satisfaction::apply_labeling_functions(e.input)));
        break;
      }
    }
  }
  ASSERT_EQ(probability.size(), weak.targets.size());
  double sum = 0;
  for (std::size_t i = 0; i < weak.targets.size(); ++i) {
    EXPECT_GT(weak.targets[i], 0.0);
    EXPECT_LT(weak.targets[i], 1.0);
    sum += weak.targets[i];
    for (std::size_t j = 0; j < weak.targets.size(); ++j) {
      if (probability[i] < probability[j]) {
        EXPECT_LT(weak.targets[i], weak.targets[j]);
      }
      if (probability[i] == probability[j]) {
        EXPECT_EQ(weak.targets[i], weak.targets[j]);
      }
    }
  }
  EXPECT_NEAR(sum / static_cast<double>(weak.targets.size()), 0.5, 1e-12);
  // Not all the same: the replies vote differently.
  EXPECT_NE(*std::min_element(weak.targets.begin(), weak.targets.end()),
            *std::max_element(weak.targets.begin(), weak.targets.end()));
}

TEST(SatisfactionDataTest, SplitIsStableAndRoughly60_20_20) {
  EXPECT_EQ(split_of("data_volunteers.json#17"), split_of("data_volunteers.json#17"));
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 5000; ++i) ++counts[static_cast<int>(split_of("f.json#" + std::to_string(i)))];
  EXPECT_NEAR(counts[0] / 5000.0, 0.6, 0.03);
  EXPECT_NEAR(counts[1] / 5000.0, 0.2, 0.03);
  EXPECT_NEAR(counts[2] / 5000.0, 0.2, 0.03);
}

}  // namespace
}  // namespace selffeed::trainer
