// Why an answer was bad (rate's reason, BlenderBot 3's dislike types): the protocol's names
// and what the pages call them. Shared by the chat (app.js) and the operator's page.
'use strict';

const DISLIKE_REASONS = new Map([
  ['off_topic', 'off topic'], ['nonsensical', 'makes no sense'], ['repetitive', 'repeats itself'],
  ['inappropriate', 'rude'], ['other', 'other'],
]);
