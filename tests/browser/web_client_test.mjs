// Drives the web client (clients/web) in headless Chromium against a real `selffeed serve`
// on 127.0.0.1: chat, thumbs-down (acknowledged in the page and stored), a feedback request
// answered, a reload that resumes the conversation, a server restart the page survives, the
// "learn from this chat" switch turned off, the bot's persona, a phone-sized screen, and the
// operator's page withdrawing an answer a user reported as rude.
// Screenshots go to the artifact directory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const [selffeed, bundle, webRoot, work, artifacts] = process.argv.slice(2);
const token = 'browser-test-token';
const portFile = `${work}/port`;
const personaFile = `${work}/persona.txt`;
writeFileSync(personaFile, 'my name is toy .\ni have a red car .\n');

async function startServer(port) {
  rmSync(portFile, { force: true });
  const proc = spawn(selffeed, ['--log-level', 'info', '--log-file', `${work}/serve.log`, 'serve',
    '--bundle', bundle, '--store', `${work}/store`, '--port', String(port), '--port-file', portFile,
    '--satisfaction', 'regex', '--rating-request-share', '1', '--web-root', webRoot, '--admin-token', token, '--persona', personaFile],
  { stdio: 'ignore' });
  for (let i = 0; i < 300; i++) {
    if (existsSync(portFile)) return { proc, port: Number(readFileSync(portFile, 'utf8')) };
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error('selffeed serve did not start; see serve.log');
}

async function stopServer(server) {
  const exited = new Promise((resolve) => server.proc.once('exit', resolve));
  server.proc.kill('SIGTERM');
  await Promise.race([exited, sleep(20000)]);
}

async function exportExamples(port, kind) {
  const res = await fetch(`http://127.0.0.1:${port}/admin/export?kind=${kind}`,
    { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return (await res.text()).split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

async function say(page, text, botCount) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');  // Enter sends
  await page.waitForFunction((n) => document.querySelectorAll('.msg.bot').length >= n, botCount);
}

let server = await startServer(0);
const url = `http://127.0.0.1:${server.port}/`;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => { throw e; });
  await page.goto(url);
  await page.waitForSelector('#status[data-state="connected"]');
  await page.waitForSelector('.msg.system');
  assert.match(await page.textContent('#model'), /toy-v1/);
  // The server's persona (serve --persona) is shown beside the chat.
  assert.ok(await page.isVisible('#about-bot'));
  assert.deepEqual(await page.$$eval('#persona li', (items) => items.map((li) => li.textContent)),
    ['my name is toy .', 'i have a red car .']);

  // Two messages: both answered; the second is kept as a dialogue (HB) example, and the bot
  // asks for a rating of the answer it replied to (serve --rating-request-share 1).
  await say(page, 'hello ! what colour is your car ?', 1);
  await say(page, 'nice . where is your boat ?', 2);
  await page.waitForSelector('.msg.user.harvested-HB');
  await page.waitForSelector('.msg.bot[data-turn="1"] .rating.requested .rating-question');
  assert.equal(await page.$('.msg.bot[data-turn="3"] .rating.requested'), null);
  // Not rated yet: a reloaded page asks again.
  await page.reload();
  await page.waitForSelector('#status[data-state="connected"]');
  await page.waitForSelector('.msg.bot[data-turn="1"] .rating.requested .rating-question');

  // Thumbs down on the first bot reply: acknowledged in the page, and stored as ST "0".
  await page.click('.msg.bot[data-turn="1"] .rate-down');
  await page.waitForSelector('.msg.bot[data-turn="1"] .rated');
  assert.match(await page.textContent('.msg.bot[data-turn="1"] .rated'), /stored/);
  const st = await exportExamples(server.port, 'ST');
  assert.equal(st.length, 1);
  assert.equal(st[0].response, '0');
  assert.equal(st[0].turn_index, 1);
  // It asks why, in one click: the rating again, with its reason.
  await page.click('.msg.bot[data-turn="1"] .reasons button[data-reason="repetitive"]');
  await page.waitForFunction(
    () => /repeats itself/.test(document.querySelector('.msg.bot[data-turn="1"] .rated').textContent));
  assert.equal(await page.$('.msg.bot[data-turn="1"] .reasons'), null);
  assert.equal((await exportExamples(server.port, 'ST')).length, 2);
  // The thumbs down offers to say what the bot could have said instead: an FB example.
  await page.fill('.msg.bot[data-turn="1"] .suggest input', 'my car is red .');
  await page.click('.msg.bot[data-turn="1"] .suggest button');
  await page.waitForSelector('.msg.bot[data-turn="1"] .suggestion');
  await page.screenshot({ path: `${artifacts}/suggestion.png` });
  const suggested = await exportExamples(server.port, 'FB');
  assert.equal(suggested.length, 1);
  assert.equal(suggested[0].response, 'my car is red .');
  assert.equal(suggested[0].source, 'suggestion');
  assert.equal(suggested[0].turn_index, 1);

  // A complaint: the feedback request stands out; the answer is kept as FB.
  await say(page, 'what ? you are not making any sense', 3);
  await page.waitForSelector('.msg.bot.feedback_request');
  assert.ok(await page.$('#composer.feedback'), 'the input asks for feedback');
  await page.screenshot({ path: `${artifacts}/feedback-request.png` });
  await say(page, 'you could have said my boat is in the lake .', 4);
  await page.waitForSelector('.msg.user.harvested-FB .badge');
  await page.waitForSelector('.msg.bot.thanks_new_topic');
  const fb = await exportExamples(server.port, 'FB');
  assert.equal(fb.length, 2);
  assert.equal(fb[1].response, 'you could have said my boat is in the lake .');
  await page.waitForFunction(() => document.getElementById('count-fb').textContent === '2');
  // A thumbs down on the answer the bot asked about already offers no suggestion: the user
  // has said what it should have been.
  await page.click('.msg.bot[data-turn="3"] .rate-down');
  await page.waitForSelector('.msg.bot[data-turn="3"] .rated');
  assert.equal(await page.$('.msg.bot[data-turn="3"] .suggest'), null);
  await page.screenshot({ path: `${artifacts}/chat.png` });

  // Reload: the conversation resumes from local storage.
  const conversation = await page.evaluate(() => localStorage.getItem('selffeed.conversation'));
  assert.ok(conversation);
  await page.reload();
  await page.waitForSelector('#status[data-state="connected"]');
  await page.waitForFunction(() => document.querySelectorAll('.msg.user').length === 4);
  assert.equal(await page.getAttribute('#log', 'data-conversation'), conversation);
  assert.ok(await page.$('.msg.bot.feedback_request'), 'the resumed feedback request still stands out');
  await page.screenshot({ path: `${artifacts}/resumed.png` });
  // The rated answer shows as rated, and is not asked about again: the server remembers it,
  // so another browser of the same user (a fresh context given only the two ids) shows it too.
  await page.waitForSelector('.msg.bot[data-turn="1"] .rated');
  assert.equal(await page.$('.rating-question'), null);
  await page.waitForSelector('.msg.bot[data-turn="3"] .rated');
  assert.equal(await page.$('.msg.bot .suggest'), null, 'answers suggested for or asked about offer no suggestion');
  assert.match(await page.textContent('.msg.bot[data-turn="1"] .rated'), /repeats itself/);
  assert.equal(await page.$('.msg.bot[data-turn="1"] .reasons'), null);
  assert.ok(await page.$('.msg.bot[data-turn="3"] .reasons'),
    'an answer rated down without a reason is still asked why');
  const ids = await page.evaluate(() => ({ ...localStorage }));
  const other = await browser.newContext();
  await other.addInitScript((saved) => {
    for (const [key, value] of Object.entries(saved)) localStorage.setItem(key, value);
  }, ids);
  const otherPage = await other.newPage();
  otherPage.setDefaultTimeout(15000);
  await otherPage.goto(url);
  await otherPage.waitForFunction(() => document.querySelectorAll('.msg.user').length === 4);
  assert.match(await otherPage.textContent('.msg.bot[data-turn="1"] .rated'), /bad \(repeats itself\)/);
  assert.match(await otherPage.textContent('.msg.bot[data-turn="1"] .suggestion'), /my car is red/);
  assert.equal(await otherPage.$('.rating-question'), null);
  await other.close();

  // The server restarts: the page shows it, reconnects by itself and resumes.
  await stopServer(server);
  await page.waitForSelector('#status[data-state="reconnecting"]');
  server = await startServer(server.port);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 20000 });
  await page.waitForFunction(() => document.querySelectorAll('.msg.user').length === 4);
  assert.equal(await page.getAttribute('#log', 'data-conversation'), conversation);
  await say(page, 'let us talk about kites . what colour is your kite ?', 5);
  await page.screenshot({ path: `${artifacts}/after-restart.png` });

  // Learning off for this conversation: a complaint is answered, not asked about, nothing
  // is kept, and there are no thumbs to give.
  await page.uncheck('#learn');
  await page.waitForSelector('#log.not-learning');
  await page.waitForFunction(() => document.querySelectorAll('.msg.bot').length === 5);
  await say(page, 'what ? you are not making any sense', 6);
  assert.equal(await page.getAttribute('.msg.bot:last-child', 'class'), 'msg bot answer');
  assert.ok(await page.evaluate(() => [...document.querySelectorAll('.msg.user')].pop().querySelector('.badge') === null),
    'the complaint is not kept');
  assert.equal(await page.isVisible('.msg.bot:last-child .rate-down'), false);
  assert.equal((await exportExamples(server.port, 'FB')).length, 2);
  assert.equal((await exportExamples(server.port, 'HB')).length, 1);
  await page.screenshot({ path: `${artifacts}/not-learning.png` });

  // The user deletes the conversation (after a confirmation): what the bot kept of it goes,
  // and a fresh conversation starts.
  page.once('dialog', (dialog) => dialog.accept());
  await page.click('#delete-conversation');
  await page.waitForFunction(() => [...document.querySelectorAll('.msg.system')].some((li) =>
    /Conversation deleted: 12 turns and 6 training examples are gone/.test(li.textContent)));
  assert.notEqual(await page.getAttribute('#log', 'data-conversation'), conversation);
  assert.equal(await page.$$eval('.msg.user', (items) => items.length), 0);
  for (const kind of ['HB', 'FB', 'ST']) assert.equal((await exportExamples(server.port, kind)).length, 0, kind);

  // A phone-sized screen: no sideways scrolling; the composer stays usable.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
  assert.ok(await page.isVisible('#input'));
  await page.screenshot({ path: `${artifacts}/phone.png`, fullPage: true });

  // The operator: a user reports an answer as rude; the operator's page (admin.html) lists it
  // and withdraws it from the pool, and a new conversation is answered otherwise.
  const reporter = await browser.newContext();
  const chat = await reporter.newPage();
  chat.setDefaultTimeout(15000);
  await chat.goto(url);
  await chat.waitForSelector('#status[data-state="connected"]');
  await chat.waitForSelector('.msg.system');
  await say(chat, 'where is your lamp ?', 1);
  const rude = await chat.textContent('.msg.bot[data-turn="1"] .text');
  await chat.click('.msg.bot[data-turn="1"] .rate-down');
  await chat.click('.msg.bot[data-turn="1"] .reasons button[data-reason="inappropriate"]');
  await chat.waitForFunction(() => /rude/.test(document.querySelector('.msg.bot[data-turn="1"] .rated').textContent));
  const operator = await reporter.newPage();
  operator.setDefaultTimeout(15000);
  await operator.goto(url + 'admin.html');
  await operator.fill('#token', 'not-the-token');
  await operator.click('#login button');
  await operator.waitForFunction(() => /token/.test(document.getElementById('login-error').textContent));
  assert.equal(await operator.isVisible('#console'), false);
  await operator.fill('#token', token);
  await operator.click('#login button');
  await operator.waitForSelector('#console:not([hidden])');
  assert.equal(await operator.isVisible('#login'), false, 'the token form is gone once open');
  assert.match(await operator.textContent('#live'), /toy-v1/);
  // toy-v1 was not retrained on a harvest: the page says so rather than listing no one.
  await operator.waitForFunction(() => /not trained on a store's harvest/.test(
    document.getElementById('trust-note').textContent));
  assert.equal(await operator.isVisible('#trust'), false);
  await operator.selectOption('#reason', 'inappropriate');
  const row = operator.locator('#disliked tbody tr', { hasText: rude });
  await row.waitFor();
  assert.equal(await operator.locator('#disliked tbody tr').count(), 1, 'only the answer reported as rude');
  assert.match(await row.textContent(), /inappropriate 1/);
  await row.locator('button', { hasText: 'Withdraw' }).click();
  await operator.waitForSelector('#disliked tbody tr.withdrawn');
  await chat.click('#new-conversation');
  await chat.waitForFunction(() => document.querySelectorAll('.msg.bot').length === 0);
  await say(chat, 'where is your lamp ?', 1);
  assert.notEqual(await chat.textContent('.msg.bot[data-turn="1"] .text'), rude, 'the withdrawn reply is not said');
  // The versions as their users took them, with why answers were rated down.
  assert.match(await operator.textContent('#versions tbody'), /toy-v1.*inappropriate 1/s);
  // The reporter asks to be forgotten: their report goes with their conversations.
  const reporterId = await chat.evaluate(() => localStorage.getItem('selffeed.user'));
  operator.once('dialog', (dialog) => dialog.accept());
  await operator.fill('#user-id', reporterId);
  await operator.click('#delete-user button');
  await operator.waitForFunction(() => /2 conversations, 4 turns and \d+ examples deleted/.test(
    document.getElementById('deleted').textContent));
  await operator.waitForSelector('#empty:not([hidden])');
  await operator.screenshot({ path: `${artifacts}/operator.png`, fullPage: true });
  await reporter.close();
  console.log('web client test: passed; screenshots in', artifacts);
} finally {
  await browser.close();
  await stopServer(server);
}
