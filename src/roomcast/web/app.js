// roomcast browser client: join a room over the WebSocket protocol of docs/signalling.md,
// publish camera + microphone (and the screen), and show everyone else. No build step.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  const CLOSE_MESSAGES = {
    4000: 'You left the room.',
    4001: 'You were removed from the room',
    4002: 'The room was dismissed',
    4003: 'You joined this room from somewhere else, so this session ended.',
    4004: 'The server closed this session (it is shutting down, or the room moved to another node).',
    4400: 'The server did not understand this client (protocol error).',
    4401: 'The server refused the token.',
  };
  // Closes after which the client joins again by itself (a node stopped or died, the room moved):
  // the join goes through any node and is redirected to the room's node.
  const RECONNECT_CODES = new Set([1001, 1006, 1011, 4004]);
  const RECONNECT_ATTEMPTS = 5;
  const RECONNECT_DELAY_MS = 1500;
  const MAX_REDIRECTS = 3;
  const ICE_GATHER_LIMIT_MS = 5000;
  const RECORDING_POLL_MS = 3000;
  const TELEMETRY_MS = 5000; // client telemetry (docs/signalling.md), what only the browser knows
  const LOG_LIMIT = 100;

  let config = { dev_mode: false, signalling: '/rtc/ws' };
  let session = null;
  let board = null; // the whiteboard panel (whiteboard.js)
  const log = [];
  const ui = { phase: 'idle', notice: null, closeCode: null, recording: false };

  // ------------------------------------------------------------------ helpers

  function trackParts(trackId) {
    const cut = trackId.lastIndexOf('/');
    return { user: trackId.slice(0, cut), kind: trackId.slice(cut + 1) };
  }

  function iceGathered(pc) {
    // Non-trickle ICE: the SDP we send must already hold every candidate.
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        pc.removeEventListener('icegatheringstatechange', check);
        clearTimeout(timer);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === 'complete') done(); };
      const timer = setTimeout(done, ICE_GATHER_LIMIT_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  function h264Rank(codec) {
    const fmtp = codec.sdpFmtpLine || '';
    if (!/packetization-mode=1/.test(fmtp)) return -1;
    const profile = (/profile-level-id=([0-9a-f]{6})/i.exec(fmtp) || [])[1] || '';
    // Constrained baseline first (what the SFU and every browser handle), then baseline.
    if (/^42e0/i.test(profile)) return 0;
    if (/^4200/i.test(profile)) return 1;
    return -1;
  }

  function videoCodecPreferences() {
    // H.264 lets recordings copy the stream as-is; VP8 is the fallback.
    const receive = (RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('video')) || { codecs: [] };
    const send = (RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities('video')) || { codecs: [] };
    const canSend = (c) => send.codecs.some((s) => s.mimeType === c.mimeType && (s.sdpFmtpLine || '') === (c.sdpFmtpLine || ''));
    const mime = (c) => c.mimeType.toLowerCase();
    const h264 = receive.codecs
      .filter((c) => mime(c) === 'video/h264' && h264Rank(c) >= 0 && canSend(c))
      .sort((a, b) => h264Rank(a) - h264Rank(b));
    const vp8 = receive.codecs.filter((c) => mime(c) === 'video/vp8');
    const rtx = receive.codecs.filter((c) => mime(c) === 'video/rtx');
    return [...h264, ...vp8, ...rtx];
  }

  function preferCodecs(transceiver, media) {
    if (media !== 'video' || typeof transceiver.setCodecPreferences !== 'function') return;
    const prefs = videoCodecPreferences();
    if (!prefs.length) return;
    try {
      transceiver.setCodecPreferences(prefs);
    } catch (err) {
      console.warn('setCodecPreferences failed; using the browser default', err);
    }
  }

  // --------------------------------------------------------------- rendering

  function setStatus(text) { $('status').textContent = text; }

  function showNotice(text, kind = 'error') {
    ui.notice = text;
    const el = $('notice');
    el.textContent = text;
    el.className = kind === 'info' ? 'notice info' : 'notice';
    el.hidden = !text;
  }

  function clearNotice() {
    ui.notice = null;
    $('notice').hidden = true;
  }

  function addLog(text) {
    const at = new Date();
    log.push({ at: at.toISOString(), text });
    if (log.length > LOG_LIMIT) log.shift();
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString();
    li.append(time, document.createTextNode(text));
    const list = $('log');
    list.append(li);
    while (list.children.length > LOG_LIMIT) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  // Custom messages: subtitles from transcription/conversation robots (cmd_id 1, JSON), else raw.
  function customText(msg) {
    if (msg.cmd_id === 1) {
      try {
        const body = JSON.parse(msg.data);
        if (body.type === 10000 && body.payload && body.payload.end) return `${body.sender}: ${body.payload.text}`;
        if (body.type === 10002 && body.payload) return `${msg.sender}: error: ${body.payload.message}`;
        if (body.type === 10000 || body.type === 10001) return null;
      } catch (err) { /* not JSON: shown as sent */ }
    }
    return `${msg.sender} [${msg.cmd_id}]: ${String(msg.data).slice(0, 200)}`;
  }

  function setPhase(phase) {
    ui.phase = phase;
    const inCall = phase === 'joined';
    $('join-panel').hidden = inCall;
    $('call-panel').hidden = !inCall;
    $('join').disabled = phase === 'joining';
    $('dev-token').hidden = !config.dev_mode;
    renderTokenHint();
    if (phase === 'idle' || phase === 'ended') $('tiles').replaceChildren();
    if (phase !== 'joined') setRecording(false);
  }

  function renderTokenHint() {
    // Where a token comes from: this page in dev mode, otherwise the app's backend or the CLI.
    const hint = $('token-hint');
    if (config.dev_mode) {
      hint.textContent = 'Dev mode is on: "Get a dev token" signs one for the fields above.';
      return;
    }
    const app = $('app-id').value.trim() || 'APP';
    const user = $('user-id').value.trim() || 'USER';
    const code = document.createElement('code');
    code.textContent = `roomcast token --app ${app} --user ${user}`;
    hint.replaceChildren(
      'Dev mode is off: get a token from your application\'s backend, or run ',
      code,
      ' on the server (or start it with ROOMCAST_DEV_MODE=true to get one here).',
    );
  }

  function setRecording(on) {
    ui.recording = on;
    $('recording').hidden = !on;
    $('recording').textContent = on ? 'Recording' : '';
  }

  function renderControls() {
    if (!session) return;
    const mic = $('toggle-mic');
    const cam = $('toggle-camera');
    const screen = $('toggle-screen');
    mic.disabled = !session.pubTransceivers.audio;
    cam.disabled = !session.pubTransceivers.camera;
    mic.setAttribute('aria-pressed', String(session.muted.audio));
    mic.textContent = session.muted.audio ? 'Unmute mic' : 'Mute mic';
    cam.setAttribute('aria-pressed', String(session.muted.camera));
    cam.textContent = session.muted.camera ? 'Start camera' : 'Stop camera';
    screen.disabled = !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
    screen.setAttribute('aria-pressed', String(Boolean(session.screenTrack)));
    screen.textContent = session.screenTrack ? 'Stop sharing' : 'Share screen';
  }

  function wantedTiles(s) {
    // key -> {user, stream: 'main' | 'screen', tracks, local}
    const want = new Map();
    const tile = (user, stream, local) => {
      const key = `${local ? 'local' : 'remote'}:${user}/${stream}`;
      if (!want.has(key)) want.set(key, { user, stream, tracks: [], local });
      return want.get(key);
    };
    if (s.localStream) tile(s.userId, 'main', true).tracks.push(...s.localStream.getVideoTracks());
    if (s.screenTrack) tile(s.userId, 'screen', true).tracks.push(s.screenTrack);
    for (const user of s.participants.keys()) if (user !== s.userId) tile(user, 'main', false);
    if (s.subPc) {
      for (const tr of s.subPc.getTransceivers()) {
        const trackId = tr.mid != null ? s.mapping[tr.mid] : undefined;
        if (!trackId || !tr.receiver.track) continue;
        const { user, kind } = trackParts(trackId);
        if (user === s.userId) continue;
        tile(user, kind === 'screen' ? 'screen' : 'main', false).tracks.push(tr.receiver.track);
      }
    }
    return want;
  }

  function renderTiles() {
    const s = session;
    const box = $('tiles');
    if (!s) { box.replaceChildren(); return; }
    const want = wantedTiles(s);
    for (const el of [...box.children]) if (!want.has(el.dataset.key)) el.remove();
    for (const [key, t] of want) {
      let fig = [...box.children].find((el) => el.dataset.key === key);
      if (!fig) {
        fig = document.createElement('figure');
        fig.className = t.local ? 'tile local' : 'tile';
        fig.dataset.key = key;
        fig.dataset.user = t.user;
        fig.dataset.stream = t.stream;
        fig.dataset.initial = (t.user[0] || '?').toUpperCase();
        const video = document.createElement('video');
        video.autoplay = true;
        video.playsInline = true;
        video.muted = t.local;
        const cap = document.createElement('figcaption');
        fig.append(video, cap);
        // New tiles go in order (you first, then others by name); existing ones never move,
        // since taking a playing video out of the page pauses it.
        const order = tileOrder(t);
        const next = [...box.children].find((el) => el.dataset.order > order);
        box.insertBefore(fig, next || null);
        fig.dataset.order = order;
      }
      const video = fig.querySelector('video');
      const current = video.srcObject ? video.srcObject.getTracks() : [];
      const same = current.length === t.tracks.length && t.tracks.every((x) => current.includes(x));
      if (!same) {
        video.srcObject = t.tracks.length ? new MediaStream(t.tracks) : null;
        if (t.tracks.length) video.play().catch(() => {});
      }
      const label = t.stream === 'screen' ? `${t.user} (screen)` : t.user;
      video.setAttribute('aria-label', t.local ? `Your ${t.stream === 'screen' ? 'screen' : 'camera'}` : `Video of ${label}`);
      const flags = tileFlags(s, t);
      const hasVideo = t.tracks.some((x) => x.kind === 'video') && !flags.videoOff;
      fig.classList.toggle('no-video', !hasVideo);
      const cap = fig.querySelector('figcaption');
      cap.textContent = t.local ? `${label} (you)` : label;
      for (const badge of flags.badges) {
        const b = document.createElement('span');
        b.className = 'badge';
        b.textContent = badge;
        cap.append(b);
      }
    }
  }

  function tileOrder(t) {
    return `${t.local ? 0 : 1}\u0000${t.user}\u0000${t.stream === 'screen' ? 1 : 0}`;
  }

  function tileFlags(s, t) {
    const badges = [];
    let videoOff = false;
    if (t.local) {
      if (t.stream === 'main' && s.muted.audio) badges.push('mic off');
      if (t.stream === 'main' && s.muted.camera) { badges.push('camera off'); videoOff = true; }
      return { badges, videoOff };
    }
    const p = s.participants.get(t.user);
    if (!p) return { badges, videoOff };
    const videoKind = t.stream === 'screen' ? 'screen' : 'camera';
    const audio = p.tracks.get('audio');
    const video = p.tracks.get(videoKind);
    if (t.stream === 'main' && audio && (audio.muted || p.blocked.has('audio'))) badges.push('mic off');
    if (video && (video.muted || p.blocked.has('video'))) { badges.push(t.stream === 'screen' ? 'paused' : 'camera off'); videoOff = true; }
    if (!video && t.stream === 'main') videoOff = true;
    return { badges, videoOff };
  }

  // ----------------------------------------------------------------- session

  class Session {
    constructor(settings) {
      this.settings = settings;
      this.userId = settings.user_id;
      this.sessionId = null;
      this.ws = null;
      this.nextId = 1;
      this.pending = new Map();
      this.participants = new Map(); // user -> {session_id, tracks: Map(kind -> {track_id, muted}), blocked: Set}
      this.mapping = {}; // mid -> track id on the receiving connection
      this.pubPc = null;
      this.subPc = null;
      this.pubTransceivers = {}; // kind -> RTCRtpTransceiver
      this.localStream = null;
      this.screenTrack = null;
      this.muted = { audio: false, camera: false };
      this.published = [];
      this.subQueue = Promise.resolve();
      this.pubQueue = Promise.resolve();
      this.removedReason = '';
      this.dismissedReason = '';
      this.ended = false;
      this.recordingTimer = null;
      this.telemetryTimer = null;
      this.telemetryPrev = new Map(); // stats id -> previous counters
      this.clientEvents = [];
      this.telemetrySent = 0;
    }

    clientEvent(name, value) {
      this.clientEvents.push({ at: Date.now() / 1000, name, value });
    }

    async telemetry() {
      // getStats of both connections: capture and send rates, RTT, and per peer the rendering
      // rate and the time video froze or audio was concealed since the previous report.
      const now = Date.now() / 1000;
      const up = { at: now };
      const peers = new Map();
      const prev = this.telemetryPrev;
      const delta = (id, key, value) => {
        const before = prev.get(`${id}:${key}`);
        prev.set(`${id}:${key}`, value);
        return before === undefined ? null : Math.max(0, value - before);
      };
      if (this.pubPc) {
        (await this.pubPc.getStats()).forEach((r) => {
          if (r.type === 'media-source' && r.kind === 'video' && r.framesPerSecond != null) up.capture_fps = r.framesPerSecond;
          if (r.type === 'outbound-rtp' && r.kind === 'video' && r.framesPerSecond != null) up.send_fps = r.framesPerSecond;
          if (r.type === 'candidate-pair' && r.nominated && r.currentRoundTripTime != null) up.rtt_ms = r.currentRoundTripTime * 1000;
        });
      }
      if (this.subPc) {
        (await this.subPc.getStats()).forEach((r) => {
          if (r.type !== 'inbound-rtp' || r.mid == null) return;
          const trackId = this.mapping[r.mid];
          if (!trackId) return;
          const { user, kind } = trackParts(trackId);
          const p = peers.get(user) || { at: now, peer: user };
          if (r.kind === 'video' && kind === 'camera') {
            if (r.framesPerSecond != null) p.decode_fps = r.framesPerSecond;
            const frozen = delta(r.id, 'freeze', r.totalFreezesDuration || 0);
            if (frozen != null) p.video_stall_ms = Math.round(frozen * 1000);
          } else if (r.kind === 'audio') {
            const concealed = delta(r.id, 'concealed', (r.concealedSamples || 0) - (r.silentConcealedSamples || 0));
            if (concealed != null) p.audio_stall_ms = Math.round((concealed / 48000) * 1000);
          }
          peers.set(user, p);
        });
      }
      const ua = navigator.userAgent || '';
      const net = navigator.connection && navigator.connection.type;
      const device = {
        device_type: /Mobi|Android|iPhone|iPad/.test(ua) ? 'mobile' : 'pc',
        os: ((navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || 'unknown').slice(0, 64),
        sdk_version: 'roomcast-web/1',
      };
      const NETWORKS = { wifi: 'wifi', ethernet: 'wired', none: 'none', cellular: 'unknown', unknown: 'unknown' };
      if (net && NETWORKS[net]) device.network_type = NETWORKS[net];
      const samples = [up, ...peers.values()].filter((x) => Object.keys(x).length > (x.peer ? 2 : 1));
      const events = this.clientEvents.splice(0);
      this.send({ type: 'telemetry', device, samples, events });
      this.telemetrySent += 1;
    }

    startTelemetry() {
      const tick = async () => {
        if (this.ended) return;
        try { await this.telemetry(); } catch { /* a report is skipped, not the call */ }
        if (!this.ended) this.telemetryTimer = setTimeout(tick, TELEMETRY_MS);
      };
      this.clientEvent('signalling', 'up');
      this.telemetryTimer = setTimeout(tick, TELEMETRY_MS);
    }

    async pollRecording() {
      // Whether any recording task includes the room (GET /api/rooms/{app}/{room}/status).
      const { app_id, room_id, user_id, token } = this.settings;
      const path = `/api/rooms/${encodeURIComponent(app_id)}/${encodeURIComponent(room_id)}/status?user=${encodeURIComponent(user_id)}`;
      try {
        const resp = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
        if (resp.ok && !this.ended) setRecording(Boolean((await resp.json()).recording));
      } catch { /* keep the last state */ }
      if (!this.ended) this.recordingTimer = setTimeout(() => this.pollRecording(), RECORDING_POLL_MS);
    }

    send(msg) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
    }

    request(msg) {
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.send({ ...msg, id });
      });
    }

    async open(redirectUrl = null, hops = 0) {
      const url = new URL(redirectUrl || config.signalling || '/rtc/ws', location.href);
      if (!redirectUrl) url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(url);
      this.ws = ws;
      // Only the current socket counts: a redirected one closing later is not the session ending.
      ws.addEventListener('message', (ev) => { if (this.ws === ws) this.onMessage(ev.data); });
      ws.addEventListener('close', (ev) => { if (this.ws === ws) this.onClose(ev.code, ev.reason); });
      await new Promise((resolve, reject) => {
        ws.addEventListener('open', resolve, { once: true });
        ws.addEventListener('close', () => reject(new Error('could not reach the signalling server')), { once: true });
      });
      const { app_id, room_id, user_id, token } = this.settings;
      const joined = await this.request({ type: 'join', app_id, room_id, user_id, token, auto_subscribe: true });
      if (joined.type === 'redirect') {
        // The room is served by another node: join there (docs/signalling.md, "Several nodes").
        if (hops >= MAX_REDIRECTS) throw new Error('too many redirects between nodes');
        addLog(`The room is on node ${joined.node_id}: joining there`);
        this.ws = null;
        ws.close(1000);
        return this.open(joined.url, hops + 1);
      }
      this.sessionId = joined.session_id;
      for (const p of (joined.room && joined.room.participants) || []) this.addParticipant(p.user_id, p.session_id, p.tracks);
      this.startTelemetry();
    }

    onMessage(text) {
      let msg;
      try { msg = JSON.parse(text); } catch { return; }
      const waiter = msg.id != null ? this.pending.get(msg.id) : undefined;
      if (waiter) {
        this.pending.delete(msg.id);
        if (msg.type === 'error') {
          const err = new Error(msg.message || msg.code);
          err.code = msg.code;
          waiter.reject(err);
        } else {
          waiter.resolve(msg);
        }
        return;
      }
      this.onEvent(msg);
    }

    addParticipant(user, sessionId, tracks = []) {
      const p = { session_id: sessionId, tracks: new Map(), blocked: new Set() };
      for (const t of tracks) p.tracks.set(t.kind, { track_id: t.track_id, muted: Boolean(t.muted) });
      this.participants.set(user, p);
      return p;
    }

    onEvent(msg) {
      const user = msg.user_id;
      const self = user === this.userId;
      const who = self ? 'You' : user;
      const p = user ? this.participants.get(user) : undefined;
      if (msg.type === 'wb_op') {
        if (board && msg.op) board.receive([msg.op]);
        return;
      }
      if (msg.type === 'wb_draft') {
        if (board && msg.op) board.receiveDraft(msg.user_id, msg.op);
        return;
      }
      switch (msg.type) {
        case 'offer':
          this.subQueue = this.subQueue.then(() => this.answerOffer(msg)).catch((err) => {
            showNotice(`Could not receive media: ${err.message}`);
          });
          return;
        case 'subscriptions':
          this.mapping = msg.mapping || {};
          break;
        case 'participant_joined':
          if (!self) { this.addParticipant(user, msg.session_id); addLog(`${user} joined`); }
          break;
        case 'participant_left':
          if (!self) {
            this.participants.delete(user);
            this.dropTracks((t) => trackParts(t).user === user);
            addLog(`${user} left${msg.reason && msg.reason !== 'left' ? ` (${msg.reason})` : ''}`);
          }
          break;
        case 'participant_removed':
          addLog(`${who} ${self ? 'were' : 'was'} removed by a moderator`);
          break;
        case 'track_published':
          if (p) p.tracks.set(msg.kind, { track_id: msg.track_id, muted: false });
          if (!self) addLog(msg.kind === 'screen' ? `${user} started sharing the screen` : `${user} published ${msg.kind}`);
          break;
        case 'track_unpublished':
          if (p) p.tracks.delete(msg.kind);
          this.dropTracks((t) => t === msg.track_id);
          if (!self) addLog(msg.kind === 'screen' ? `${user} stopped sharing the screen` : `${user} unpublished ${msg.kind}`);
          break;
        case 'track_muted':
        case 'track_unmuted': {
          const t = p && p.tracks.get(msg.kind);
          if (t) t.muted = msg.type === 'track_muted';
          if (!self) addLog(`${user} ${msg.type === 'track_muted' ? 'muted' : 'unmuted'} ${msg.kind}`);
          break;
        }
        case 'media_blocked':
        case 'media_unblocked':
          for (const m of msg.media || []) {
            if (p) { if (msg.type === 'media_blocked') p.blocked.add(m); else p.blocked.delete(m); }
          }
          addLog(`${self ? 'Your' : `${user}'s`} ${(msg.media || []).join(' and ')} ${msg.type === 'media_blocked' ? 'was blocked' : 'was unblocked'} by a moderator`);
          break;
        case 'removed':
          this.removedReason = msg.reason || '';
          break;
        case 'room_dismissed':
          this.dismissedReason = msg.reason || '';
          break;
        case 'replaced':
          break;
        case 'custom_message':
          { const text = customText(msg); if (text) addLog(text); }
          return;
        default:
          return;
      }
      renderTiles();
    }

    dropTracks(match) {
      for (const [mid, trackId] of Object.entries(this.mapping)) if (match(trackId)) delete this.mapping[mid];
    }

    async answerOffer(msg) {
      if (!this.subPc) {
        const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
        pc.addEventListener('track', () => renderTiles());
        pc.addEventListener('connectionstatechange', () => this.onPcState('receiving', pc));
        this.subPc = pc;
      }
      const pc = this.subPc;
      this.mapping = { ...(msg.mapping || {}) };
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await iceGathered(pc);
      if (this.ended) return;
      const reply = await this.request({ type: 'answer', sdp: pc.localDescription.sdp });
      if (reply.mapping) this.mapping = { ...reply.mapping };
      renderTiles();
    }

    onPcState(label, pc) {
      if (['connected', 'failed', 'disconnected'].includes(pc.connectionState)) {
        this.clientEvent('transport', pc.connectionState === 'connected' ? 'up' : 'down');
      }
      if (pc.connectionState === 'failed' && !this.ended) {
        showNotice(`The ${label} media connection failed. Check that UDP can reach the server.`);
      }
      if (label === 'publishing' || label === 'receiving') updateStatus();
    }

    async getLocalMedia() {
      const video = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
      const attempts = [{ audio: true, video }, { audio: true }, { video }];
      let lastErr = null;
      for (const constraints of attempts) {
        try {
          return await navigator.mediaDevices.getUserMedia(constraints);
        } catch (err) {
          lastErr = err;
        }
      }
      throw lastErr || new Error('no camera or microphone');
    }

    async publish() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        showNotice('This browser cannot capture media here (a secure context is needed). You can still watch.', 'info');
        return;
      }
      let stream;
      try {
        stream = await this.getLocalMedia();
      } catch (err) {
        showNotice(`Camera and microphone are unavailable (${err.message}). You can still watch and listen.`, 'info');
        return;
      }
      if (this.ended) { stream.getTracks().forEach((t) => t.stop()); return; }
      this.localStream = stream;
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      pc.addEventListener('connectionstatechange', () => this.onPcState('publishing', pc));
      this.pubPc = pc;
      for (const track of stream.getTracks()) {
        const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
        preferCodecs(tr, track.kind);
        this.pubTransceivers[track.kind === 'audio' ? 'audio' : 'camera'] = tr;
      }
      renderTiles();
      renderControls();
      await this.negotiate('publish');
    }

    negotiate(type) {
      const run = async () => {
        const pc = this.pubPc;
        await pc.setLocalDescription(await pc.createOffer());
        await iceGathered(pc);
        if (this.ended) return;
        const tracks = {};
        for (const [kind, tr] of Object.entries(this.pubTransceivers)) {
          if (tr.mid != null && tr.sender.track && tr.currentDirection !== 'stopped') tracks[tr.mid] = kind;
        }
        const reply = await this.request({ type, sdp: pc.localDescription.sdp, tracks });
        await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
        this.published = reply.tracks || [];
      };
      this.pubQueue = this.pubQueue.then(run, run);
      return this.pubQueue;
    }

    async setMuted(kind, muted) {
      const tr = this.pubTransceivers[kind];
      if (!tr) return;
      if (tr.sender.track) tr.sender.track.enabled = !muted;
      this.muted[kind] = muted;
      renderControls();
      renderTiles();
      if (this.published.includes(`${this.userId}/${kind}`)) await this.request({ type: 'mute', kind, muted });
    }

    async startScreen() {
      if (!this.pubPc) throw new Error('join with a camera or microphone first');
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      const track = stream.getVideoTracks()[0];
      if (!track) throw new Error('no screen was chosen');
      if (this.ended) { track.stop(); return; }
      track.addEventListener('ended', () => { if (this.screenTrack === track) this.stopScreen().catch(reportError); });
      this.screenTrack = track;
      let tr = this.pubTransceivers.screen;
      if (tr) {
        await tr.sender.replaceTrack(track);
        tr.direction = 'sendonly';
      } else {
        tr = this.pubPc.addTransceiver(track, { direction: 'sendonly' });
        preferCodecs(tr, 'video');
        this.pubTransceivers.screen = tr;
      }
      renderControls();
      renderTiles();
      await this.negotiate('renegotiate');
      if (!this.published.includes(`${this.userId}/screen`)) {
        await this.stopScreen();
        throw new Error('the server did not accept the screen share');
      }
    }

    async stopScreen() {
      const track = this.screenTrack;
      this.screenTrack = null;
      if (track) track.stop();
      const tr = this.pubTransceivers.screen;
      if (tr) await tr.sender.replaceTrack(null);
      renderControls();
      renderTiles();
      if (this.published.includes(`${this.userId}/screen`)) {
        this.published = this.published.filter((t) => t !== `${this.userId}/screen`);
        await this.request({ type: 'unpublish', kind: 'screen' });
      }
    }

    leave() {
      this.send({ type: 'leave' });
      // The server closes with 4000; do not wait for ever if it does not.
      setTimeout(() => { if (!this.ended) this.ws.close(1000); }, 2000);
    }

    onClose(code, reason) {
      if (this.ended) return;
      this.ended = true;
      clearTimeout(this.recordingTimer);
      clearTimeout(this.telemetryTimer);
      for (const { reject } of this.pending.values()) reject(new Error(`connection closed (${code})`));
      this.pending.clear();
      for (const pc of [this.pubPc, this.subPc]) if (pc) pc.close();
      if (this.localStream) this.localStream.getTracks().forEach((t) => t.stop());
      if (this.screenTrack) this.screenTrack.stop();
      ended(this, code, reason);
    }
  }

  // -------------------------------------------------------------- lifecycle

  function updateStatus() {
    const s = session;
    if (!s || ui.phase !== 'joined') return;
    const state = (pc) => (pc ? pc.connectionState : 'idle');
    setStatus(`In room ${s.settings.room_id} as ${s.userId}. Sending: ${state(s.pubPc)}, receiving: ${state(s.subPc)}`);
  }

  function ended(s, code, reason) {
    if (session !== s) return;
    ui.closeCode = code;
    let text = CLOSE_MESSAGES[code];
    if (code === 4001) text += s.removedReason || reason ? `: ${s.removedReason || reason}.` : '.';
    if (code === 4002) text += s.dismissedReason || reason ? `: ${s.dismissedReason || reason}.` : '.';
    if (!text) text = `The connection to the server was lost (code ${code}${reason ? `, ${reason}` : ''}).`;
    const retry = ui.phase === 'joined' && RECONNECT_CODES.has(code);
    if (ui.phase === 'joined') {
      addLog(text);
      if (code === 4000) showNotice(text, 'info'); else if (!retry) showNotice(text);
    }
    setPhase('ended');
    setStatus('Not connected');
    session = null;
    if (board) board.detach();
    if (retry) rejoin(s.settings, 1);
  }

  function rejoin(settings, attempt) {
    showNotice(`Reconnecting (attempt ${attempt} of ${RECONNECT_ATTEMPTS})…`, 'info');
    setTimeout(async () => {
      if (session) return; // the user joined again meanwhile
      await join(settings);
      if (!session && attempt < RECONNECT_ATTEMPTS) rejoin(settings, attempt + 1);
    }, RECONNECT_DELAY_MS * attempt);
  }

  function reportError(err) {
    showNotice(err && err.message ? err.message : String(err));
  }

  async function join(settings) {
    if (session) return;
    clearNotice();
    ui.closeCode = null;
    setPhase('joining');
    setStatus('Joining…');
    const s = new Session(settings);
    session = s;
    try {
      await s.open();
    } catch (err) {
      if (session === s) session = null;
      s.ended = true;
      if (s.ws) s.ws.close();
      const text = err.code === 'unauthorized'
        ? `The server refused the token: ${err.message}.`
        : `Could not join: ${err.message}.`;
      showNotice(text);
      addLog(text);
      setPhase('idle');
      setStatus('Not connected');
      return;
    }
    setPhase('joined');
    s.pollRecording();
    if (board) board.attach(s);
    addLog(`You joined room ${settings.room_id} as ${settings.user_id}`);
    const others = [...s.participants.keys()].filter((u) => u !== s.userId);
    if (others.length) addLog(`Already here: ${others.join(', ')}`);
    updateStatus();
    renderTiles();
    renderControls();
    try {
      await s.publish();
    } catch (err) {
      if (!s.ended) showNotice(`Could not publish: ${err.message}`);
    }
    updateStatus();
  }

  // ---------------------------------------------------------------- the form

  const FIELDS = { app_id: 'app-id', room_id: 'room-id', user_id: 'user-id', token: 'token' };

  function readForm() {
    const out = {};
    for (const [name, id] of Object.entries(FIELDS)) out[name] = $(id).value.trim();
    return out;
  }

  function prefillForm() {
    const params = new URLSearchParams(location.search);
    const aliases = { app_id: ['app_id', 'app', 'sdkappid'], room_id: ['room_id', 'room'], user_id: ['user_id', 'user'] };
    for (const [name, keys] of Object.entries(aliases)) {
      const fromUrl = keys.map((k) => params.get(k)).find((v) => v);
      const saved = localStorage.getItem(`roomcast.${name}`);
      const value = fromUrl || saved;
      if (value) $(FIELDS[name]).value = value;
    }
  }

  function remember(settings) {
    try {
      for (const name of ['app_id', 'room_id', 'user_id']) localStorage.setItem(`roomcast.${name}`, settings[name]);
    } catch { /* storage may be disabled */ }
  }

  async function getDevToken() {
    const { app_id, room_id, user_id } = readForm();
    if (!app_id || !room_id || !user_id) {
      showNotice('Fill in app id, room and user first.');
      return;
    }
    const btn = $('dev-token');
    btn.disabled = true;
    try {
      const resp = await fetch('/api/dev/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ app_id, room_id, user_id }),
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok || !body.token) throw new Error(body.error || `HTTP ${resp.status}`);
      $('token').value = body.token;
      clearNotice();
      addLog(`Got a dev token for ${user_id}`);
    } catch (err) {
      showNotice(`Could not get a dev token: ${err.message}.`);
    } finally {
      btn.disabled = false;
    }
  }

  async function loadConfig() {
    try {
      const resp = await fetch('/api/config', { cache: 'no-store' });
      if (resp.ok) config = { ...config, ...(await resp.json()) };
    } catch { /* keep the defaults */ }
    setPhase(ui.phase);
  }

  function bind() {
    $('join-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const settings = readForm();
      remember(settings);
      join(settings).catch(reportError);
    });
    $('dev-token').addEventListener('click', () => { getDevToken(); });
    for (const id of ['app-id', 'user-id']) $(id).addEventListener('input', renderTokenHint);
    $('toggle-mic').addEventListener('click', () => {
      if (session) session.setMuted('audio', !session.muted.audio).catch(reportError);
    });
    $('toggle-camera').addEventListener('click', () => {
      if (session) session.setMuted('camera', !session.muted.camera).catch(reportError);
    });
    $('toggle-screen').addEventListener('click', () => {
      if (!session) return;
      const action = session.screenTrack ? session.stopScreen() : session.startScreen();
      action.catch((err) => { if (err.name !== 'NotAllowedError') reportError(err); });
    });
    $('leave').addEventListener('click', () => { if (session) session.leave(); });
    window.addEventListener('pagehide', () => { if (session) session.send({ type: 'leave', reason: 'page closed' }); });
  }

  // ------------------------------------------------------------ test hook

  async function inboundStats() {
    const s = session;
    if (!s || !s.subPc) return [];
    const report = await s.subPc.getStats();
    const codecs = new Map();
    report.forEach((r) => { if (r.type === 'codec') codecs.set(r.id, r.mimeType); });
    const out = [];
    report.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      out.push({
        kind: r.kind,
        mid: r.mid ?? null,
        trackId: (r.mid != null && s.mapping[r.mid]) || null,
        codec: codecs.get(r.codecId) || null,
        packetsReceived: r.packetsReceived || 0,
        bytesReceived: r.bytesReceived || 0,
        framesDecoded: r.framesDecoded || 0,
        frameWidth: r.frameWidth || 0,
        frameHeight: r.frameHeight || 0,
        totalSamplesReceived: r.totalSamplesReceived || 0,
        audioLevel: r.audioLevel || 0,
      });
    });
    return out;
  }

  window.roomcast = {
    get state() {
      const s = session;
      return {
        phase: ui.phase,
        notice: ui.notice,
        closeCode: ui.closeCode,
        devMode: Boolean(config.dev_mode),
        recording: ui.recording,
        tokenHint: $('token-hint').textContent,
        userId: s ? s.userId : null,
        sessionId: s ? s.sessionId : null,
        participants: s ? [...s.participants.keys()].filter((u) => u !== s.userId) : [],
        mapping: s ? { ...s.mapping } : {},
        telemetrySent: s ? s.telemetrySent : 0,
        published: s ? [...s.published] : [],
        muted: s ? { ...s.muted } : { audio: false, camera: false },
        sharing: Boolean(s && s.screenTrack),
        tiles: [...document.querySelectorAll('#tiles .tile')].map((el) => el.dataset.key),
        log: log.map((e) => e.text),
      };
    },
    stats: inboundStats,
    get board() { return board ? board.snapshot() : null; },
    boardPixel(x, y) { return board ? board.pixel(x, y) : null; },
  };

  bind();
  if (window.roomcastWhiteboard) board = new window.roomcastWhiteboard.WhiteboardPanel($('board-panel'));
  prefillForm();
  setPhase('idle');
  loadConfig();
})();
