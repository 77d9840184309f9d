// roomcast whiteboard panel: the room's board over the signalling connection (docs/whiteboard.md,
// protocol version 1). The replay follows roomcast.domain.whiteboard.Board; drawing follows the
// server renderer (roomcast.media.whiteboard): same page ratio, widths in thousandths of the page
// width, round caps and joins, the eraser clearing the drawing layer only.
'use strict';

(() => {
  const FIRST_PAGE = '1';
  const SHAPES = new Set(['pen', 'line', 'rect', 'ellipse', 'text', 'eraser']);
  const RATIO = 16 / 9;
  const DRAFT_TTL_MS = 3000; // a draft not updated for this long is dropped (its author went away)
  const DRAFT_EVERY_MS = 80;

  // ------------------------------------------------------------------ the board (replay)

  class Board {
    constructor() {
      this.pages = new Map([[FIRST_PAGE, { background: null, items: [] }]]);
      this.current = FIRST_PAGE;
      this.seq = 0;
      this.undone = new Set();
      this.done = new Map(); // user -> op ids they may undo
      this.redo = new Map();
    }

    apply(op) {
      this.seq = Math.max(this.seq, op.seq || this.seq + 1);
      const user = op.user_id || '';
      const kind = op.kind;
      if (SHAPES.has(kind) || kind === 'clear') {
        const page = this.pages.get(op.page);
        if (!page) return;
        page.items.push(op);
        if (!this.done.has(user)) this.done.set(user, []);
        this.done.get(user).push(op.op_id);
        this.redo.delete(user);
      } else if (kind === 'undo') {
        const done = this.done.get(user) || [];
        if (done.length) {
          const id = done.pop();
          this.undone.add(id);
          if (!this.redo.has(user)) this.redo.set(user, []);
          this.redo.get(user).push(id);
        }
      } else if (kind === 'redo') {
        const redo = this.redo.get(user) || [];
        if (redo.length) {
          const id = redo.pop();
          this.undone.delete(id);
          if (!this.done.has(user)) this.done.set(user, []);
          this.done.get(user).push(id);
        }
      } else if (kind === 'page_add') {
        if (!this.pages.has(op.page)) {
          this.pages.set(op.page, { background: op.url || null, items: [] });
          this.current = op.page;
        }
      } else if (kind === 'page_switch') {
        if (this.pages.has(op.page)) this.current = op.page;
      } else if (kind === 'background') {
        const page = this.pages.get(op.page);
        if (page) page.background = op.url || null;
      }
    }

    visible(pageId) {
      const page = this.pages.get(pageId || this.current);
      if (!page) return [];
      const live = page.items.filter((i) => !this.undone.has(i.op_id));
      let start = 0;
      live.forEach((item, n) => { if (item.kind === 'clear') start = n + 1; });
      return live.slice(start);
    }
  }

  // ------------------------------------------------------------------ drawing

  function drawShape(ctx, op, w, h) {
    const xy = (p) => [p[0] * w, p[1] * h];
    const len = (v) => (v / 1000) * w;
    const pts = op.points.map(xy);
    ctx.save();
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = op.color || '#000000';
    ctx.fillStyle = op.color || '#000000';
    if (op.kind === 'eraser') {
      ctx.globalCompositeOperation = 'destination-out';
      ctx.strokeStyle = '#000';
      ctx.fillStyle = '#000';
    }
    if (op.kind === 'pen' || op.kind === 'line' || op.kind === 'eraser') {
      const width = Math.max(len(op.width), 0.5);
      if (pts.length === 1) {
        ctx.beginPath();
        ctx.arc(pts[0][0], pts[0][1], width / 2, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.lineWidth = width;
        ctx.beginPath();
        ctx.moveTo(...pts[0]);
        for (const p of pts.slice(1)) ctx.lineTo(...p);
        ctx.stroke();
      }
    } else if (op.kind === 'rect' || op.kind === 'ellipse') {
      const [[x0, y0], [x1, y1]] = pts;
      const x = Math.min(x0, x1); const y = Math.min(y0, y1);
      const bw = Math.abs(x1 - x0); const bh = Math.abs(y1 - y0);
      ctx.lineWidth = Math.max(len(op.width), 0.5);
      ctx.beginPath();
      if (op.kind === 'rect') {
        ctx.lineJoin = 'miter';
        ctx.rect(x, y, bw, bh);
      } else {
        ctx.ellipse(x + bw / 2, y + bh / 2, bw / 2, bh / 2, 0, 0, 2 * Math.PI);
      }
      if (op.fill) { ctx.fillStyle = op.fill; ctx.fill(); }
      ctx.stroke();
    } else if (op.kind === 'text') {
      const size = len(op.size);
      ctx.font = `${size}px sans-serif`;
      ctx.textBaseline = 'top';
      String(op.text).split('\n').forEach((line, n) => ctx.fillText(line, pts[0][0], pts[0][1] + n * 1.2 * size));
    }
    ctx.restore();
  }

  // ------------------------------------------------------------------ the panel

  class WhiteboardPanel {
    constructor(root) {
      this.root = root;
      this.canvas = root.querySelector('canvas');
      this.layer = document.createElement('canvas');
      this.board = new Board();
      this.waiting = new Map(); // seq -> op that came early
      this.session = null;
      this.draft = null; // the shape being drawn, not sent yet
      this.drafts = new Map(); // user -> {op, at}: shapes others are drawing now
      this.lastDraftSent = 0;
      this.images = new Map(); // url -> HTMLImageElement (loaded or not)
      this.tool = 'pen';
      this.error = '';
      this.bind();
      new ResizeObserver(() => this.render()).observe(this.canvas);
    }

    $(sel) { return this.root.querySelector(sel); }

    attach(session) {
      this.session = session;
      this.board = new Board();
      this.waiting.clear();
      this.error = '';
      this.root.hidden = false;
      this.sync().catch((err) => this.fail(err));
    }

    detach() {
      this.session = null;
    }

    async sync() {
      for (;;) {
        const reply = await this.session.request({ type: 'wb_sync', since: this.board.seq });
        this.receive(reply.ops || []);
        if (!reply.more) break;
      }
    }

    receiveDraft(user, op) {
      if (!this.session || user === this.session.userId) return;
      this.drafts.set(user, { op, at: Date.now() });
      this.render();
      setTimeout(() => this.render(), DRAFT_TTL_MS + 50);
    }

    receive(ops) {
      const done = new Set(ops.map((o) => o.op_id));
      for (const [user, d] of this.drafts) if (done.has(d.op.op_id)) this.drafts.delete(user);
      for (const op of ops) if (op.seq > this.board.seq) this.waiting.set(op.seq, op);
      while (this.waiting.has(this.board.seq + 1)) {
        const op = this.waiting.get(this.board.seq + 1);
        this.waiting.delete(this.board.seq + 1);
        this.board.apply(op);
      }
      this.renderPages();
      this.render();
    }

    fail(err) {
      this.error = err && err.message ? err.message : String(err);
      const p = this.$('.wb-error');
      p.textContent = this.error;
      p.hidden = false;
    }

    async send(fields) {
      if (!this.session) return null;
      const op = { op_id: crypto.randomUUID(), ...fields };
      if (!('page' in op) && op.kind !== 'undo' && op.kind !== 'redo') op.page = this.board.current;
      try {
        const ack = await this.session.request({ type: 'wb_op', op });
        this.$('.wb-error').hidden = true;
        return ack;
      } catch (err) {
        this.fail(err);
        return null;
      }
    }

    // -- pointer input

    point(ev) {
      const r = this.canvas.getBoundingClientRect();
      const clamp = (v) => Math.min(1.5, Math.max(-0.5, v));
      return [clamp((ev.clientX - r.left) / r.width), clamp((ev.clientY - r.top) / r.height)].map((v) => Math.round(v * 1e5) / 1e5);
    }

    style() {
      return { color: this.$('.wb-color').value, width: Number(this.$('.wb-width').value) || 4 };
    }

    bind() {
      this.root.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => {
        this.tool = b.dataset.tool;
        this.root.querySelectorAll('[data-tool]').forEach((o) => o.setAttribute('aria-pressed', String(o === b)));
      }));
      this.$('.wb-undo').addEventListener('click', () => this.send({ kind: 'undo' }));
      this.$('.wb-redo').addEventListener('click', () => this.send({ kind: 'redo' }));
      this.$('.wb-clear').addEventListener('click', () => this.send({ kind: 'clear' }));
      this.$('.wb-add-page').addEventListener('click', () => {
        let n = this.board.pages.size + 1;
        while (this.board.pages.has(String(n))) n += 1;
        this.send({ kind: 'page_add', page: String(n) });
      });
      this.$('.wb-pages').addEventListener('change', (ev) => this.send({ kind: 'page_switch', page: ev.target.value }));
      this.$('.wb-bg-form').addEventListener('submit', (ev) => {
        ev.preventDefault();
        const url = this.$('.wb-bg').value.trim();
        this.send({ kind: 'background', url: url || null });
      });
      const c = this.canvas;
      c.addEventListener('pointerdown', (ev) => {
        if (!this.session || ev.button !== 0) return;
        const p = this.point(ev);
        if (this.tool === 'text') {
          const text = this.$('.wb-text').value;
          if (text.trim()) this.send({ kind: 'text', points: [p], text, size: Number(this.$('.wb-size').value) || 40, color: this.style().color });
          return;
        }
        c.setPointerCapture(ev.pointerId);
        const { color, width } = this.style();
        this.draft = { kind: this.tool, points: [p], color, width, op_id: crypto.randomUUID(), page: this.board.current };
        if (this.tool === 'eraser') { this.draft.width = width * 5; delete this.draft.color; }
        if (this.tool === 'line' || this.tool === 'rect' || this.tool === 'ellipse') this.draft.points = [p, p];
      });
      c.addEventListener('pointermove', (ev) => {
        if (!this.draft) return;
        const p = this.point(ev);
        if (this.draft.kind === 'pen' || this.draft.kind === 'eraser') {
          if (this.draft.points.length < 5000) this.draft.points.push(p);
        } else {
          this.draft.points[1] = p;
        }
        const now = Date.now();
        if (this.session && now - this.lastDraftSent >= DRAFT_EVERY_MS) {
          this.lastDraftSent = now;
          this.session.send({ type: 'wb_draft', op: this.draft });
        }
        this.render();
      });
      const finish = () => {
        const d = this.draft;
        this.draft = null;
        if (!d) return;
        this.send(d);
        this.render();
      };
      c.addEventListener('pointerup', finish);
      c.addEventListener('pointercancel', () => { this.draft = null; this.render(); });
    }

    renderPages() {
      const select = this.$('.wb-pages');
      const ids = [...this.board.pages.keys()];
      if ([...select.options].map((o) => o.value).join('\u0000') !== ids.join('\u0000')) {
        select.replaceChildren(...ids.map((id) => new Option(`Page ${id}`, id)));
      }
      select.value = this.board.current;
      const bg = this.board.pages.get(this.board.current).background;
      if (document.activeElement !== this.$('.wb-bg')) this.$('.wb-bg').value = bg || '';
    }

    image(url) {
      if (!this.images.has(url)) {
        const img = new Image();
        img.crossOrigin = 'anonymous';
        img.addEventListener('load', () => this.render());
        img.src = url;
        this.images.set(url, img);
      }
      const img = this.images.get(url);
      return img.complete && img.naturalWidth ? img : null;
    }

    render() {
      const c = this.canvas;
      const scale = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(c.clientWidth * scale));
      const h = Math.max(1, Math.round(w / RATIO));
      if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
      if (this.layer.width !== w || this.layer.height !== h) { this.layer.width = w; this.layer.height = h; }
      const ctx = c.getContext('2d');
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, w, h);
      const page = this.board.pages.get(this.board.current);
      const img = page && page.background ? this.image(page.background) : null;
      if (img) {
        const s = Math.min(w / img.naturalWidth, h / img.naturalHeight);
        const iw = img.naturalWidth * s; const ih = img.naturalHeight * s;
        ctx.drawImage(img, (w - iw) / 2, (h - ih) / 2, iw, ih);
      }
      const lc = this.layer.getContext('2d');
      lc.clearRect(0, 0, w, h);
      for (const op of this.board.visible()) drawShape(lc, op, w, h);
      const now = Date.now();
      for (const [user, d] of this.drafts) {
        if (now - d.at > DRAFT_TTL_MS) this.drafts.delete(user);
        else if (d.op.page === this.board.current) drawShape(lc, d.op, w, h);
      }
      if (this.draft) drawShape(lc, this.draft, w, h);
      ctx.drawImage(this.layer, 0, 0);
    }

    // -- test hook

    snapshot() {
      return {
        seq: this.board.seq,
        current: this.board.current,
        pages: [...this.board.pages.keys()],
        visible: this.board.visible().map((o) => ({ kind: o.kind, user_id: o.user_id, seq: o.seq, color: o.color || null })),
        drafts: Object.fromEntries([...this.drafts].map(([u, d]) => [u, { kind: d.op.kind, points: d.op.points.length }])),
        error: this.error,
      };
    }

    pixel(x, y) {
      const c = this.canvas;
      const d = c.getContext('2d').getImageData(Math.floor(x * c.width), Math.floor(y * c.height), 1, 1).data;
      return [d[0], d[1], d[2]];
    }
  }

  window.roomcastWhiteboard = { Board, WhiteboardPanel, drawShape };
})();
