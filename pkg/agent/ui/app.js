// The dstate dashboard: a read-only view of one agent's admin API.
//
// Members, Raft and health are polled; the states grid follows each state's
// watch stream (Server-Sent Events read with fetch, so that the admin token
// can be sent as a header, which EventSource cannot do) and a dump of each
// state every few seconds for the view ages. Everything is built with DOM
// calls and textContent: no value from the cluster is ever parsed as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'dstate.admin-token';
  const POLL_MS = 1500;      // members, raft, health
  const STATES_MS = 2000;    // the list of states and their dumps (view ages)
  const RETRY_MS = 2000;     // a watch stream that ended
  const TIMEOUT_MS = 8000;   // one request
  const MAX_CHANGES = 100;   // the recent changes list

  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let loginWaiters = [];
  let loginShown = false;

  const model = {
    self: '',
    members: null,
    health: null,
    raft: null,
    // states: name -> {name, info, views: Map(node -> view), ctl, live, lastId}
    states: new Map(),
    selected: null, // {state, node}
    errors: {}, // section -> the last error of its poll
  };

  class Unauthorized extends Error {}

  // --- requests -----------------------------------------------------------

  function headers(extra) {
    const h = Object.assign({}, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // getJSON fetches path; statuses other than 2xx (and those in also) are
  // errors carrying the API's message, 401 an Unauthorized.
  async function getJSON(path, also) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const r = await fetch(path, { headers: headers({ Accept: 'application/json' }), signal: ctl.signal, cache: 'no-store' });
      if (r.status === 401) throw new Unauthorized(await apiMessage(r));
      if (!r.ok && !(also || []).includes(r.status)) throw new Error(`${path}: HTTP ${r.status}: ${await apiMessage(r)}`);
      return await r.json();
    } catch (e) {
      if (e.name === 'AbortError') throw new Error(`${path}: no answer within ${TIMEOUT_MS / 1000} s`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async function apiMessage(r) {
    try {
      const body = await r.json();
      return body && body.error ? body.error : r.statusText;
    } catch (_) {
      return r.statusText;
    }
  }

  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  // loggedIn resolves once no login is pending.
  function loggedIn() {
    if (!loginShown) return Promise.resolve();
    return new Promise((res) => loginWaiters.push(res));
  }

  function needLogin(msg) {
    if (token) $('login-error').textContent = msg || 'the token was refused';
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    if (loginShown) return;
    loginShown = true;
    $('login').hidden = false;
    $('main').hidden = true;
    $('logout').hidden = true;
    $('token').focus();
  }

  function login(t) {
    token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    loginShown = false;
    $('login').hidden = true;
    $('main').hidden = false;
    $('logout').hidden = false;
    $('login-error').textContent = '';
    const w = loginWaiters;
    loginWaiters = [];
    w.forEach((res) => res());
  }

  // poll runs fetchAndRender every ms, one at a time, showing its errors in
  // the section's error line.
  async function poll(section, ms, fetchAndRender) {
    for (;;) {
      await loggedIn();
      try {
        await fetchAndRender();
        setError(section, '');
        stamp(section);
      } catch (e) {
        if (e instanceof Unauthorized) {
          needLogin(e.message);
          continue;
        }
        setError(section, e.message);
      }
      await sleep(ms);
    }
  }

  // setError shows the last error of a section's poll; those of the states
  // grid (the list of states, the dumps) are shown by renderGrid.
  function setError(section, msg) {
    model.errors[section] = msg;
    const el = $(section + '-error');
    if (el) showError(el, msg);
    else scheduleRender();
  }

  function showError(el, msg) {
    el.textContent = msg;
    el.hidden = !msg;
  }

  function stamp(section) {
    const el = $(section + '-updated');
    if (el) el.textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  // --- Server-Sent Events over fetch --------------------------------------

  // readEvents reads an event stream, calling onEvent({id, event, data})
  // for each event (the text/event-stream format: fields per line, an empty
  // line ends an event, lines starting with ':' are comments).
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ev = { id: undefined, event: 'message', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (ev.data.length > 0) onEvent({ id: ev.id, event: ev.event, data: ev.data.join('\n') });
          ev = { id: undefined, event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'data') ev.data.push(val);
        else if (field === 'event') ev.event = val;
        else if (field === 'id') ev.id = val;
      }
    }
  }

  // watch follows one state's watch stream until the state goes away,
  // reconnecting with the last event ID (the resume token) when it ends.
  async function watch(st) {
    while (!st.gone) {
      await loggedIn();
      st.ctl = new AbortController();
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (st.lastId) h['Last-Event-ID'] = st.lastId;
        const r = await fetch(`/v1/states/${encodeURIComponent(st.name)}/watch`, { headers: h, signal: st.ctl.signal, cache: 'no-store' });
        if (r.status === 401) throw new Unauthorized(await apiMessage(r));
        if (!r.ok) throw new Error(`watch ${st.name}: HTTP ${r.status}: ${await apiMessage(r)}`);
        st.live = true;
        st.error = '';
        scheduleRender();
        await readEvents(r.body, (ev) => {
          if (ev.id !== undefined) st.lastId = ev.id;
          if (ev.event === 'change') applyChange(st, JSON.parse(ev.data));
        });
        st.error = `watch ${st.name}: the stream ended`;
      } catch (e) {
        if (e instanceof Unauthorized) needLogin(e.message);
        else if (!st.gone) st.error = e.name === 'AbortError' ? '' : `watch ${st.name}: ${e.message}`;
      }
      st.live = false;
      scheduleRender();
      if (!st.gone) await sleep(RETRY_MS);
    }
  }

  // --- the model ----------------------------------------------------------

  // newer reports whether generation a (incarnation, age) is after b.
  function newer(a, b) {
    if (!b) return true;
    if (a.incarnation !== b.incarnation) return a.incarnation > b.incarnation;
    return a.age > b.age;
  }

  function applyChange(st, c) {
    let v = st.views.get(c.node);
    if (c.kind === 'removed') {
      st.views.delete(c.node);
    } else {
      if (!v) {
        v = { node: c.node };
        st.views.set(c.node, v);
      }
      if (c.kind === 'failed') {
        v.failed = true;
      } else if (c.generation) {
        const g = { generation: c.generation, incarnation: c.incarnation || 0, age: c.age || 0 };
        if (newer(g, v.gen) || !v.gen || g.generation === v.gen.generation) {
          v.gen = g;
          v.value = c.value;
          v.failed = false;
          // A view that arrives now was confirmed now; the views listed
          // when the watch starts keep the age the last dump gave them.
          if (!c.initial) v.syncedAt = Date.now();
        }
      }
    }
    if (!c.initial) addChange(c);
    scheduleRender();
  }

  function applyDump(st, dump, at) {
    const seen = new Set();
    for (const d of dump.views || []) {
      seen.add(d.node);
      let v = st.views.get(d.node);
      if (!v) {
        v = { node: d.node };
        st.views.set(d.node, v);
      }
      const g = { generation: d.generation, incarnation: d.incarnation, age: d.age };
      if (v.gen && newer(v.gen, g)) continue; // the watch stream is ahead of the dump
      if (!v.gen || g.generation !== v.gen.generation) v.value = d.value;
      v.gen = g;
      if (d.synced_ago_ms >= 0) v.syncedAt = at - d.synced_ago_ms;
      v.pending = d.pending || '';
    }
    for (const node of st.views.keys()) {
      if (!seen.has(node)) st.views.delete(node);
    }
    scheduleRender();
  }

  async function refreshStates() {
    const infos = await getJSON('/v1/states');
    const names = new Set();
    for (const info of infos) {
      names.add(info.name);
      let st = model.states.get(info.name);
      if (!st) {
        st = { name: info.name, views: new Map(), live: false, lastId: '', gone: false, error: '' };
        model.states.set(info.name, st);
        watch(st);
      }
      st.info = info;
    }
    for (const [name, st] of model.states) {
      if (!names.has(name)) {
        st.gone = true;
        if (st.ctl) st.ctl.abort();
        model.states.delete(name);
      }
    }
    scheduleRender();
  }

  async function refreshDumps() {
    for (const st of model.states.values()) {
      const at = Date.now();
      const dump = await getJSON(`/v1/states/${encodeURIComponent(st.name)}`);
      applyDump(st, dump, at);
    }
  }

  function addChange(c) {
    const ol = $('changes');
    const li = document.createElement('li');
    li.dataset.state = c.state;
    li.dataset.node = c.node;
    li.dataset.kind = c.kind;
    li.append(
      text('span', new Date().toLocaleTimeString() + ' ', 'muted'),
      text('strong', c.state),
      ' ',
      text('span', c.node, 'mono'),
      ' ' + c.kind + ' ',
      text('span', c.generation || '', 'mono'),
      c.skipped ? ' (generations skipped) ' : ' ',
    );
    if (c.value !== undefined) li.append(text('span', summary(c.value, 200), 'value mono'));
    ol.prepend(li);
    while (ol.children.length > MAX_CHANGES) ol.lastElementChild.remove();
  }

  // --- rendering ----------------------------------------------------------

  function text(tag, s, cls) {
    const el = document.createElement(tag);
    el.textContent = s;
    if (cls) el.className = cls;
    return el;
  }

  function row(cells, attrs) {
    const tr = document.createElement('tr');
    for (const c of cells) tr.append(c instanceof Node ? c : text('td', c === undefined || c === null ? '' : String(c)));
    Object.assign(tr.dataset, attrs || {});
    return tr;
  }

  function td(content, cls) {
    const el = document.createElement('td');
    if (content instanceof Node) el.append(content);
    else el.textContent = content === undefined || content === null ? '' : String(content);
    if (cls) el.className = cls;
    return el;
  }

  function badge(s, cls) {
    return text('span', s, 'badge ' + cls);
  }

  function summary(v, max) {
    let s;
    try {
      s = JSON.stringify(v);
    } catch (_) {
      s = String(v);
    }
    if (s === undefined) s = '';
    return s.length > max ? s.slice(0, max - 1) + '…' : s;
  }

  function duration(ms) {
    if (ms === undefined || ms === null || ms < 0) return '—';
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return Math.floor(ms / 60000) + ' min ' + Math.floor((ms % 60000) / 1000) + ' s';
    return (ms / 3600000).toFixed(1) + ' h';
  }

  const statusClass = {
    alive: 'ok', healthy: 'ok', leader: 'ok', follower: 'ok',
    leaving: 'warn', degraded: 'warn', candidate: 'warn', left: '',
    failed: 'bad', unhealthy: 'bad', unreachable: 'bad', shutdown: 'bad',
  };

  function renderMembers() {
    const ms = (model.members || []).slice().sort((a, b) => a.name.localeCompare(b.name));
    const rows = ms.map((m) => row([
      td(m.name + (m.name === model.self ? ' (this agent)' : ''), 'mono'),
      td(badge(m.status, statusClass[m.status] || '')),
      td(m.addr, 'mono'),
      td((m.tags && m.tags.raft_role) || ''),
      td(m.protocol ? `${m.protocol.cur} (${m.protocol.min}–${m.protocol.max})` : ''),
    ], { member: m.name, status: m.status }));
    $('members').tBodies[0].replaceChildren(...rows);
  }

  function renderRaft() {
    const r = model.raft;
    const sum = $('raft-summary');
    const body = $('raft-peers').tBodies[0];
    if (!r) return;
    if (!r.enabled) {
      sum.replaceChildren(text('span', 'This agent is not a Raft server.', 'muted'));
      body.replaceChildren();
      return;
    }
    sum.replaceChildren(
      'this agent is ', badge(r.state || '?', statusClass[(r.state || '').toLowerCase()] || ''),
      ' · leader ', text('strong', r.leader || 'none'),
      ` · term ${r.term || 0} · commit ${r.commit_index || 0} · applied ${r.applied_index || 0}`,
    );
    const peers = (r.peers || []).slice().sort((a, b) => a.id.localeCompare(b.id));
    body.replaceChildren(...peers.map((p) => {
      let trails = td(p.state === 'unreachable' ? '?' : String(p.trails_by), 'num');
      if (p.state === 'unreachable') trails.className += ' bad';
      else if (p.trails_by > 0) trails.className += ' warn';
      const st = td(badge(p.state + (p.leader ? ' ★' : ''), statusClass[p.state] || ''));
      if (p.error) st.title = p.error;
      return row([
        td(p.id, 'mono'), st, td(p.suffrage), td(p.match_index, 'num'), trails,
        td(p.last_contact_ms < 0 ? '—' : duration(p.last_contact_ms), 'num'),
      ], { peer: p.id, state: p.state, trailsBy: String(p.trails_by) });
    }));
  }

  function renderHealth() {
    const h = model.health;
    if (!h) return;
    const overall = $('overall');
    overall.textContent = h.status;
    overall.className = 'badge ' + (statusClass[h.status] || '');
    overall.dataset.status = h.status;
    $('node').textContent = 'node ' + h.node;
    const parts = [badge(h.status, statusClass[h.status] || ''), h.ready ? ' ready' : ' not ready'];
    if (h.raft) parts.push(` · raft ${h.raft.state}, leader ${h.raft.leader || 'none'}, voters ${(h.raft.voters || []).join(', ')}`);
    const reasons = document.createElement('ul');
    for (const r of h.reasons || []) reasons.append(text('li', r));
    for (const u of h.unreachable_servers || []) reasons.append(text('li', `server ${u.id} (${u.address}) unreachable: ${u.reason}`));
    $('health-summary').replaceChildren(...parts, reasons);
    $('health-states').tBodies[0].replaceChildren(...(h.states || []).map((s) => {
      const peers = [];
      for (const p of s.failing || []) peers.push(`${p.node} failing: ${p.reason}`);
      for (const p of s.stale || []) peers.push(`${p.node} stale: ${p.reason} (${duration(p.synced_ago_ms)})`);
      return row([
        td(s.state), td(badge(s.status, statusClass[s.status] || '')), td(s.healthy_peers, 'num'),
        td(s.stale_peers, 'num'), td(s.failing_peers, 'num'), td(s.stale_after_ms > 0 ? duration(s.stale_after_ms) : 'never', 'num'),
        td(peers.join('; ')),
      ], { state: s.state, status: s.status });
    }));
  }

  // cellClass is a view's staleness: failing (the node failed, or the
  // health report says so), stale (the health report says so), ok, or none
  // (no view). The agent's health report is what decides, by its own rules.
  function cellClass(stName, node, v) {
    const member = (model.members || []).find((m) => m.name === node);
    if (member && member.status === 'failed') return 'failing';
    if (!v || !v.gen) return 'none';
    if (v.failed) return 'failing';
    const sh = model.health && (model.health.states || []).find((s) => s.state === stName);
    if (sh) {
      if ((sh.failing || []).some((p) => p.node === node)) return 'failing';
      if ((sh.stale || []).some((p) => p.node === node)) return 'stale';
    }
    return 'ok';
  }

  function renderGrid() {
    const now = Date.now();
    const nodes = new Set((model.members || []).filter((m) => m.status !== 'left').map((m) => m.name));
    for (const st of model.states.values()) for (const n of st.views.keys()) nodes.add(n);
    const cols = [...nodes].sort();
    const head = document.createElement('tr');
    head.append(text('th', 'state'));
    for (const n of cols) head.append(text('th', n, n === model.self ? 'self' : ''));
    $('grid').tHead.replaceChildren(head);
    const rows = [];
    const errors = model.errors.states ? [model.errors.states] : [];
    for (const st of [...model.states.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const tr = document.createElement('tr');
      const name = td('', '');
      name.append(text('strong', st.name));
      if (st.info) name.append(text('div', `${st.info.kind} · ${st.info.durability}`, 'muted'));
      if (!st.live) name.append(text('div', 'not watching', 'bad-text'));
      tr.append(name);
      if (st.error) errors.push(st.error);
      for (const n of cols) {
        const v = st.views.get(n);
        const cls = cellClass(st.name, n, v);
        const cell = td('', 'cell cell-' + cls);
        cell.dataset.state = st.name;
        cell.dataset.node = n;
        cell.dataset.class = cls;
        if (v && v.gen) {
          cell.dataset.generation = v.gen.generation;
          cell.append(text('span', v.gen.generation, 'gen'));
          const age = v.syncedAt ? duration(Math.max(0, now - v.syncedAt)) : '—';
          cell.append(text('span', (v.failed ? 'failed · ' : '') + age + (v.pending ? ' · ' + v.pending + ' pending' : ''), 'age'));
          cell.title = n === model.self
            ? `${st.name} on this agent: ${v.gen.generation}, last changed ${age} ago`
            : `${st.name} as ${n} last sent it: ${v.gen.generation}, confirmed ${age} ago`;
        } else {
          cell.append(text('span', '—'));
        }
        if (model.selected && model.selected.state === st.name && model.selected.node === n) cell.classList.add('selected');
        tr.append(cell);
      }
      rows.push(tr);
    }
    $('grid').tBodies[0].replaceChildren(...rows);
    showError($('grid-error'), errors.join('; '));
    const det = $('view-detail');
    const sel = model.selected && model.states.get(model.selected.state);
    const v = sel && sel.views.get(model.selected.node);
    det.hidden = !v;
    if (v) det.textContent = `${model.selected.state} on ${model.selected.node} (${v.gen ? v.gen.generation : 'no view'}):\n` + JSON.stringify(v.value, null, 2);
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      renderGrid();
    }, 50);
  }

  // --- start --------------------------------------------------------------

  function start() {
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token').value.trim();
      if (t) login(t);
      $('token').value = '';
    });
    $('logout').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
    $('logout').hidden = !token;
    $('grid').tBodies[0].addEventListener('click', (e) => {
      const cell = e.target.closest('td.cell');
      if (!cell) return;
      model.selected = { state: cell.dataset.state, node: cell.dataset.node };
      renderGrid();
    });
    setInterval(() => {
      $('clock').textContent = new Date().toLocaleTimeString();
      renderGrid(); // the view ages move on
    }, 1000);
    poll('health', POLL_MS, async () => {
      model.health = await getJSON('/v1/health', [503]);
      model.self = model.health.node;
      renderHealth();
    });
    poll('members', POLL_MS, async () => {
      model.members = await getJSON('/v1/members');
      renderMembers();
      scheduleRender();
    });
    poll('raft', POLL_MS, async () => {
      model.raft = await getJSON('/v1/raft');
      renderRaft();
    });
    poll('states', STATES_MS, async () => {
      await refreshStates();
      await refreshDumps();
    });
  }

  start();
})();
