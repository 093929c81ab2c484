#include "selffeed/common/context.h"

#include <gtest/gtest.h>

namespace selffeed {
namespace {

TEST(ContextTest, OpenerIsNull) { EXPECT_EQ(format_context({}), "__null__"); }

TEST(ContextTest, SingleUtteranceIsThePartners) {
  std::vector<std::string> h = {"hi there"};
  EXPECT_EQ(format_context(h), "__p1__ hi there");
}

TEST(ContextTest, MidDialogueKeepsTheLastTwoTaggedRelativeToTheResponder) {
  std::vector<std::string> h = {"a1", "b1", "a2", "b2"};
  // The responder answers b2 (its partner's latest); a2 was the responder's own turn.
  EXPECT_EQ(format_context(h), "__p2__ a2 __p1__ b2");
  EXPECT_EQ(format_context(h, 3), "__p1__ b1 __p2__ a2 __p1__ b2");
}

TEST(ContextTest, HumanBotRoleFlip) {
  // HB examples imitate the human: the bot's turn right before the human's reply is the
  // human's "partner" (__p1__), the human's own earlier turn is __p2__.
  std::vector<std::string> conversation = {"human: i like dogs", "bot: me too! do you have one?"};
  EXPECT_EQ(format_context(conversation), "__p2__ human: i like dogs __p1__ bot: me too! do you have one?");
}

TEST(ContextTest, SplitUndoesFormat) {
  std::vector<std::string> h = {"do you surf?", "yes , every day !"};
  EXPECT_EQ(split_context(format_context(h)), h);
  EXPECT_TRUE(split_context("__null__").empty());
  EXPECT_EQ(split_context("no tags"), std::vector<std::string>{"no tags"});
}

TEST(ContextTest, SentencesEndAfterTheirLastMark) {
  using Ss = std::vector<Sentence>;
  EXPECT_EQ(sentences_of("cool ! what do you do ? i teach"),
            (Ss{{"cool !", false}, {"what do you do ?", true}, {"i teach", false}}));
  EXPECT_EQ(sentences_of("well... ok ?! fine ."), (Ss{{"well...", false}, {"ok ?!", true}, {"fine .", false}}));
  EXPECT_EQ(sentences_of("i like dogs"), (Ss{{"i like dogs", false}}));
  EXPECT_TRUE(sentences_of(" ?! ").empty());
  EXPECT_TRUE(sentences_of("").empty());
}

TEST(ContextTest, AnUnmarkedSentenceThatOpensAsAQuestionIsOne) {
  for (const char* question : {"what do you do for a job", "do you have pets", "how long have you lived there",
                               "what kind of music", "where's your dog", "are u ok", "i teach . what about you",
                               "is it cold there", "so what is your real name", "and how about you",
                               "oh do you have kids", "hi how are you", "hey so what do you do for work",
                               "i have two but what do you do for work", "that is cool and where do you live",
                               "pretty good how are you", "i'm good what about you", "i'm good do you have pets",
                               "it is what do you do for a living"}) {
    EXPECT_EQ(questions_in(question).size(), 1u) << question;
  }
  for (const char* statement : {"what a day", "when i was young i had a dog", "do it now", "i know what is best", "if they need a lawyer i am your girl", "avoid him is your best bet",
                                "yes that is it you have it", "even if that is your script",
                                "you are gonna have your own little soccer team soon",
                                "what do you do for a job .", "so what", "and when i was young", "so",
                                "hi there", "i know what you mean", "i like it and what a day it was"}) {
    EXPECT_TRUE(questions_in(statement).empty()) << statement;
  }
}

TEST(ContextTest, AQuestionsClauseIsWhatItAsks) {
  EXPECT_EQ(question_clause("oh cool , what do you do for work ?"), "what do you do for work ?");
  EXPECT_EQ(question_clause("i am doing fine , how are you ?"), "how are you ?");
  EXPECT_EQ(question_clause("hi how are you"), "how are you");
  EXPECT_EQ(question_clause("what do you do ?"), "what do you do ?");
  EXPECT_EQ(question_clause("really ?"), "really ?");
  EXPECT_EQ(question_clause("i love pizza , what about you ?"), "i love pizza , what about you ?");
}

TEST(ContextTest, QuestionsAreTheSentencesEndingInAQuestionMark) {
  using Qs = std::vector<std::string_view>;
  EXPECT_EQ(questions_in("cool ! what do you do ? i teach ."), Qs{"what do you do ?"});
  EXPECT_EQ(questions_in("hi. how are you? where do you live?"), (Qs{"how are you?", "where do you live?"}));
  EXPECT_EQ(questions_in("really ?! you surf ??"), (Qs{"really ?!", "you surf ??"}));
  EXPECT_TRUE(questions_in("i like dogs . me too !").empty());
  EXPECT_EQ(questions_in("do you read at all"), Qs{"do you read at all"});  // no mark, but it opens as one
  EXPECT_TRUE(questions_in(" ? ... ?").empty());
  EXPECT_TRUE(questions_in("").empty());
}

TEST(ContextTest, LowerWordsKeepApostrophesAndUtf8) {
  using Ws = std::vector<std::string>;
  EXPECT_EQ(lower_words("Hi, I'm Ann!"), (Ws{"hi", "i'm", "ann"}));
  EXPECT_EQ(lower_words("  café--au lait 2day "), (Ws{"café", "au", "lait", "2day"}));
  EXPECT_TRUE(lower_words(" ?! ").empty());
}

TEST(ContextTest, TokenF1CountsSharedWordsOnceEach) {
  EXPECT_DOUBLE_EQ(token_f1("I have two dogs!", "i have two dogs ."), 1.0);
  // 2 shared of 4 predicted and 2 reference words: precision 0.5, recall 1.
  EXPECT_NEAR(token_f1("i have a cat", "I have"), 2 * 0.5 * 1.0 / 1.5, 1e-12);
  EXPECT_NEAR(token_f1("dogs dogs dogs", "dogs"), 2 * (1.0 / 3) * 1.0 / (1.0 / 3 + 1), 1e-12);
  EXPECT_EQ(token_f1("hello", "goodbye"), 0);
  EXPECT_EQ(token_f1("...", "hello"), 0);
}

TEST(ContextTest, GreetingsAreTheFirstWordsOfAnUtterance) {
  for (std::string_view greeting : {"hi", "Hi!", "  hello there", "hey , want to go see a movie ?", "Good morning :)",
                                    "good evening all", "howdy partner", "hi my name is kellie"}) {
    EXPECT_TRUE(opens_with_greeting(greeting)) << greeting;
  }
  for (std::string_view other : {"history is my favorite subject", "heyday", "oh hi", "good , how are you ?",
                                 "good", "i said hello", "", " "}) {
    EXPECT_FALSE(opens_with_greeting(other)) << other;
  }
}

TEST(ContextTest, TheNameASpeakerGivesThemselves) {
  EXPECT_EQ(self_given_name("hi ! my name is Kellie . what is yours ?"), "kellie");
  EXPECT_EQ(self_given_name("hello , my name's  tom"), "tom");
  EXPECT_EQ(self_given_name("how you doing my names ted"), "ted");
  EXPECT_EQ(self_given_name("My name is ZOË."), "zoË") << "only ASCII is lower-cased";
  EXPECT_EQ(self_given_name("my dogs name is rex"), "");
  EXPECT_EQ(self_given_name("my last name is sanchez"), "");
  EXPECT_EQ(self_given_name("enemy name is bob . my name is ann"), "ann");
  EXPECT_EQ(self_given_name("my name is"), "");
  EXPECT_EQ(self_given_name("what is your name ?"), "");
  // After a greeting, "i'm" and one word that ends the clause.
  EXPECT_EQ(self_given_name("hi , i'm walt . what is your name ?"), "walt");
  EXPECT_EQ(self_given_name("Hello there, I am Sarah, how are you?"), "sarah");
  EXPECT_EQ(self_given_name("hey im todd and i love dogs"), "todd");
  EXPECT_EQ(self_given_name("hi names pete and i cam back from my trip to london"), "pete");
  EXPECT_EQ(self_given_name("hi i'm good . how are you ?"), "");
  EXPECT_EQ(self_given_name("hello , i am doing great"), "");
  EXPECT_EQ(self_given_name("hi i'm feeling fine"), "");
  EXPECT_EQ(self_given_name("hello I am okey ) a little tired"), "") << "a misspelt okay";
  EXPECT_EQ(self_given_name("hi i am a student"), "");
  EXPECT_EQ(self_given_name("hi i'm from new york"), "");
  EXPECT_EQ(self_given_name("i'm walt ."), "") << "without a greeting it is as often a mood";
  EXPECT_EQ(self_given_name("hi . i'm walt ."), "") << "only in the greeting's own sentence";
}

TEST(ContextTest, FillersSayNothing) {
  for (const char* filler : {"nice .", "lol", "Hahaha!", "ahahah .", "oh wow", "i bet .", "okay , cool", "hehe", "same .", "same here !"}) {
    EXPECT_TRUE(is_filler(filler)) << filler;
  }
  for (const char* answer : {"no .", "yes !", "jazz .", "i bet you do like it", "oh i teach", "he is .", "same as you", ""}) {
    EXPECT_FALSE(is_filler(answer)) << answer;
  }
}

TEST(ContextTest, TheOccupationASpeakerGivesThemselves) {
  EXPECT_EQ(self_stated_occupation("i am a nurse at a children's hospital ."), "nurse");
  EXPECT_EQ(self_stated_occupation("Hi! I'm a retired school teacher."), "teacher");
  EXPECT_EQ(self_stated_occupation("lol . i work as an accountant . you ?"), "accountant");
  EXPECT_EQ(self_stated_occupation("im a vet"), "vet");
  EXPECT_EQ(self_stated_occupation("i like dogs . i am working as a chef now"), "chef");
  EXPECT_EQ(self_stated_occupation("i am a big fan of jazz ."), "");
  EXPECT_EQ(self_stated_occupation("my mom is a nurse ."), "");
  EXPECT_EQ(self_stated_occupation("i am going to school to be a lawyer ."), "student") << "not a lawyer yet";
  EXPECT_EQ(self_stated_occupation("interesting , i am studying to become a programmer ."), "student");
  EXPECT_EQ(self_stated_occupation("i'm retired . i do a lot of volunteer work"), "retired");
  EXPECT_EQ(self_stated_occupation("ha , well i bake for a living ."), "baker");
  EXPECT_EQ(self_stated_occupation("i am retiring next year"), "");
  EXPECT_EQ(self_stated_occupation("my daughter is going to school to be a vet ."), "");
  EXPECT_EQ(self_stated_occupation("i attended college to be a nurse , but i'm a teacher now ."), "teacher");
  EXPECT_EQ(self_stated_occupation("my dad is retired"), "");
  EXPECT_EQ(self_stated_occupation("i am a very very tired old teacher"), "") << "at most 3 words before it";
  EXPECT_EQ(self_stated_occupation("what do you do for a living ?"), "");
  EXPECT_EQ(self_stated_occupation("i am an"), "");
}

TEST(ContextTest, PossessionsAreReadFromStatementsAboutPetsAndFamily) {
  using Ps = std::vector<Possession>;
  EXPECT_EQ(stated_possessions("i have two dogs ."), (Ps{{"dog", "pet", 2}}));
  EXPECT_EQ(stated_possessions("yes , i have 3 german shepherds ! and a cat"), (Ps{}))
      << "a breed is no word it knows, and 'and a cat' has no 'i have'";
  EXPECT_EQ(stated_possessions("i have a big old cat"), (Ps{{"cat", "pet", 1}}));
  EXPECT_EQ(stated_possessions("no , i do not have any pets ."), (Ps{{"pet", "pet", 0}}));
  EXPECT_EQ(stated_possessions("i don't have kids but i've two brothers"),
            (Ps{{"child", "child", 0}, {"brother", "sibling", 2}}));
  EXPECT_EQ(stated_possessions("i have no siblings"), (Ps{{"sibling", "sibling", 0}}));
  EXPECT_EQ(stated_possessions("i have kids . I have some cats"), (Ps{{"child", "child", -1}, {"cat", "pet", -1}}));
  EXPECT_TRUE(stated_possessions("do you have a dog ?").empty()) << "a question claims nothing";
  EXPECT_TRUE(stated_possessions("i have read about dogs").empty());
  EXPECT_TRUE(stated_possessions("my sister has two dogs").empty()) << "only the speaker's own";
  EXPECT_TRUE(stated_possessions("i have a dog walking business").empty());
  EXPECT_TRUE(stated_possessions("i do not have a pet sitter").empty());
  EXPECT_TRUE(stated_possessions("i have a grand child about your age").empty());
}

TEST(ContextTest, ASaidPossessionContradictsTheFactsWhenCountsOrNoneDisagree) {
  const std::vector<Possession> facts = stated_possessions("i have two dogs .");
  auto contradicts_facts = [&](std::string_view reply) { return contradicts(stated_possessions(reply), facts); };
  EXPECT_TRUE(contradicts_facts("i have 3 dogs ."));
  EXPECT_TRUE(contradicts_facts("i do not have any pets"));
  EXPECT_TRUE(contradicts_facts("i don't have a dog"));
  EXPECT_FALSE(contradicts_facts("i have two dogs and i love them"));
  EXPECT_FALSE(contradicts_facts("i have dogs"));
  EXPECT_FALSE(contradicts_facts("i have a cat")) << "two dogs and a cat can both be true";
  EXPECT_FALSE(contradicts_facts("i don't have kids"));
  EXPECT_FALSE(contradicts_facts("do you have 3 dogs ?"));
  const std::vector<Possession> childless = stated_possessions("i do not have children .");
  EXPECT_TRUE(contradicts(stated_possessions("i have a son"), childless));
  EXPECT_TRUE(contradicts(stated_possessions("i have kids"), childless));
  EXPECT_FALSE(contradicts(stated_possessions("i have a sister"), childless));
  EXPECT_FALSE(contradicts({}, facts));
}

TEST(ContextTest, FavoritesAreReadFromStatementsWithTheirKind) {
  using Things = std::vector<std::string>;
  EXPECT_EQ(stated_favorites("i am great ! my favorite color is purple ."), (std::vector<Favorite>{{"color", Things{"purple"}}}));
  EXPECT_EQ(stated_favorites("dr pepper is my favorite drink , but i like beer"),
            (std::vector<Favorite>{{"drink", Things{"dr", "pepper"}}}));
  EXPECT_EQ(stated_favorites("my favourite type of food is probably pizza with pineapple"),
            (std::vector<Favorite>{{"food", Things{"pizza"}}}));
  EXPECT_EQ(stated_favorites("the sky is so pretty today . i love the color blue ."),
            (std::vector<Favorite>{{"color", Things{"blue"}}}));
  EXPECT_EQ(stated_favorites("i love bowling it and cooking are my favorite hobbies"),
            (std::vector<Favorite>{{"hobby", Things{"cooking"}}}));
  EXPECT_EQ(stated_favorites("my favorite baseball player is mike trout , but my favorite team is the nationals !"),
            (std::vector<Favorite>{{"baseball player", Things{"mike", "trout"}}, {"team", Things{"nationals"}}}));
  EXPECT_TRUE(stated_favorites("what is your favorite color ?").empty()) << "a question states nothing";
  EXPECT_TRUE(stated_favorites("burgers are my favorite .").empty()) << "without its kind";
  EXPECT_TRUE(stated_favorites("it is my favorite food").empty());
  EXPECT_TRUE(stated_favorites("my favorite is blue").empty());
  EXPECT_TRUE(stated_favorites("i love the color of orange !").empty());
  EXPECT_TRUE(stated_favorites("orange is my favorite one yeah").empty()) << "a kind too vague";
  EXPECT_TRUE(stated_favorites("my favorite color is the color of the eyes of my lover").empty());
  EXPECT_TRUE(stated_favorites("well my favorite time of year is coming up .").empty());

  const std::vector<Favorite> facts = stated_favorites("my favorite food is pizza . my favorite color is blue .");
  EXPECT_TRUE(contradicts(stated_favorites("i love the color red ."), facts));
  EXPECT_TRUE(contradicts(stated_favorites("tacos are my favorite food"), facts));
  EXPECT_FALSE(contradicts(stated_favorites("my favorite food is pepperoni pizza"), facts));
  EXPECT_FALSE(contradicts(stated_favorites("sky blue is my favourite colour"), facts));
  EXPECT_FALSE(contradicts(stated_favorites("my favorite band is queen"), facts)) << "nothing known about bands";
}

TEST(ContextTest, AReplyContradictsWhatTheSpeakerIsKnownToBe) {
  const SelfFacts emma{.name = "emma",
                       .occupation = "nurse",
                       .has = stated_possessions("i have two dogs ."),
                       .favorites = stated_favorites("my favorite food is pizza .")};
  EXPECT_TRUE(contradicts("hi , my name is walt .", emma));
  EXPECT_TRUE(contradicts("i am a teacher at a high school .", emma));
  EXPECT_TRUE(contradicts("i do not have any pets .", emma));
  EXPECT_TRUE(contradicts("tacos are my favorite food !", emma));
  EXPECT_FALSE(contradicts("my name is emma and i am a nurse .", emma));
  EXPECT_FALSE(contradicts("i have two dogs and my favorite food is pizza .", emma));
  EXPECT_FALSE(contradicts("my favorite color is green .", emma));
  EXPECT_FALSE(contradicts("my name is walt .", SelfFacts{})) << "nothing known, nothing contradicted";
}

TEST(ContextTest, AskedAboutReadsQuestionsAboutTheListenersNameJobAndFamily) {
  EXPECT_TRUE(asked_about("hi ! what is your name ?").name);
  EXPECT_TRUE(asked_about("what do you do for a living ?").occupation);
  EXPECT_TRUE(asked_about("cool . so what do you do").occupation);
  EXPECT_TRUE(asked_about("where do you work ?").occupation);
  EXPECT_FALSE(asked_about("what do you do for fun ?").occupation);
  EXPECT_FALSE(asked_about("do you work out ?").occupation);
  EXPECT_TRUE(asked_about("so what's your job ?").occupation);
  EXPECT_FALSE(asked_about("what's the most challenging part of your job ?").occupation);
  EXPECT_FALSE(asked_about("do you like your job ?").occupation);
  EXPECT_FALSE(asked_about("i do not like my job .").occupation) << "a statement asks nothing";
  EXPECT_EQ(asked_about("do you have any pets ?").kind, "pet");
  EXPECT_EQ(asked_about("how many kids do you have ?").kind, "child");
  EXPECT_EQ(asked_about("any siblings ?").kind, "sibling");
  EXPECT_EQ(asked_about("do you like dogs ?").kind, "") << "liking is not having";
  const AskedAbout nothing = asked_about("how are you ?");
  EXPECT_FALSE(nothing.name || nothing.occupation || !nothing.kind.empty());
  const std::vector<std::string> persona = {"i like tea .", "my name is emma .", "my name is ann ."};
  EXPECT_EQ(first_in(persona, self_given_name), "emma");
  EXPECT_EQ(first_in(persona, self_stated_occupation), "");
}

TEST(ContextTest, AQuestionTurnedBackAsksWhatTheSpeakerSaidOfThemselves) {
  EXPECT_TRUE(asked_about("my name is bob . what is yours ?").name);
  EXPECT_TRUE(asked_about("hi , i'm walt . and you ?").name);
  EXPECT_TRUE(asked_about("i am a teacher . what about you ?").occupation);
  EXPECT_TRUE(asked_about("i'm a student . i study languages , you ?").occupation);
  EXPECT_TRUE(asked_about("i am a high school student and you?").occupation);
  EXPECT_EQ(asked_about("i do have pets ! i have two dogs and four rabbits , and you ?").kind, "pet");
  EXPECT_EQ(asked_about("no , i don't , i have an older sister . how about you ?").kind, "sibling");
  EXPECT_EQ(asked_about("i like animals i have two cats how about you ?").kind, "pet");
  // Not turned back, or turned back on something else.
  const AskedAbout thanks = asked_about("i am a nurse . thank you ?");
  EXPECT_FALSE(thanks.occupation);
  EXPECT_FALSE(asked_about("i am a nurse . how are you ?").occupation);
  EXPECT_FALSE(asked_about("i am a nurse . i love pizza . do you ?").occupation);
  const AskedAbout food = asked_about("i love pizza , what about you ?");
  EXPECT_FALSE(food.name || food.occupation || !food.kind.empty());
  EXPECT_FALSE(asked_about("what about you ?").occupation) << "nothing said before it";
}

TEST(ContextTest, HowOneIsIsToldAndAskedInAFewSetPhrases) {
  for (const char* told : {"i'm good .", "i am doing great ! how about you ?", "hi , i'm fine thanks", "not bad",
                           "Yeah I'm really well and you?", "doing well", "i'm well about to go outside ."}) {
    EXPECT_TRUE(tells_how_one_is(told)) << told;
  }
  for (const char* other : {"i am good at math .", "i'm a nurse", "good idea !", "i'm going well past it", "",
                            "what ? i'm fine", "i'm well aware", "i am fine with it"}) {
    EXPECT_FALSE(tells_how_one_is(other)) << other;
  }
  for (const char* asks : {"hi ! how are you ?", "how's it going", "how was your day ?", "I'm doing well, thanks!",
                           "oh good , i was confused . i'm doing good , how about you ?", "are you okay ?"}) {
    EXPECT_TRUE(asks_how_one_is(asks)) << asks;
  }
  for (const char* other : {"how long have you lived there ?", "what do you like to do for fun ?", "hi"}) {
    EXPECT_FALSE(asks_how_one_is(other)) << other;
  }
  EXPECT_TRUE(asks_how_you_are("great and good morning how are you"));
  EXPECT_FALSE(asks_how_you_are("I'm doing well, thanks!")) << "tells, does not ask";
  EXPECT_FALSE(asks_how_you_are("how old are you ?"));
}

}  // namespace
}  // namespace selffeed

