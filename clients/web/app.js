// The selffeed web client: plain JavaScript over the protocol in docs/protocol.md.
'use strict';

const STORAGE = { conversation: 'selffeed.conversation', user: 'selffeed.user' };
const $ = (id) => document.getElementById(id);
const log = $('log');
const input = $('input');
const learnBox = $('learn');

const state = {
  ws: null,
  nextId: 1,
  retryMs: 500,
  pendingUser: new Map(),  // request id -> the user's bubble waiting for its reply
  pendingRate: new Map(),  // request id -> the rating element
  pendingSuggest: new Map(),  // request id -> the suggestion form
  phase: 'normal',
  deletedNotice: null,  // said in the welcome of the conversation that follows a deletion
};

function userId() {
  let id = localStorage.getItem(STORAGE.user);
  if (!id) {
    id = 'web-' + Math.random().toString(36).slice(2, 10);
    localStorage.setItem(STORAGE.user, id);
  }
  return id;
}

function setStatus(kind, text) {
  const el = $('status');
  el.className = 'status ' + kind;
  el.dataset.state = kind;
  el.textContent = text;
}

function scrollDown() { log.scrollTop = log.scrollHeight; }

function addItem(className, text) {
  const li = document.createElement('li');
  li.className = className;
  li.textContent = text;
  log.appendChild(li);
  scrollDown();
  return li;
}

function addSystem(text) { return addItem('msg system', text); }

function addUser(text, turn) {
  const li = addItem('msg user', text);
  if (turn !== undefined) li.dataset.turn = turn;
  return li;
}

function addBadge(li, text) {
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.textContent = text;
  li.appendChild(badge);
}

function addBot(text, turn, kind) {
  const li = document.createElement('li');
  li.className = 'msg bot ' + (kind || 'answer');
  li.dataset.turn = turn;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.appendChild(body);
  const rating = document.createElement('div');
  rating.className = 'rating';
  for (const [value, label, title] of [['up', '▲ good', 'good answer'], ['down', '▼ bad', 'bad answer']]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'rate-' + value;
    b.textContent = label;
    b.title = title;
    b.setAttribute('aria-label', title);
    b.addEventListener('click', () => rate(turn, value, rating));
    rating.appendChild(b);
  }
  li.appendChild(rating);
  log.appendChild(li);
  scrollDown();
  return li;
}

function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    addSystem('Not connected yet; try again in a moment.');
    return null;
  }
  const id = String(state.nextId++);
  state.ws.send(JSON.stringify({ ...message, id }));
  return id;
}

function showRated(ratingEl, value, reason) {
  const note = document.createElement('span');
  note.className = 'rated';
  note.textContent = (value === 'up' ? '▲ good' : '▼ bad') +
    (reason ? ` (${DISLIKE_REASONS.get(reason) || reason})` : '') + ' — rating stored';
  ratingEl.replaceChildren(note);
  if (value === 'down' && !reason) offerReasons(ratingEl);
}

// After a thumbs down: why, in one click (a rate again, down, with its reason).
function offerReasons(ratingEl) {
  const turn = Number(ratingEl.closest('li').dataset.turn);
  const reasons = document.createElement('span');
  reasons.className = 'reasons';
  reasons.append('Why?');
  for (const [reason, label] of DISLIKE_REASONS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'reason';
    b.dataset.reason = reason;
    b.textContent = label;
    b.addEventListener('click', () => rate(turn, 'down', ratingEl, reason));
    reasons.appendChild(b);
  }
  ratingEl.appendChild(reasons);
}

