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
    await Promise.all([showAlerts(), showDisliked()]);
    $('login-error').textContent = '';
    $('login').hidden = true;
    $('console').hidden = false;
  } catch (e) {
    $('login-error').textContent = e.message;
  }
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN, $('token').value);
  open();
});
for (const [reason, label] of DISLIKE_REASONS) $('reason').add(new Option(label, reason));
$('reason').addEventListener('change', showDisliked);
if (sessionStorage.getItem(TOKEN)) open();
