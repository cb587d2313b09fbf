// The catcher's page: the list of caught mail (kept current by Server-Sent Events), a search, and
// one message's views. Plain DOM, no framework: every string from a message goes in as text,
// and a message's HTML only in the sandboxed frame the server serves it for.
const API = '/api/v1';
const TABS = ['html', 'text', 'source', 'headers', 'attachments'];

const $ = (id) => document.getElementById(id);
const state = { messages: [], total: 0, query: '', selected: null, message: null, source: null, tab: 'html', remote: false, info: null };

/** A call to the API: its JSON (or text), or an Error with the API's own words. */
async function request(path, options = {}) {
  const res = await fetch(API + path, options);
  if (res.status === 204) return null;
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  const body = json ? await res.json() : await res.text();
  if (!res.ok) throw new Error(json && body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`);
  return body;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function when(iso) {
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : date.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function say(text) {
  $('status').textContent = text;
}

// ---- the list ----

async function loadList() {
  const params = new URLSearchParams({ limit: '500' });
  if (state.query !== '') params.set('q', state.query);
  const page = await request(`/messages?${params}`);
  state.messages = page.messages;
  state.total = page.total;
  renderList();
}

let pending;
/** Reloads the list soon: a burst of events is one reload. */
function refreshSoon() {
  clearTimeout(pending);
  pending = setTimeout(() => void loadList().catch((err) => say(err.message)), 80);
}

function renderList() {
  const list = $('list');
  const focused = document.activeElement?.dataset?.id;
  list.replaceChildren();
  for (const m of state.messages) {
    const item = element('button', 'item');
    item.type = 'button';
    item.dataset.id = m.id;
    item.setAttribute('aria-current', String(m.id === state.selected));
    const to = (m.to.length > 0 ? m.to : m.rcptTos).join(', ');
    item.append(
      element('span', 'from', m.from[0] ?? (m.mailFrom || '<>')),
      element('span', 'date', when(m.receivedAt)),
      element('span', 'subject', m.subject || '(no subject)'),
      element('span', 'to', `To: ${to}${m.attachments > 0 ? ` · ${m.attachments} attachment${m.attachments === 1 ? '' : 's'}` : ''}`),
    );
    item.addEventListener('click', () => void select(m.id));
    const row = element('li');
    row.append(item);
    list.append(row);
  }
  if (focused !== undefined) list.querySelector(`[data-id="${CSS.escape(focused)}"]`)?.focus();
  $('empty').hidden = state.messages.length > 0;
  $('count').textContent = state.query === '' ? `${state.total} message${state.total === 1 ? '' : 's'}` : `${state.total} found`;
  document.title = state.total > 0 && state.query === '' ? `(${state.total}) Sirocco catcher` : 'Sirocco catcher';
}

/** Moves the selection `by` places in the list (and the focus with it). */
function move(by) {
  const index = state.messages.findIndex((m) => m.id === state.selected);
  const next = state.messages[Math.max(0, Math.min(state.messages.length - 1, index + by))];
  if (next === undefined) return;
  void select(next.id).then(() =>
    $('list')
      .querySelector(`[data-id="${CSS.escape(next.id)}"]`)
      ?.focus(),
  );
}

// ---- one message ----

async function select(id) {
  state.selected = id;
  state.source = null;
  state.remote = false;
  for (const item of $('list').querySelectorAll('.item')) item.setAttribute('aria-current', String(item.dataset.id === id));
  try {
    state.message = await request(`/messages/${encodeURIComponent(id)}`);
  } catch (err) {
    showNothing();
    say(err.message);
    return;
  }
  history.replaceState(null, '', `#${encodeURIComponent(id)}`);
  renderMessage();
}

function showNothing() {
  state.selected = null;
  state.message = null;
  $('message').hidden = true;
  $('nothing').hidden = false;
  $('html').removeAttribute('src');
  history.replaceState(null, '', location.pathname);
}

function renderMessage() {
  const m = state.message;
  $('nothing').hidden = true;
  $('message').hidden = false;
  $('m-subject').textContent = m.subject || '(no subject)';
  const meta = $('m-meta');
  meta.replaceChildren();
  const rows = [
    ['From', m.from.join(', ') || '—'],
    ['To', m.to.join(', ') || '—'],
    ...(m.cc.length > 0 ? [['Cc', m.cc.join(', ')]] : []),
    ['Date', new Date(m.receivedAt).toLocaleString()],
    ['Envelope', `<${m.mailFrom}> → ${m.rcptTos.map((r) => `<${r}>`).join(', ')}`],
    ['Client', `${m.session.remoteAddress} (${m.session.heloName})${m.session.secure ? ', TLS' : ''}`],
    ['Size', size(m.size)],
  ];
  for (const [name, value] of rows) meta.append(element('dt', '', name), element('dd', '', value));
  $('m-raw').href = `${API}/messages/${encodeURIComponent(m.id)}/raw`;
  $('m-raw').download = `${m.id}.eml`;
  $('release').hidden = true;
  $('m-release').setAttribute('aria-expanded', 'false');
  say('');
  $('tab-html').disabled = m.html === null;
  $('tab-attachments').textContent = `Attachments (${m.attachments.length})`;
  const tab = m.html === null && state.tab === 'html' ? 'text' : state.tab;
  void showTab(tab);
}

/** Whether the HTML asks for anything from the network (what "Show remote images" would load). */
function loadsRemote(html) {
  return /(?:src|background|srcset)\s*=\s*["']?\s*(?:https?:)?\/\/|url\(\s*["']?\s*(?:https?:)?\/\//i.test(html);
}

async function showTab(name) {
  state.tab = name;
  for (const tab of TABS) {
    const button = $(`tab-${tab}`);
    const on = tab === name;
    button.setAttribute('aria-selected', String(on));
    button.tabIndex = on ? 0 : -1;
    $(`panel-${tab}`).hidden = !on;
  }
  const m = state.message;
  const id = encodeURIComponent(m.id);
  if (name === 'html') {
    $('remote-note').hidden = state.remote || !loadsRemote(m.html ?? '');
    const src = `${API}/messages/${id}/html${state.remote ? '?images=remote' : ''}`;
    if ($('html').getAttribute('src') !== src) $('html').src = src;
  } else if (name === 'text') {
    $('text').textContent = m.text;
  } else if (name === 'source' || name === 'headers') {
    state.source ??= await request(`/messages/${id}/raw`);
    if (state.message !== m) return;
    if (name === 'source') $('source').textContent = state.source;
    else renderHeaders(state.source);
  } else {
    const list = $('attachments');
    list.replaceChildren();
    if (m.attachments.length === 0) list.append(element('li', '', 'No attachments.'));
    for (const a of m.attachments) {
      const link = element('a', '', a.filename ?? `attachment-${a.index}`);
      link.href = `${API}/messages/${id}/attachments/${a.index}`;
      link.download = a.filename ?? `attachment-${a.index}`;
      const row = element('li');
      row.append(link, ` ${a.contentType}, ${size(a.size)}`);
      list.append(row);
    }
  }
}

/** Every header field of the source, in order, repeated ones included, unfolded. */
function renderHeaders(source) {
  const end = source.search(/\r?\n\r?\n/);
  const head = (end < 0 ? source : source.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const body = $('headers').tBodies[0];
  body.replaceChildren();
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const row = element('tr');
    row.append(element('td', '', line.slice(0, colon)), element('td', '', line.slice(colon + 1).trim()));
    body.append(row);
  }
}

async function deleteSelected() {
  const id = state.selected;
  if (id === null) return;
  const index = state.messages.findIndex((m) => m.id === id);
  try {
    await request(`/messages/${encodeURIComponent(id)}`, { method: 'DELETE' });
  } catch (err) {
    say(err.message);
    return;
  }
  state.messages = state.messages.filter((m) => m.id !== id);
  state.total = Math.max(0, state.total - 1);
  renderList();
  const next = state.messages[Math.min(index, state.messages.length - 1)];
  if (next === undefined) showNothing();
  else await select(next.id);
}

async function release(event) {
  event.preventDefault();
  const form = $('release');
  const data = new FormData(form);
  const body = {
    to: String(data.get('to'))
      .split(/[\s,;]+/)
      .filter(Boolean),
  };
  if (state.info?.releaseTo === null) {
    body.host = String(data.get('host')).trim();
    body.port = Number(data.get('port'));
  }
  say('Releasing…');
  try {
    const sent = await request(`/messages/${encodeURIComponent(state.selected)}/release`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    say(`Released to ${sent.host}:${sent.port}: ${sent.response}`);
    form.hidden = true;
    $('m-release').setAttribute('aria-expanded', 'false');
  } catch (err) {
    say(`Not released: ${err.message}`);
  }
}

function toggleRelease() {
  const form = $('release');
  form.hidden = !form.hidden;
  $('m-release').setAttribute('aria-expanded', String(!form.hidden));
  if (form.hidden) return;
  form.elements.to.value = state.message.rcptTos.join(', ');
  const fixed = state.info?.releaseTo ?? null;
  for (const label of form.querySelectorAll('.server')) label.hidden = fixed !== null;
  $('release-target').textContent = fixed === null ? '' : `via ${fixed.host}:${fixed.port}`;
  form.elements.to.focus();
}

// ---- keys, events, start ----

function onListKey(event) {
  const keys = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 };
  if (event.key in keys) {
    event.preventDefault();
    if (state.selected === null && state.messages.length > 0) void select(state.messages[0].id);
    else move(keys[event.key]);
  } else if (event.key === 'Home' || event.key === 'End') {
    event.preventDefault();
    move(event.key === 'Home' ? -Infinity : Infinity);
  } else if (event.key === 'Delete') {
    event.preventDefault();
    void deleteSelected().then(() => $('list').querySelector('[aria-current="true"]')?.focus());
  }
}

function onTabKey(event) {
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (step === undefined) return;
  event.preventDefault();
  const usable = TABS.filter((t) => !$(`tab-${t}`).disabled);
  const next = usable[(usable.indexOf(state.tab) + step + usable.length) % usable.length];
  void showTab(next).then(() => $(`tab-${next}`).focus());
}

function listen() {
  const events = new EventSource(`${API}/events`);
  const live = $('live');
  events.addEventListener('open', () => {
    live.classList.add('on');
    live.title = 'Live updates: on';
    refreshSoon();
  });
  events.addEventListener('error', () => {
    live.classList.remove('on');
    live.title = 'Live updates: reconnecting';
  });
  events.addEventListener('message', refreshSoon);
  events.addEventListener('deleted', (event) => {
    const { ids } = JSON.parse(event.data);
    if (ids.includes(state.selected)) showNothing();
    refreshSoon();
  });
  events.addEventListener('cleared', () => {
    showNothing();
    refreshSoon();
  });
}

function start() {
  let typing;
  $('q').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.query = $('q').value.trim();
      void loadList().catch((err) => say(err.message));
    }, 150);
  });
  $('search').addEventListener('submit', (event) => event.preventDefault());
  $('list').addEventListener('keydown', onListKey);
  for (const tab of TABS) $(`tab-${tab}`).addEventListener('click', () => void showTab(tab));
  document.querySelector('[role="tablist"]').addEventListener('keydown', onTabKey);
  $('m-delete').addEventListener('click', () => void deleteSelected());
  $('m-release').addEventListener('click', toggleRelease);
  $('release').addEventListener('submit', (event) => void release(event));
  $('remote').addEventListener('click', () => {
    state.remote = true;
    void showTab('html');
  });
  $('delete-all').addEventListener('click', () => {
    if (!confirm('Delete every message?')) return;
    void request('/messages', { method: 'DELETE' }).catch((err) => say(err.message));
  });
  document.addEventListener('keydown', (event) => {
    const inField = event.target instanceof HTMLInputElement;
    if (event.key === '/' && !inField) {
      event.preventDefault();
      $('q').focus();
    } else if (event.key === 'Escape' && event.target === $('q')) {
      $('q').value = '';
      $('q').dispatchEvent(new Event('input'));
    }
  });
  void request('/info').then((info) => (state.info = info));
  void loadList().then(() => {
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted !== '') void select(wanted);
  });
  listen();
}

start();
