// The operator's page: the alerts and the review queue of the answers users rated down,
// over the admin API of docs/protocol.md (the token stays in this tab's session storage).
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN = 'selffeed.adminToken';

async function admin(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: 'Bearer ' + sessionStorage.getItem(TOKEN), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(answer.message || `${method} ${path}: HTTP ${res.status}`);
  return answer;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function showAlerts() {
  const { alerts } = await admin('GET', '/admin/alerts');
  $('alerts').replaceChildren(...(alerts.length ? alerts : [{ alert: 'none', message: 'no alert fires' }]).map((a) => {
    const li = document.createElement('li');
    li.textContent = `${a.alert}${a.subject ? ' (' + a.subject + ')' : ''}: ${a.message}`;
    return li;
  }));
}

const share = (s) => `${s.value.toFixed(3)} (${s.count} of ${s.of})`;

async function showVersions() {
  const { versions } = await admin('GET', '/admin/models/report');
  $('versions').tBodies[0].replaceChildren(...versions.map((v) => {
    const row = document.createElement('tr');
    for (const text of [v.version, v.status || '–', String(v.conversations), String(v.answers), share(v.thumbs_down_per_answer),
      Object.entries(v.dislike_reasons).map(([why, n]) => `${why} ${n}`).join(', ') || '–',
      share(v.suggested_per_answer)]) {
      cell(row, text);
    }
    return row;
  }));
}

// Who the live version did not learn from, and why (the trust rule; README "Continual learning").
async function showTrust() {
  let report;
  try {
    report = await admin('GET', '/admin/trust');
  } catch (e) {
    $('trust-note').textContent = e.message;
    $('trust').hidden = true;
    return;
  }
  const untrusted = report.teachers.filter((t) => !t.trusted);
  $('trust-note').textContent = `${report.version} did not learn from ${untrusted.length} of the ` +
    `${report.teachers.length} users it read` + (report.feedback_judged_by ? `; their feedback judged by ` +
    `${report.feedback_judged_by}` : '; their feedback not judged') + '.';
  $('trust').hidden = untrusted.length === 0;
  const rank = (t) => (t.feedback_rank === null ? '–' : t.feedback_rank.toFixed(3));
  $('trust').tBodies[0].replaceChildren(...untrusted.map((t) => {
    const row = document.createElement('tr');
    for (const text of [t.teacher, String(t.replies), String(t.blocked_word), String(t.repeated), String(t.feedback),
      rank(t)]) {
      cell(row, text);
    }
    return row;
  }));
}

async function showDisliked() {
  const reason = $('reason').value;
  const { replies } = await admin('GET', '/admin/replies/disliked' + (reason ? '?reason=' + reason : ''));
  $('empty').hidden = replies.length > 0;
  $('disliked').tBodies[0].replaceChildren(...replies.map((r) => {
    const row = document.createElement('tr');
    row.className = r.withdrawn ? 'withdrawn' : '';
    cell(row, r.text).className = 'reply';
    cell(row, String(r.users));
    cell(row, String(r.thumbs_down));
    cell(row, Object.entries(r.reasons).map(([why, n]) => `${why} ${n}`).join(', ') || '–');
    const action = cell(row, '');
    if (r.from_pool) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = r.withdrawn ? 'Restore' : 'Withdraw';
      button.addEventListener('click', async () => {
        button.disabled = true;
        await admin('POST', r.withdrawn ? '/admin/replies/restore' : '/admin/replies/withdraw', { text: r.text });
        await showDisliked();
      });
      action.appendChild(button);
    } else {
      action.textContent = 'persona sentence';
    }
    return row;
  }));
}

async function open() {
  try {
    $('live').textContent = 'live ' + (await admin('GET', '/admin/stats')).live_model;
    await Promise.all([showAlerts(), showVersions(), showDisliked(), showTrust()]);
    $('login-error').textContent = '';
    $('login').hidden = true;
    $('console').hidden = false;
  } catch (e) {
    $('login-error').textContent = e.message;
  }
}

// A user's right to be forgotten: their conversations and examples go, and the models that
// learned from them are followed up (README "Continual learning").
$('delete-user').addEventListener('submit', async (event) => {
  event.preventDefault();
  const user = $('user-id').value.trim();
  if (!user || !window.confirm(`Delete everything of user ${user}?`)) return;
  try {
    const r = await admin('DELETE', '/admin/users/' + encodeURIComponent(user));
    $('deleted').textContent = `${r.user_id}: ${r.conversations} conversations, ${r.turns} turns and ` +
      `${r.examples} examples deleted` + (r.live_model_trained_on_them ? '; the live model learned from them' : '');
    await Promise.all([showVersions(), showDisliked()]);
  } catch (e) {
    $('deleted').textContent = e.message;
  }
});

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN, $('token').value);
  open();
});
for (const [reason, label] of DISLIKE_REASONS) $('reason').add(new Option(label, reason));
$('reason').addEventListener('change', showDisliked);
if (sessionStorage.getItem(TOKEN)) open();