// After a thumbs down on an answer: a line to say what the bot could have said instead (a
// suggest message, kept as an FB example like an answer to a feedback request). Not where
// the bot has asked that already (its feedback request two turns on).
function offerSuggestion(li) {
  if (!li.classList.contains('answer') || li.querySelector('.suggest')) return;
  const asked = log.querySelector(`li.msg.bot.feedback_request[data-turn="${Number(li.dataset.turn) + 2}"]`);
  if (asked) return;
  const form = document.createElement('form');
  form.className = 'suggest';
  const field = document.createElement('input');
  field.type = 'text';
  field.maxLength = input.maxLength;  // the composer's, the server's --max-text-bytes default
  field.placeholder = 'What could the bot have said instead?';
  field.setAttribute('aria-label', 'what the bot could have said instead');
  const button = document.createElement('button');
  button.type = 'submit';
  button.textContent = 'Teach';
  form.append(field, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = field.value.trim();
    if (!text) return;
    const id = send({ type: 'suggest', turn: Number(li.dataset.turn), text });
    if (id === null) return;
    field.disabled = button.disabled = true;
    state.pendingSuggest.set(id, form);
  });
  li.appendChild(form);
}

function showSuggestion(li, text) {
  li.querySelector('.suggest')?.remove();
  const note = document.createElement('div');
  note.className = 'suggestion';
  note.textContent = 'You suggested: ' + text;
  li.appendChild(note);
}

function onSuggested(m) {
  const form = state.pendingSuggest.get(m.id);
  state.pendingSuggest.delete(m.id);
  if (!form) return;
  showSuggestion(form.closest('li'), form.querySelector('input').value.trim());
  refreshStats();
}

function rate(turn, value, ratingEl, reason) {
  const id = send(reason ? { type: 'rate', turn, value, reason } : { type: 'rate', turn, value });
  if (id === null) return;
  for (const b of ratingEl.querySelectorAll('button')) b.disabled = true;
  state.pendingRate.set(id, ratingEl);
}

function setPhase(phase) {
  state.phase = phase;
  const feedback = phase === 'feedback_requested';
  $('composer').classList.toggle('feedback', feedback);
  input.placeholder = feedback ? 'What should the bot have said?'
    : phase === 'newtopic_requested' ? 'Pick a new topic…' : 'Say something…';
}

// Whether this conversation teaches the bot (the server keeps the choice with it).
function setLearn(learn) {
  learnBox.checked = learn;
  log.classList.toggle('not-learning', !learn);
}

function onWelcome(m) {
  localStorage.setItem(STORAGE.conversation, m.conversation_id);
  $('model').textContent = 'model ' + m.model_version;
  log.replaceChildren();
  for (const t of m.turns) {
    if (t.speaker === 'bot') {
      const li = addBot(t.text, t.turn, t.kind);
      if (t.rating) showRated(li.querySelector('.rating'), t.rating, t.reason);  // rated before, on any device
      if (t.suggestion) showSuggestion(li, t.suggestion);
    } else {
      addUser(t.text, t.turn);
    }
  }
  // Once every turn is there: a rating the bot asked for and the user has not given is
  // asked for again, and an answer rated down is offered a suggestion (offerSuggestion
  // reads the turns after it).
  for (const t of m.turns) {
    if (t.rating_request !== undefined) askToRate(t.rating_request);
    if (t.speaker === 'bot' && t.rating === 'down' && !t.suggestion) {
      offerSuggestion(log.querySelector(`li.msg.bot[data-turn="${t.turn}"]`));
    }
  }
  if (state.deletedNotice) addSystem(state.deletedNotice);
  state.deletedNotice = null;
  if (m.resumed) addSystem(`Conversation resumed (${m.turns.length} turns).`);
  else addSystem('New conversation. Say hello!');
  if (m.learn === false) addSystem('This conversation does not teach the bot: nothing you say here is kept for training.');
  log.dataset.conversation = m.conversation_id;
  setLearn(m.learn !== false);
  setPhase(m.phase);
  showPersona(m.persona || []);
}

// The facts the bot's answers lean on (serve --persona, or the hello's).
function showPersona(persona) {
  $('persona').replaceChildren(...persona.map((sentence) => {
    const li = document.createElement('li');
    li.textContent = sentence;
    return li;
  }));
  $('about-bot').hidden = persona.length === 0;
}

