// roomcast console: a page over the native API (/api/v1), signed in with a key pair
// (an HttpOnly session cookie). No build step, no CDN: hls.js is served by roomcast.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 2000;
  const VIEWS = ['apps', 'rooms', 'tasks', 'callbacks'];
  const ui = { view: 'signin', account: null, apps: [], app: null, room: null, task: null, playing: null, timer: null, hls: null };

  // ------------------------------------------------------------------ helpers

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  function when(iso) { return iso ? new Date(iso).toLocaleString() : '-'; }
  function size(n) { return n == null ? '-' : n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`; }
  function state(s) { return el('span', { class: `state state-${s}` }, s); }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { 'X-Roomcast-Console': '1' }, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(`/api/v1${path}`, opts);
    if (resp.status === 204) return null;
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      if (resp.status === 401 && ui.account) signedOut('Your session ended: sign in again.');
      throw new ApiError(resp.status, data);
    }
    return data;
  }

  function notice(text, kind = 'error') {
    const n = $('notice');
    n.textContent = text || '';
    n.className = kind === 'info' ? 'notice info' : 'notice';
    n.hidden = !text;
  }

  function report(err) { notice(err && err.message ? err.message : String(err)); }

  function fill(tbody, rows, empty, columns) {
    tbody.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: columns, class: 'hint' }, empty))]));
  }

  // ------------------------------------------------------------------ views

  function show(view) {
    ui.view = view;
    $('view-signin').hidden = view !== 'signin';
    for (const v of VIEWS) $(`view-${v}`).hidden = view !== v;
    for (const b of $('nav').querySelectorAll('button')) {
      if (b.dataset.view === view) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
    }
    if (view !== 'signin') history.replaceState(null, '', `#${view}`);
    refresh().catch(report);
  }

  async function refresh() {
    clearTimeout(ui.timer);
    try {
      if (ui.view === 'apps') await renderApps();
      else if (ui.view === 'rooms') await renderRooms();
      else if (ui.view === 'tasks') await renderTasks();
      else if (ui.view === 'callbacks') await renderCallbacks();
    } finally {
      if (ui.view !== 'signin' && ui.view !== 'apps') ui.timer = setTimeout(() => refresh().catch(report), POLL_MS);
    }
  }

  // apps and keys
  async function renderApps() {
    const [apps, keys, usage] = await Promise.all([api('GET', '/apps'), api('GET', '/keys'), api('GET', '/usage?days=7')]);
    ui.apps = apps;
    fill($('apps-table').tBodies[0], apps.map((a) => el('tr', {},
      el('td', {}, a.sdk_app_id), el('td', { class: 'id' }, a.app_id), el('td', {}, a.name), el('td', {}, state(a.state)),
      el('td', { class: 'id' }, a.callback_url || '-'),
      el('td', {}, el('button', {
        type: 'button',
        onclick: () => api('POST', `/apps/${a.app_id}/${a.state === 'enabled' ? 'disable' : 'enable'}`).then(renderApps, report),
      }, a.state === 'enabled' ? 'Disable' : 'Enable')),
    )), 'No apps yet.', 6);
    fill($('keys-table').tBodies[0], keys.map((k) => el('tr', {},
      el('td', { class: 'id' }, k.secret_id), el('td', {}, state(k.status)), el('td', {}, when(k.created_at)),
      el('td', {}, k.status === 'active' && k.secret_id !== ui.account.secret_id
        ? el('button', { type: 'button', class: 'danger', onclick: () => api('POST', `/keys/${k.secret_id}/revoke`).then(renderApps, report) }, 'Revoke')
        : (k.secret_id === ui.account.secret_id ? el('span', { class: 'hint' }, 'this session') : null)),
    )), 'No keys.', 4);
    const used = usage.filter((u) => u.sessions || u.participant_minutes || u.recording_minutes);
    const top = Math.max(1, ...used.map((u) => Math.max(u.participant_minutes, u.recording_minutes)));
    const bar = (v) => el('span', { class: 'meter-cell' }, el('span', { class: 'meter', style: `width:${Math.round((v / top) * 100)}%` }), v.toFixed(1));
    fill($('usage-table').tBodies[0], used.reverse().map((u) => el('tr', {},
      el('td', {}, u.day), el('td', {}, u.sdk_app_id), el('td', {}, u.sessions),
      el('td', {}, bar(u.participant_minutes)), el('td', {}, bar(u.recording_minutes)),
    )), 'No usage in the last 7 days.', 5);
  }

  // rooms
  async function loadApps() {
    if (!ui.apps.length) ui.apps = await api('GET', '/apps');
    const sel = $('rooms-app');
    const want = ui.apps.map((a) => String(a.sdk_app_id));
    if ([...sel.options].map((o) => o.value).join() !== want.join()) {
      sel.replaceChildren(...ui.apps.map((a) => el('option', { value: a.sdk_app_id }, `${a.name} (${a.sdk_app_id})`)));
    }
    if (!ui.app || !want.includes(ui.app)) ui.app = want[0] || null;
    sel.value = ui.app || '';
  }

  async function renderRooms() {
    await loadApps();
    if (!ui.app) { fill($('rooms-table').tBodies[0], [], 'Create an app first.', 5); return; }
    const rooms = await api('GET', `/apps/${ui.app}/rooms`);
    fill($('rooms-table').tBodies[0], rooms.map((r) => el('tr', {
      dataset: { key: r.room_id }, class: r.room_id === ui.room ? 'selected' : '',
      onclick: () => { ui.room = r.room_id; refresh().catch(report); },
    },
      el('td', {}, r.room_id), el('td', {}, r.participants), el('td', {}, when(r.created_at)),
      el('td', {}, r.recording ? el('span', { class: 'rec' }, 'Recording') : '-'),
      el('td', {}, el('button', { type: 'button' }, 'Open')),
    )), 'No room is open. Join one with the browser client at / or `roomcast bot publish`.', 5);
    if (ui.room && !rooms.some((r) => r.room_id === ui.room)) ui.room = null;
    $('room-detail').hidden = !ui.room;
    if (ui.room) await renderRoom();
  }

  function quality(q) {
    if (!q) return 'no sample yet';
    const parts = [];
    if (q.bitrate_bps != null) parts.push(`${Math.round(q.bitrate_bps / 1000)} kbit/s`);
    if (q.fps != null) parts.push(`${q.fps.toFixed(0)} fps`);
    if (q.width) parts.push(`${q.width}x${q.height}`);
    if (q.fraction_lost != null) parts.push(`loss ${(q.fraction_lost * 100).toFixed(1)} %`);
    if (q.jitter_ms != null) parts.push(`jitter ${q.jitter_ms.toFixed(0)} ms`);
    return parts.join(', ') || 'no sample yet';
  }

  async function renderRoom() {
    const room = ui.room;
    let r;
    try {
      r = await api('GET', `/apps/${ui.app}/rooms/${encodeURIComponent(room)}`);
    } catch (err) {
      if (err.status === 404) { ui.room = null; $('room-detail').hidden = true; return; }
      throw err;
    }
    $('room-title').textContent = `Room ${r.room_id}: ${r.participants} participant${r.participants === 1 ? '' : 's'}`;
    $('room-recording').hidden = !r.recording;
    const base = `/apps/${ui.app}/rooms/${encodeURIComponent(r.room_id)}`;
    $('participants').replaceChildren(...r.users.map((u) => {
      const audio = u.tracks.find((t) => t.kind === 'audio');
      const muted = Boolean(audio && audio.blocked);
      return el('article', { class: 'card', dataset: { user: u.user_id } },
        el('h4', {}, u.user_id),
        el('ul', {}, ...u.tracks.map((t) => el('li', { dataset: { track: t.track_id } },
          el('strong', {}, t.kind), ` ${t.codec.replace(/^.*\//, '')}`,
          t.muted ? ' (muted)' : '', t.blocked ? ' (blocked)' : '', ': ', quality(t.quality)))),
        el('div', { class: 'buttons' },
          el('button', {
            type: 'button', onclick: () => api('POST', `${base}/users/${encodeURIComponent(u.user_id)}/block`, { audio: !muted }).then(refresh, report),
          }, muted ? `Unmute ${u.user_id}` : `Mute ${u.user_id}`),
          el('button', {
            type: 'button', class: 'danger', onclick: () => api('POST', `${base}/remove`, { user_ids: [u.user_id] }).then(refresh, report),
          }, `Remove ${u.user_id}`)));
    }));
  }

  // tasks
  async function renderTasks() {
    const tasks = await api('GET', '/tasks?limit=50');
    fill($('tasks-table').tBodies[0], tasks.map((t) => el('tr', {
      dataset: { key: t.task_id, state: t.state }, class: t.task_id === ui.task ? 'selected' : '',
      onclick: () => { ui.task = t.task_id; ui.playing = null; refresh().catch(report); },
    },
      el('td', { class: 'id', title: t.task_id }, t.task_id), el('td', {}, t.kind),
      el('td', {}, state(t.state), t.reason ? ` (${t.reason})` : ''), el('td', {}, t.sdk_app_id),
      el('td', {}, t.room_id), el('td', {}, when(t.created_at)), el('td', {}, t.file_count),
    )), 'No tasks yet. Recordings started through a dialect API appear here.', 7);
    $('task-detail').hidden = !ui.task;
    if (ui.task) await renderTask();
  }

  async function renderTask() {
    const t = await api('GET', `/tasks/${encodeURIComponent(ui.task)}`);
    $('task-title').textContent = `Task ${t.task_id}`;
    $('task-state').replaceChildren(`${t.kind} (${t.dialect}) of room ${t.room_id}: `, state(t.state),
      t.reason ? ` (${t.reason})` : '', `; started ${when(t.started_at)}, ended ${when(t.ended_at)}`);
    fill($('files-table').tBodies[0], t.files.map((f, i) => el('tr', { dataset: { file: f.key } },
      el('td', { class: 'id', title: f.key }, f.key.replace(/^.*\//, '')), el('td', {}, fileType(f)), el('td', {}, state(f.state)),
      el('td', {}, size(f.size)), el('td', {}, f.duration_ms == null ? '-' : (f.duration_ms / 1000).toFixed(1)),
      el('td', {}, f.storage || '-'),
      el('td', {}, f.url ? el('span', { class: 'buttons' },
        el('button', { type: 'button', onclick: () => play(f) }, 'Play'), ' ',
        el('a', { class: 'button', href: `/api/v1/tasks/${encodeURIComponent(t.task_id)}/files/${i}/download`, download: '' }, 'Download'))
        : null),
    )), 'No files yet.', 7);
  }

  function fileType(f) {
    const ext = (/\.([a-z0-9]+)$/i.exec(f.key) || [])[1] || '';
    return { m3u8: 'HLS', mp4: 'MP4', m4a: 'M4A', mp3: 'MP3', webm: 'WebM', ts: 'TS' }[ext.toLowerCase()] || ext || f.content_type;
  }

  function play(f) {
    const video = $('player');
    $('player-box').hidden = false;
    if (ui.playing === f.url) return;
    ui.playing = f.url;
    if (ui.hls) { ui.hls.destroy(); ui.hls = null; }
    const isHls = /\.m3u8($|\?)/.test(f.url) || f.content_type === 'application/vnd.apple.mpegurl';
    if (isHls && !video.canPlayType('application/vnd.apple.mpegurl') && window.Hls && window.Hls.isSupported()) {
      ui.hls = new window.Hls();
      ui.hls.loadSource(f.url);
      ui.hls.attachMedia(video);
    } else {
      video.src = f.url;
    }
    video.play().catch(() => { /* the user can press play */ });
  }

  // callbacks
  async function renderCallbacks() {
    const cbs = await api('GET', '/callbacks?payload=true&limit=50');
    const box = $('callbacks');
    const open = new Set([...box.querySelectorAll('details[open]')].map((d) => d.dataset.event));
    box.replaceChildren(...(cbs.length ? cbs.map((c) => el('details', { dataset: { event: c.event_id }, open: open.has(c.event_id) },
      el('summary', {}, el('strong', {}, c.kind), state(c.state), el('span', {}, `attempts ${c.attempts}`),
        el('span', {}, when(c.created_at)),
        el('span', { class: 'id' }, c.url)),
      c.last_error ? el('p', { class: 'hint' }, `last error: ${c.last_error}`) : null,
      el('pre', {}, JSON.stringify(c.body, null, 2)),
      el('button', { type: 'button', onclick: () => api('POST', `/callbacks/${c.event_id}/redeliver`).then(refresh, report) }, 'Redeliver'),
    )) : [el('p', { class: 'hint' }, 'No callbacks yet. Set an app\'s callback URL (roomcast app set-callback) to receive events.')]));
  }

  // ------------------------------------------------------------------ session

  function signedIn(account) {
    ui.account = account;
    $('who-name').textContent = `${account.name} (${account.secret_id})`;
    $('who').hidden = false;
    $('nav').hidden = false;
    notice('');
    const want = location.hash.slice(1);
    show(VIEWS.includes(want) ? want : 'rooms');
  }

  function signedOut(text) {
    clearTimeout(ui.timer);
    ui.account = null;
    ui.apps = [];
    $('who').hidden = true;
    $('nav').hidden = true;
    show('signin');
    if (text) notice(text, 'info');
  }

  function bind() {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      api('POST', '/session', { secret_id: $('secret-id').value.trim(), secret_key: $('secret-key').value.trim() })
        .then((acc) => { $('secret-key').value = ''; signedIn(acc); })
        .catch((err) => notice(err.status === 401 ? 'Wrong secret id or secret key (or the key is revoked).' : err.message));
    });
    $('sign-out').addEventListener('click', () => { api('DELETE', '/session').finally(() => signedOut('Signed out.')); });
    for (const b of $('nav').querySelectorAll('button')) b.addEventListener('click', () => show(b.dataset.view));
    $('rooms-app').addEventListener('change', (ev) => { ui.app = ev.target.value; ui.room = null; refresh().catch(report); });
    $('dismiss-room').addEventListener('click', () => {
      if (!ui.room) return;
      api('POST', `/apps/${ui.app}/rooms/${encodeURIComponent(ui.room)}/dismiss`).then(() => { ui.room = null; return refresh(); }).catch(report);
    });
    $('app-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      api('POST', '/apps', { name: $('app-name').value.trim() }).then((a) => {
        $('app-name').value = '';
        notice(`Created app ${a.name}: sdk_app_id ${a.sdk_app_id}, app_key ${a.app_key}`, 'info');
        return renderApps();
      }).catch(report);
    });
    $('create-key').addEventListener('click', () => {
      api('POST', '/keys').then((k) => {
        const box = $('new-key');
        box.textContent = `New key pair (the secret key is shown only now): ${k.secret_id} / ${k.secret_key}`;
        box.hidden = false;
        return renderApps();
      }).catch(report);
    });
  }

  bind();
  api('GET', '/account').then(signedIn, () => show('signin'));
  window.roomcastConsole = { get state() { return { view: ui.view, app: ui.app, room: ui.room, task: ui.task, playing: ui.playing }; } };
})();
