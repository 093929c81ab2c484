// The user simulator: chats with a running server over WebSocket the way a person would,
// by replaying human (or human-like) dialogues. It never sees the model, only replies.
//
// The rule, per user line: the simulated user says line 2k of a dialogue; the partner's
// original answer (line 2k+1) is the reference. The bot's reply is judged poor when its
// token F1 against the reference is below `poor_reply_f1`; then the user reacts with a
// real dissatisfied reaction (taken from low-rated ConvAI2 turns) instead of going on.
// Whenever the bot asks for feedback, the user answers with the reference of the line the
// bot answered badly, i.e. what the original partner said, and then goes on with the
// dialogue. Thumbs: a poor reply also gets a thumbs-down with probability `thumbs_rate`,
// any other answer a thumbs-up with probability `thumbs_up_rate`; when the server asks to
// rate an answer (a reply's rating_request), the user rates it by the same rule, always;
// the bot's answer to a complaint is judged against the reference of the line it fumbled.
// After a thumbs-down of its own the user may also say what the bot could have said
// instead (`suggest_rate`): the reference. A thumbs-down may say why (`reason_rate`), by what
// the user can see: "repetitive" when the answer repeats one the bot gave before in the
// conversation or asks again a question it asked, else "off_topic" (it is far from what
// the partner said); never "inappropriate" or "nonsensical", which no rule here can tell.
// A troll (`troll_user_ids`) plays the same dialogues but teaches junk: it answers every
// feedback request, and suggests, with a line of another dialogue drawn at random.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "selffeed/common/status.h"

namespace selffeed::clients {

struct SimulatedDialogue {
  std::vector<std::string> lines;  // alternating: the simulated user first, then the partner
  std::vector<std::string> partner_persona;  // the persona of the speaker the bot stands in for
};

struct SimulatorOptions {
  std::string url;
  std::vector<SimulatedDialogue> dialogues;  // used in order, wrapping around
  std::vector<std::string> complaints;       // dissatisfied reactions
  int conversations = 100;
  std::size_t first_dialogue = 0;   // offset into `dialogues` (rounds use disjoint slices)
  int max_user_lines = 6;           // per conversation
  double poor_reply_f1 = 0.1;
  double thumbs_rate = 0.2;
  double thumbs_up_rate = 0;  // 0: no thumbs up, and the draws of a run are those of before
  // Share of its own thumbs-downs after which the user also says what the bot could have
  // said (a suggest of the reference); 0: none, and the draws are those of before.
  double suggest_rate = 0;
  // Share of the thumbs-downs (its own and those asked for) given with a reason; 0: none,
  // and the draws are those of before.
  double reason_rate = 0;
  int users = 4;                    // concurrent simulated users
  int user_ids = 0;                 // conversations spread over this many user ids; 0: 4 per concurrent user
  // The first this many of those user ids are trolls, named "<user_prefix>-troll-<n>" so
  // that what is done with their examples can be counted; 0: none, and the draws are
  // those of before.
  int troll_user_ids = 0;
  std::uint64_t seed = 1;
  std::string user_prefix = "sim";
  // Names the conversation of dialogue n "<conversation_prefix>-n", so that the same run
  // against a fresh store harvests the same conversations (retraining draws the gate's FB
  // by conversation id); empty: the server names each one. A prefix used before on the
  // same store resumes those conversations.
  std::string conversation_prefix;
  // Give the bot each dialogue's partner_persona in hello, as PersonaChat's speakers had
  // theirs; false: the server's own persona.
  bool partner_persona = false;
};

struct SimulationReport {
  int conversations = 0;
  int user_messages = 0;
  int poor_replies = 0;
  int answers = 0;           // replies judged: answers to the user's lines
  int repeated_answers = 0;  // answers the bot had already given in the same conversation
  // Answers that ask a question (same words) the bot had already asked in the conversation,
  // whatever else they say: "i'm a nurse . what do you do ?" after "hi ! what do you do ?".
  int repeated_questions = 0;
  // Answers after the bot's first that open with a greeting ("hi there !") to a line that
  // did not greet.
  int greetings_mid_conversation = 0;
  // Answers in which the bot gives itself a name other than the first it gave.
  int renamed_bot = 0;
  // Answers in which the bot gives itself an occupation other than the first it gave in
  // the conversation (self_stated_occupation).
  int changed_occupation = 0;
  int complaints = 0;
  int feedback_requests = 0;
  int thumbs_down = 0;
  int thumbs_up = 0;
  int rating_requests = 0;  // answers the server asked to rate (each rated, down when poor)
  int suggestions = 0;      // what the bot could have said, kept by the server
  int junk_taught = 0;      // trolls' feedback answers and suggestions: another dialogue's line
  int repetitive_reasons = 0;  // thumbs-downs given with the reason "repetitive"
  int off_topic_reasons = 0;   // and "off_topic"
  int harvested_hb = 0;  // as the server's replies reported
  int harvested_fb = 0;
  int rate_limited = 0;  // messages the server dropped for its rate limit (sent again)
  int errors = 0;        // conversations cut short: no connection, or no reply in time
  double mean_reply_f1 = 0;
};

// kInvalidArgument without dialogues or complaints; kUnavailable when the server is down.
Result<SimulationReport> run_simulation(const SimulatorOptions& options);

}  // namespace selffeed::clients