function onReply(m) {
  const userLi = state.pendingUser.get(m.id);
  state.pendingUser.delete(m.id);
  if (userLi) {
    userLi.dataset.turn = m.user_turn;
    for (const kind of m.harvested) {
      addBadge(userLi, kind === 'FB' ? '✓ kept as a feedback example' : '✓ kept as a dialogue example');
      userLi.classList.add('harvested-' + kind);
    }
  }
  addBot(m.text, m.turn, m.kind);
  if (m.rating_request !== null && m.rating_request !== undefined) askToRate(m.rating_request);
  $('model').textContent = 'model ' + m.model_version;
  setPhase(m.kind === 'feedback_request' ? 'feedback_requested'
    : m.kind === 'thanks_new_topic' ? 'newtopic_requested' : 'normal');
  refreshStats();
}

// The server asks how this answer was (a reply's rating_request, drawn at random): the
// rating buttons under it ask for a thumbs.
function askToRate(turn) {
  const ratingEl = log.querySelector(`li.msg.bot[data-turn="${turn}"] .rating`);
  if (!ratingEl || !ratingEl.querySelector('.rate-up:not(:disabled)')) return;
  ratingEl.classList.add('requested');
  const question = document.createElement('span');
  question.className = 'rating-question';
  question.textContent = 'Was this a good answer? Your rating teaches the bot.';
  ratingEl.prepend(question);
}

function onRated(m) {
  const ratingEl = state.pendingRate.get(m.id);
  state.pendingRate.delete(m.id);
  if (!ratingEl) return;
  showRated(ratingEl, m.value, m.reason);
  if (m.value === 'down') offerSuggestion(ratingEl.closest('li'));
  refreshStats();
}

// The server forgot the conversation and what it had kept of it; a fresh one starts.
function onConversationDeleted(m) {
  localStorage.removeItem(STORAGE.conversation);
  send({ type: 'hello', user_id: userId(), learn: learnBox.checked });
  state.deletedNotice = `Conversation deleted: ${m.turns} turns and ${m.examples} training examples are gone.`;
  refreshStats();
}

function onError(m) {
  const userLi = state.pendingUser.get(m.id);
  if (userLi) {
    state.pendingUser.delete(m.id);
    userLi.remove();
    input.value = input.value || userLi.textContent;
  }
  const ratingEl = state.pendingRate.get(m.id);
  if (ratingEl) {
    state.pendingRate.delete(m.id);
    for (const b of ratingEl.querySelectorAll('button')) b.disabled = false;
  }
  const suggestForm = state.pendingSuggest.get(m.id);
  if (suggestForm) {
    state.pendingSuggest.delete(m.id);
    for (const e of suggestForm.elements) e.disabled = false;
  }
  addSystem(`Error (${m.code}): ${m.message}`);
}

function connect() {
  setStatus(state.ws ? 'reconnecting' : 'connecting', 'connecting…');
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  state.ws = ws;
  ws.onopen = () => {
    state.retryMs = 500;
    setStatus('connected', 'connected');
    const hello = { type: 'hello', user_id: userId() };
    const conversation = localStorage.getItem(STORAGE.conversation);
    if (conversation) hello.conversation_id = conversation;  // it keeps its own choice
    else hello.learn = learnBox.checked;
    send(hello);
  };
  ws.onmessage = (event) => {
    let m;
    try { m = JSON.parse(event.data); } catch { return; }
    switch (m.type) {
      case 'welcome': onWelcome(m); break;
      case 'reply': onReply(m); break;
      case 'rated': onRated(m); break;
      case 'suggested': onSuggested(m); break;
      case 'conversation_deleted': onConversationDeleted(m); break;
      case 'reset_done': setPhase('normal'); addSystem('New topic.'); break;
      case 'error': onError(m); break;
    }
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    // Messages in flight got no reply: nothing was stored for them; put the text back.
    for (const li of state.pendingUser.values()) { input.value = input.value || li.textContent; li.remove(); }
    state.pendingUser.clear();
    const seconds = Math.round(state.retryMs / 100) / 10;
    setStatus('reconnecting', `disconnected — retrying in ${seconds}s`);
    setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 5000);
  };
}

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  const id = send({ type: 'message', text });
  if (id === null) return;
  state.pendingUser.set(id, addUser(text));
  input.value = '';
});

