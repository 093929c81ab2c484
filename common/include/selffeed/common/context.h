// The self-feeding context format, identical in training, evaluation and serving:
// the last `history_size` utterances, tagged relative to the responder. The utterance
// right before the reply is always __p1__ (the partner), and tags alternate backwards,
// so __p2__ marks the responder's own earlier turn. "__null__" when nothing came before.
//
//   format_context({"do you like dogs?", "yes! i have two."})
//     == "__p2__ do you like dogs? __p1__ yes! i have two."
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace selffeed {

inline constexpr std::string_view kPartnerTag = "__p1__";
inline constexpr std::string_view kSelfTag = "__p2__";
inline constexpr std::string_view kNullContext = "__null__";
// The paper's (and ParlAI's) default: every task sees the last two utterances.
inline constexpr std::size_t kDefaultHistorySize = 2;

// `history` runs oldest to newest; its last element is the partner's latest utterance.
std::string format_context(std::span<const std::string> history, std::size_t history_size = kDefaultHistorySize);

// The utterances of a formatted context, oldest first, without tags ({} for __null__).
std::vector<std::string> split_context(std::string_view context);

// The sentences of an utterance, trimmed, each with its closing marks ('.', '!', '?');
// a question is one whose marks include a '?'.
//   sentences_of("cool ! what do you do ? i teach") ==
//       {{"cool !", false}, {"what do you do ?", true}, {"i teach", false}}
struct Sentence {
  std::string_view text;
  bool question = false;
  friend bool operator==(const Sentence&, const Sentence&) = default;
};
std::vector<Sentence> sentences_of(std::string_view utterance);
// The texts of its questions: questions_in("cool ! what do you do ?") == {"what do you do ?"}
std::vector<std::string_view> questions_in(std::string_view utterance);
// What a question asks, from where it opens as a question: "oh cool , what do you do for
// work ?" -> "what do you do for work ?", "i am doing fine , how are you ?" -> "how are you
// ?". The whole question when nothing inside opens one ("really ?"), or when it is turned
// back ("i love pizza , what about you ?" asks about pizza, not what "what about you ?" did).
std::string_view question_clause(std::string_view question);
// Whether a sentence says nothing: only interjections and acknowledgements ("nice .",
// "lol", "hahaha !", "oh wow", "i bet .", "same here"). Not "yes" or "no": those answer.
bool is_filler(std::string_view sentence);

// Its words, lower-cased: runs of letters, digits, apostrophes and UTF-8 bytes.
//   lower_words("Hi, I'm Ann!") == {"hi", "i'm", "ann"}
std::vector<std::string> lower_words(std::string_view text);
// Token F1 between a reply and a reference, over lower_words(), as ParlAI scores
// generated and retrieved replies; 0 when either has no word.
double token_f1(std::string_view prediction, std::string_view reference);
// Whether it opens with a greeting, in any case: "Hi!", "hello there", "hey , want to ...",
// "good morning". Not "history" or "heyday".
bool opens_with_greeting(std::string_view utterance);
// The name a speaker gives themselves, lower-cased: "hi ! my name is Kellie ." -> "kellie";
// "my names tom" -> "tom"; after a greeting, "hi , i'm walt ." -> "walt" (but "hi , i'm good
// ." names no one). Empty when there is none ("my dogs name is rex" names the dog).
std::string self_given_name(std::string_view utterance);
// The occupation a speaker says they have, from a short built-in list of common ones:
// "i am a nurse at a children's hospital ." -> "nurse", "i'm a retired school teacher" ->
// "teacher", "i work as an accountant" -> "accountant". Empty when there is none ("i am a
// big fan of jazz", "my mom is a nurse").
std::string self_stated_occupation(std::string_view utterance);

// What a speaker says they have, among pets, children and siblings: "i have two dogs ." ->
// {dog, pet, 2}; "i do not have any pets" -> {pet, pet, 0}; "i have kids" -> {child, child,
// -1}. Statements only, not questions ("do you have a dog ?").
struct Possession {
  std::string thing;  // singular: "dog", "son"; or a kind itself: "pet", "child", "sibling"
  std::string kind;   // "pet", "child" or "sibling"
  int count = -1;     // 0: none; -1: some, not counted
  friend bool operator==(const Possession&, const Possession&) = default;
};
std::vector<Possession> stated_possessions(std::string_view utterance);
// Those of several utterances, in order: what a persona's sentences give.
std::vector<Possession> stated_possessions(std::span<const std::string> utterances);
// Whether what was `said` contradicts `facts`: another count of the same thing ("3 dogs"
// against two), none of what the facts have ("i do not have pets" from a speaker with two
// dogs), or some of what they have none of.
bool contradicts(std::span<const Possession> said, std::span<const Possession> facts);

// The favorites a speaker states: "my favorite color is blue ." -> {color, {blue}}; "dr
// pepper is my favorite drink" -> {drink, {dr, pepper}}; "my favourite type of food is
// probably pizza" -> {food, {pizza}}; "i love the color red" -> {color, {red}}. Statements
// only; a favorite without its kind ("burgers are my favorite") is not read.
struct Favorite {
  std::string what;                // singular, lower-cased: "color", "food", "tv show"
  std::vector<std::string> thing;  // its words, without articles or hedges ("probably")
  friend bool operator==(const Favorite&, const Favorite&) = default;
};
std::vector<Favorite> stated_favorites(std::string_view utterance);
// Those of several utterances, in order.
std::vector<Favorite> stated_favorites(std::span<const std::string> utterances);
// Whether what was `said` gives a favorite of `facts` another thing: no word in common
// ("my favorite color is red" against blue; not "pepperoni pizza" against pizza).
bool contradicts(std::span<const Favorite> said, std::span<const Favorite> facts);

// Whether an utterance opens by saying how the speaker is: "i'm good .", "i am doing great
// ! how about you ?", "not bad". Not "i am good at math".
bool tells_how_one_is(std::string_view utterance);
// Whether it asks how the listener is: "how are you ?", "how's it going", "how was your day
// ?", "are you okay".
bool asks_how_you_are(std::string_view utterance);
// Whether it asks how the listener is, or says how the speaker is, to which the same fits
// back.
bool asks_how_one_is(std::string_view utterance);

// What an utterance's questions ask the listener about themselves: their name ("what is
// your name ?"), their occupation ("what do you do for a living ?", "so what do you do"), or
// whether they have pets, children or siblings ("do you have any pets ?" -> kind "pet").
// A question turned back on the listener asks what the speaker has just said of
// themselves: "i am a teacher . what about you ?" the occupation, "i have a cat , you ?"
// pets, "my name is bob . what is yours ?" the name.
struct AskedAbout {
  bool name = false;
  bool occupation = false;
  std::string kind;  // "pet", "child", "sibling" or empty
};
AskedAbout asked_about(std::string_view utterance);

// The first thing `find` finds in `sentences`, in order: the name a persona gives
// (first_in(persona, self_given_name)), or empty.
std::string first_in(std::span<const std::string> sentences, std::string (*find)(std::string_view));

// What a speaker is known to be: name, occupation, pets and family, favorites; empty where
// unknown.
struct SelfFacts {
  std::string name;
  std::string occupation;
  std::vector<Possession> has;
  std::vector<Favorite> favorites;
};
// Whether `reply` breaks what `self` is known to be: another name or occupation, pets or
// family it does not have (contradicts()), another favorite of a kind it has one of.
bool contradicts(std::string_view reply, const SelfFacts& self);
// Whether `self` knows an answer to something `asked` asks.
bool knows_answer(const AskedAbout& asked, const SelfFacts& self);
// Whether `reply` leaves out an answer that `asked` asks for and `self` knows: the name,
// the occupation (self_stated_occupation), or, for pets or family, any of that kind
// (stated_possessions). "what is yours ?" to "what is your name ?" from Emma.
bool leaves_out_answer(std::string_view reply, const AskedAbout& asked, const SelfFacts& self);

}  // namespace selffeed