$('new-topic').addEventListener('click', () => send({ type: 'reset' }));
$('new-conversation').addEventListener('click', () => {
  localStorage.removeItem(STORAGE.conversation);
  send({ type: 'hello', user_id: userId(), learn: learnBox.checked });
});
$('delete-conversation').addEventListener('click', () => {
  if (window.confirm('Delete this conversation? What the bot kept of it goes too.')) {
    send({ type: 'delete_conversation' });
  }
});
learnBox.addEventListener('change', () => {
  const hello = { type: 'hello', user_id: userId(), learn: learnBox.checked };
  const conversation = localStorage.getItem(STORAGE.conversation);
  if (conversation) hello.conversation_id = conversation;
  if (send(hello) === null) learnBox.checked = !learnBox.checked;
});

async function refreshStats() {
  try {
    const stats = await (await fetch('/stats')).json();
    $('count-hb').textContent = stats.harvested.HB;
    $('count-fb').textContent = stats.harvested.FB;
    $('count-st').textContent = stats.harvested.ST;
  } catch { /* the status badge already says when the server is away */ }
}

function hitsAt1(metrics) {
  if (!metrics) return null;
  for (const key of ['personachat_hits@1', 'hits@1', 'valid_hits@1']) {
    if (typeof metrics[key] === 'number') return metrics[key];
  }
  return null;
}

function drawChart(models) {
  const svg = $('chart');
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const points = models.map((m, i) => ({ i, v: hitsAt1(m.metrics), label: m.version })).filter((p) => p.v !== null);
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  el('text', { x: 4, y: 10 }, 'hits@1');
  if (points.length === 0) { el('text', { x: 100, y: 65 }, 'no evaluated model yet'); return; }
  const x = (i) => 30 + (points.length === 1 ? 120 : (i * 250) / (points.length - 1));
  const y = (v) => 105 - v * 90;
  el('line', { x1: 28, y1: 105, x2: 295, y2: 105, stroke: '#ccc' });
  el('polyline', { points: points.map((p, k) => `${x(k)},${y(p.v)}`).join(' '), fill: 'none', stroke: '#2f6fed', 'stroke-width': 2 });
  points.forEach((p, k) => {
    el('circle', { cx: x(k), cy: y(p.v), r: 3, fill: '#2f6fed' });
    el('text', { x: x(k) - 10, y: y(p.v) - 6 }, p.v.toFixed(3));
    el('text', { x: x(k) - 10, y: 116 }, p.label);
  });
}

async function refreshModels() {
  try {
    const data = await (await fetch('/models')).json();
    drawChart(data.models);
    const body = $('models').querySelector('tbody');
    body.replaceChildren();
    for (const m of data.models) {
      const tr = document.createElement('tr');
      const h = hitsAt1(m.metrics);
      const trained = (m.data || []).map((d) => `${d.name} ${d.examples}`).join(', ');
      // Deleted users' data lives on in its weights: retraining replaces it (docs/protocol.md).
      const status = m.learned_from_deleted_users ? `${m.status}, learned from deleted users` : m.status;
      for (const cell of [m.version, status, h === null ? '–' : h.toFixed(3), trained || '–']) {
        const td = document.createElement('td');
        td.textContent = cell;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  } catch { /* retried on the next tick */ }
}

connect();
refreshStats();
refreshModels();
setInterval(refreshStats, 5000);
setInterval(refreshModels, 30000);
