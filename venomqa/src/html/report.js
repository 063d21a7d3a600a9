// venomqa's HTML report: renders the report's JSON (the element #venomqa-data) as a journey,
// an exploration or a cost report, after <body data-kind>. No library, no network. Content
// is built when it is first shown: a <details> builds its body when first opened, and long
// lists come in pages of PAGE.
'use strict';
(function () {
  const started = performance.now();
  const PAGE = 200;
  const data = JSON.parse(document.getElementById('venomqa-data').textContent);
  const app = document.getElementById('app');

  // ---- building blocks -------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }
  // A collapsible node whose body is built on first open.
  function lazy(summary, build, opts) {
    opts = opts || {};
    const d = h('details', { class: opts.class, id: opts.id });
    d.append(h('summary', {}, summary));
    let built = false;
    d.addEventListener('toggle', () => {
      if (d.open && !built) {
        built = true;
        d.append(h('div', { class: 'body' }, build()));
      }
    });
    if (opts.open) d.open = true;
    return d;
  }
  // A list rendered PAGE items at a time, with a button for the next page.
  function paged(items, render) {
    const box = h('div', { class: 'list' });
    const more = h('button', { class: 'more' });
    let i = 0;
    function next() {
      const end = Math.min(items.length, i + PAGE);
      const frag = document.createDocumentFragment();
      for (; i < end; i++) frag.append(render(items[i], i));
      box.insertBefore(frag, more);
      if (i >= items.length) more.remove();
      else more.textContent = 'show ' + Math.min(PAGE, items.length - i) + ' more (' + (items.length - i) + ' left)';
    }
    more.addEventListener('click', next);
    box.append(more);
    next();
    return box;
  }
  const MARK = { passed: '✓', failed: '✗', skipped: '○' };
  const mark = (status) => h('span', { class: 'mark ' + status, title: status }, MARK[status] || '·');
  function ms(x) {
    if (x == null) return '';
    if (x >= 1000) return (x / 1000).toFixed(2) + ' s';
    if (x >= 1) return x.toFixed(1) + ' ms';
    return Math.round(x * 1000) + ' µs';
  }
  function us(x) { return ms(x / 1000); }
  const time = (x) => h('span', { class: 'time' }, ms(x));
  function pretty(text) {
    if (!text) return '';
    const t = text.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
      try { return JSON.stringify(JSON.parse(t), null, 2); } catch (e) { /* not JSON */ }
    }
    return text;
  }
  function stat(label, value) { return h('span', {}, label + ' ', h('b', {}, value)); }
  function header(title, passed, stats, description) {
    document.title = title + (passed ? ' passed' : ' FAILED');
    return [
      h('h1', {}, title, h('span', { class: 'badge ' + (passed ? 'passed' : 'failed') }, passed ? 'passed' : 'FAILED')),
      description ? h('p', { class: 'desc' }, description) : null,
      h('div', { class: 'stats' }, stats),
    ].filter((e) => e);
  }

  // ---- requests, responses and database changes ----------------------------------------
  function exchange(x) {
    const r = x.response || {};
    const status = r.status != null
      ? h('span', { class: 'status-' + String(r.status)[0] }, String(r.status))
      : h('span', { class: 'status-5' }, 'no response');
    const parts = [];
    if (x.request_headers && x.request_headers.length) {
      parts.push(h('h3', {}, 'request headers'), headers(x.request_headers));
    }
    if (x.request_body) parts.push(h('h3', {}, 'request body'), h('pre', {}, pretty(x.request_body)));
    if (r.error != null) parts.push(h('h3', {}, 'error'), h('pre', {}, r.error));
    if (r.headers && r.headers.length) parts.push(h('h3', {}, 'response headers'), headers(r.headers));
    if (r.body) parts.push(h('h3', {}, 'response body'), h('pre', {}, pretty(r.body)));
    return h('div', { class: 'exchange' },
      lazy(h('span', { class: 'line' }, x.method + ' ' + x.url + ' → ', status, time(x.duration_ms)),
        () => parts.length ? parts : h('p', { class: 'empty' }, 'no headers, no body')));
  }
  function headers(list) {
    return h('table', {}, list.map(([n, v]) => h('tr', {}, h('th', {}, n), h('td', {}, v))));
  }
  function diff(d) {
    if (!d) return h('p', { class: 'empty' }, 'no database changes recorded');
    if (d.error != null) return h('p', { class: 'empty' }, 'database changes not available: ' + d.error);
    const lines = [h('div', {}, d.summary)];
    for (const t of d.tables) {
      lines.push(h('div', {}, h('b', {}, t.table), ': +' + t.inserted + ' ~' + t.updated + ' -' + t.deleted));
      for (const r of t.rows) {
        const sign = r.kind === 'inserted' ? '+' : r.kind === 'deleted' ? '-' : '~';
        lines.push(h('div', { class: r.kind }, '  ' + sign + ' ' + r.kind + ' ' + r.key + (r.cascade ? ' (cascade)' : '')));
        for (const c of r.columns) {
          const change = r.kind === 'inserted' ? c.new : r.kind === 'deleted' ? c.old : c.old + ' → ' + c.new;
          lines.push(h('div', { class: 'col' }, c.column + ': ' + change));
        }
      }
      if (t.omitted) lines.push(h('div', { class: 'col' }, '… ' + t.omitted + ' more rows not shown'));
    }
    return h('div', { class: 'diff' }, lines);
  }

  // ---- a journey ---------------------------------------------------------------------
  function journey(j) {
    const branches = j.items.filter((i) => i.type === 'branch');
    const mainSteps = j.items.filter((i) => i.type === 'step').map((i) => i.step);
    const stats = [
      branches.length
        ? stat('paths', j.paths.passed + ' passed, ' + j.paths.failed + ' failed, ' + j.paths.skipped + ' skipped')
        : stat('steps', mainSteps.filter((s) => s.status === 'passed').length + ' of ' + mainSteps.length + ' passed'),
      stat('branches', branches.length),
      stat('time', ms(j.duration_ms)),
      stat('rollbacks', j.rollbacks + ' (' + ms(j.rollback_ms) + ')'),
      stat('cleanup', ms(j.cleanup_ms)),
    ];
    app.append(...header('journey ' + j.journey, j.success, stats, j.description));

    // Where each failure is in the tree, to open it from the list.
    const failures = [];
    j.items.forEach((item, i) => {
      if (item.type === 'step' && item.step.status === 'failed') {
        failures.push({ where: j.journey, step: item.step, ids: ['s-' + i] });
      } else if (item.type === 'branch') {
        item.path_results.forEach((p, k) => p.step_results.forEach((s, n) => {
          if (s.status === 'failed') {
            failures.push({ where: item.checkpoint_name + ' › ' + p.path_name, step: s, path: p.path_name,
              ids: ['b-' + i, 'p-' + i + '-' + k, 'p-' + i + '-' + k + '-s' + n] });
          }
        }));
      }
    });
    if (failures.length) {
      app.append(h('h2', { id: 'failures' }, failures.length + (failures.length === 1 ? ' failure' : ' failures')));
      failures.forEach((f, n) => {
        const issue = j.issues.find((x) => x.step === f.step.name && (x.path || null) === (f.path || null));
        const last = f.step.exchanges[f.step.exchanges.length - 1];
        app.append(h('div', { class: 'card failure' },
          h('div', { class: 'where' }, (n + 1) + ') ' + f.where + ' › step ' + f.step.name),
          h('div', { class: 'msg' }, f.step.error || ''),
          last ? h('div', { class: 'hint' }, 'last request: ' + last.method + ' ' + last.url + ' → ' +
            (last.response.status != null ? last.response.status : 'no response')) : null,
          issue ? h('div', { class: 'hint' }, 'suggestion: ' + issue.suggestion) : null,
          h('button', { class: 'link', onclick: () => reveal(f.ids) }, 'show it in the tree')));
      });
    }

    app.append(h('h2', {}, 'Steps'));
    const tree = h('div', { id: 'tree' });
    const filter = { status: 'all', text: '' };
    const buttons = ['all', 'failed', 'passed', 'skipped'].map((s) =>
      h('button', { class: s === 'all' ? 'on' : '', 'data-filter': s, onclick: (e) => {
        filter.status = s;
        buttons.forEach((b) => b.classList.toggle('on', b === e.currentTarget));
        apply();
      } }, s));
    const search = h('input', { type: 'search', placeholder: 'filter by path or step name', oninput: (e) => {
      filter.text = e.target.value.toLowerCase();
      apply();
    } });
    app.append(h('div', { class: 'toolbar' }, buttons, search), tree);
    if (j.main_diff) {
      app.append(h('h2', {}, 'Database changes since the journey began'), diff(j.main_diff));
    }

    // Each row keeps its status and the names it matches, for the filter.
    const rows = [];
    function keep(el, status, names) { rows.push({ el, status, names: names.join('\n').toLowerCase() }); return el; }
    function apply() {
      for (const r of rows) {
        const show = (filter.status === 'all' || r.status === filter.status) &&
          (!filter.text || r.names.includes(filter.text));
        r.el.classList.toggle('hidden', !show);
      }
    }
    function step(s, id) {
      return keep(lazy([mark(s.status), s.name, time(s.duration_ms),
        s.attempts > 1 ? h('span', { class: 'time' }, s.attempts + ' attempts') : null],
      () => [
        s.error ? h('div', { class: 'card' + (s.status === 'failed' ? '' : ' skipped') },
          s.failure_kind ? h('div', { class: 'where' }, s.failure_kind) : null,
          h('div', { class: 'msg' }, s.error)) : null,
        s.exchanges.length ? s.exchanges.map(exchange) : h('p', { class: 'empty' }, 'no request sent'),
      ], { class: 'step ' + s.status, id }), s.status, [s.name]);
    }
    function path(p, i, k) {
      const id = 'p-' + i + '-' + k;
      return keep(lazy([mark(p.status), 'path ' + p.path_name, h('span', { class: 'time' },
        p.step_results.length + ' steps'), time(p.duration_ms)],
      () => [
        p.skip_reason ? h('p', { class: 'empty' }, 'skipped: ' + p.skip_reason) : null,
        paged(p.step_results, (s, n) => step(s, id + '-s' + n)),
        p.diff ? [h('h3', {}, 'database changes of this path'), diff(p.diff)] : null,
      ], { class: 'path ' + p.status, id }), p.status, [p.path_name, ...p.step_results.map((s) => s.name)]);
    }
    function item(it, i) {
      if (it.type === 'step') return step(it.step, 's-' + i);
      if (it.type === 'checkpoint') {
        return h('div', { class: 'row checkpoint' }, h('span', { class: 'mark' }, '◆'),
          'checkpoint ' + it.name + (it.made ? '' : ' (not made)'));
      }
      // Failed paths first, each keeping its number.
      const order = it.path_results.map((p, k) => [p, k]);
      order.sort((a, b) => (a[0].status === 'failed' ? 0 : 1) - (b[0].status === 'failed' ? 0 : 1) || a[1] - b[1]);
      return lazy([mark(it.status), 'branch from checkpoint ' + it.checkpoint_name,
        h('span', { class: 'time' }, it.path_results.length + ' paths'), time(it.duration_ms)],
      () => paged(order, ([p, k]) => path(p, i, k)),
      { class: 'branch ' + it.status, id: 'b-' + i, open: it.status === 'failed' });
    }
    tree.append(paged(j.items, item));
    // Opens the branch, path and step of a failure (building each on the way) and scrolls to it.
    function reveal(ids) {
      let last = null;
      for (const id of ids) {
        let el = document.getElementById(id);
        // A page not shown yet: show the pages until the element exists.
        while (!el && last) {
          const more = last.querySelector(':scope > .body .more');
          if (!more) break;
          more.click();
          el = document.getElementById(id);
        }
        if (!el) break;
        el.classList.remove('hidden');
        if (el.tagName === 'DETAILS' && !el.open) {
          el.open = true;
          el.dispatchEvent(new Event('toggle'));
        }
        last = el;
      }
      if (last) last.scrollIntoView({ block: 'start' });
    }
  }

  // ---- an exploration ------------------------------------------------------------------
  function exploration(x) {
    const stats = [
      stat('states', x.states), stat('steps', x.steps), stat('replays', x.replays),
      stat('time', ms(x.duration_ms)), stat('states/s', Math.round(x.states_per_second)),
      stat('rollbacks', x.rollbacks + ' (' + ms(x.rollback_ms) + ')'),
      stat('strategy', x.strategy + ', depth ≤ ' + x.max_depth),
      stat('stopped', x.stopped_because),
    ];
    app.append(...header('exploration ' + x.world, x.success, stats));
    if (x.fault) {
      app.append(h('div', { class: 'card' }, h('div', { class: 'where' }, 'fault: ' + x.fault.kind),
        h('div', { class: 'msg' }, x.fault.message),
        x.fault.sequence.length ? h('div', { class: 'hint' }, 'after ' + x.fault.sequence.join(' → ')) : null));
    }
    if (x.cleanup && !x.cleanup.ok) {
      app.append(h('div', { class: 'card' }, h('div', { class: 'where' }, 'the final rollback failed'),
        h('div', { class: 'msg' }, x.cleanup.error)));
    }
    for (const w of x.warnings || []) app.append(h('div', { class: 'card skipped' }, h('div', { class: 'msg' }, w)));

    app.append(h('h2', { id: 'violations' }, x.violations.length
      ? x.violations.length + (x.violations.length === 1 ? ' violation' : ' violations') : 'No violation'));
    x.violations.forEach((v, n) => app.append(violation(v, n)));

    app.append(h('h2', {}, 'State graph'));
    app.append(h('div', { class: 'legend' },
      h('span', {}, h('i', { style: 'background:#57606a' }), 'state'),
      h('span', {}, h('i', { style: 'background:#cf222e' }), 'violation'),
      h('span', {}, h('i', { style: 'background:#f59e0b' }), 'shrunk path of the first violation'),
      h('span', {}, 'columns are depths; hover a state for its path')));
    const holder = h('div', { id: 'graph' });
    app.append(holder);
    graph(holder, x);

    app.append(h('h2', {}, 'Coverage'));
    const c = x.coverage;
    app.append(h('div', { class: 'stats' }, stat('actions run', c.actions_run + ' of ' + c.actions),
      stat('never run', c.never_run.length ? c.never_run.join(', ') : 'none')));
    app.append(h('div', { class: 'chips' }, Object.entries(c.outcomes).map(([k, n]) =>
      h('span', { class: 'chip' + (k[0] === '5' || k === 'error' ? ' fail' : '') }, k + ' ×' + n))));
    app.append(h('table', { id: 'coverage' },
      h('tr', {}, h('th', {}, 'action'), h('th', { class: 'num' }, 'runs'), h('th', {}, 'outcomes'),
        h('th', { class: 'num' }, 'errors'), h('th', {}, 'first error')),
      c.per_action.map((a) => h('tr', {}, h('td', {}, a.name), h('td', { class: 'num' }, a.runs),
        h('td', {}, Object.entries(a.outcomes).map(([k, n]) => k + ' ×' + n).join(', ')),
        h('td', { class: 'num' }, a.errors), h('td', {}, a.first_error || '')))));
  }
  function violation(v, n) {
    const seq = (list) => h('div', { class: 'chips' }, list.length ? list.map((a, i) =>
      [i ? h('span', { class: 'arrow' }, '→') : null, h('span', { class: 'chip' }, a)]) : h('span', { class: 'empty' }, 'the state after setup'));
    const code = h('pre', {}, v.rust);
    const copy = h('button', { onclick: () => {
      const done = () => { copy.textContent = 'copied'; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(v.rust).then(done, () => { select(code); done(); });
      } else { select(code); done(); }
    } }, 'copy');
    return h('div', { class: 'card violation', id: 'v-' + n },
      h('div', { class: 'where' }, 'invariant ' + v.invariant + ' ', h('span', { class: 'badge failed' }, v.severity),
        h('span', { class: 'time' }, v.occurrences + (v.occurrences === 1 ? ' occurrence' : ' occurrences'))),
      h('div', { class: 'msg' }, v.message),
      h('h3', {}, v.shrunk ? 'sequence (shrunk from ' + v.found.length + ' actions)' : 'sequence'), seq(v.sequence),
      lazy('the path, with the database after each action', () => h('table', {},
        h('tr', {}, h('th', {}, 'action'), h('th', {}, 'outcome'), h('th', {}, 'database against the root state')),
        v.path.map((p) => h('tr', {}, h('td', {}, p.action), h('td', { class: 'diff' }, p.outcome), h('td', {}, diff(p.diff)))))
      , { class: 'path failed' }),
      lazy('requests and responses of the last action (' + v.exchanges.length + ')', () =>
        v.exchanges.length ? v.exchanges.map(exchange) : h('p', { class: 'empty' }, 'no request sent')),
      v.check_exchanges.length ? lazy('requests of the invariants after it (' + v.check_exchanges.length + ')',
        () => v.check_exchanges.map(exchange)) : null,
      h('h3', {}, 'a test that reproduces it: ' + v.test_name),
      h('div', { class: 'code' }, code, copy));
  }
  function select(el) {
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // The state graph on a canvas: a column per depth, states ordered by their parent's row
  // so that edges mostly run straight; violations red; the first violation's shrunk (or
  // else found) sequence traced from the root.
  function graph(holder, x) {
    const g = x.graph || { depths: [0], transitions: [] };
    const n = g.depths.length;
    const actions = x.coverage.per_action.map((a) => a.name);
    const parent = new Int32Array(n).fill(-1);
    const via = new Int32Array(n).fill(-1);
    const bad = new Uint8Array(n);
    const out = new Map();
    for (const [from, to, a, , violated] of g.transitions) {
      if (violated) bad[to] = 1;
      if (parent[to] < 0 && to !== 0 && g.depths[from] + 1 === g.depths[to]) { parent[to] = from; via[to] = a; }
      out.set(from + ':' + actions[a], to);
    }
    const columns = [];
    for (let i = 0; i < n; i++) (columns[g.depths[i]] = columns[g.depths[i]] || []).push(i);
    const rowOf = new Float64Array(n);
    for (const col of columns) {
      if (!col) continue;
      col.sort((a, b) => (parent[a] < 0 ? -1 : rowOf[parent[a]]) - (parent[b] < 0 ? -1 : rowOf[parent[b]]) || a - b);
      col.forEach((s, r) => { rowOf[s] = (r + 0.5) / col.length; });
    }
    const width = Math.max(600, holder.clientWidth || 1100);
    const height = Math.min(900, Math.max(260, Math.max(...columns.map((c) => (c ? c.length : 0))) * 12));
    const canvas = h('canvas', {});
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    canvas.style.height = height + 'px';
    const tip = h('div', { class: 'tip' });
    holder.append(canvas, tip);
    const pad = 24;
    const xs = new Float64Array(n);
    const ys = new Float64Array(n);
    const depthCount = Math.max(1, columns.length - 1);
    for (let i = 0; i < n; i++) {
      xs[i] = pad + (width - 2 * pad) * (g.depths[i] / depthCount);
      ys[i] = pad + (height - 2 * pad) * rowOf[i];
    }
    // The highlighted path: the first violation's sequence followed from the root.
    const trail = [0];
    const v = x.violations[0];
    if (v) {
      for (const seq of [v.sequence, v.found]) {
        const t = [0];
        for (const a of seq) {
          const next = out.get(t[t.length - 1] + ':' + a);
          if (next == null) break;
          t.push(next);
        }
        if (t.length === seq.length + 1) { trail.splice(0, trail.length, ...t); break; }
        if (t.length > trail.length) trail.splice(0, trail.length, ...t);
      }
    }
    const ctx = canvas.getContext('2d');
    ctx.scale(ratio, ratio);
    const r = n > 2000 ? 1.5 : n > 300 ? 2.5 : 4;
    ctx.lineWidth = 1;
    ctx.strokeStyle = 'rgba(87,96,106,' + (n > 2000 ? 0.08 : 0.25) + ')';
    ctx.beginPath();
    for (const [from, to] of g.transitions) {
      if (from === to) continue;
      ctx.moveTo(xs[from], ys[from]);
      ctx.lineTo(xs[to], ys[to]);
    }
    ctx.stroke();
    ctx.fillStyle = '#57606a';
    ctx.beginPath();
    for (let i = 0; i < n; i++) { if (!bad[i]) { ctx.moveTo(xs[i] + r, ys[i]); ctx.arc(xs[i], ys[i], r, 0, 2 * Math.PI); } }
    ctx.fill();
    ctx.fillStyle = '#cf222e';
    ctx.beginPath();
    for (let i = 0; i < n; i++) { if (bad[i]) { ctx.moveTo(xs[i] + r + 1, ys[i]); ctx.arc(xs[i], ys[i], r + 1, 0, 2 * Math.PI); } }
    ctx.fill();
    if (trail.length > 1) {
      ctx.strokeStyle = '#f59e0b';
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(xs[trail[0]], ys[trail[0]]);
      for (const s of trail.slice(1)) ctx.lineTo(xs[s], ys[s]);
      ctx.stroke();
    }
    // Hover: the nearest state, its depth and its path from the root.
    canvas.addEventListener('mousemove', (e) => {
      const box = canvas.getBoundingClientRect();
      const mx = e.clientX - box.left;
      const my = e.clientY - box.top;
      let best = -1;
      let dist = 64;
      for (let i = 0; i < n; i++) {
        const d = (xs[i] - mx) ** 2 + (ys[i] - my) ** 2;
        if (d < dist) { dist = d; best = i; }
      }
      if (best < 0) { tip.style.display = 'none'; return; }
      const path = [];
      for (let s = best; s > 0 && parent[s] >= 0; s = parent[s]) path.unshift(actions[via[s]]);
      tip.textContent = 'state ' + best + ' (depth ' + g.depths[best] + ')' + (bad[best] ? ', violation' : '') +
        '\n' + (path.length ? path.join(' → ') : 'the root: the state after setup');
      tip.style.left = Math.min(mx + 12, width - 260) + 'px';
      tip.style.top = (my + 12) + 'px';
      tip.style.display = 'block';
    });
    canvas.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    holder.dataset.states = String(n);
  }

  // ---- the cost report -------------------------------------------------------------------
  function cost(c) {
    const lines = c.lines;
    const parts = [['set-up', '#8c959f'], ['lease wait', '#bf8700'], ['connect', '#cf222e'],
      ['checkpoints', '#8250df'], ['rollbacks', '#0969da'], ['test body', '#1a7f37']];
    const sum = (f) => lines.reduce((t, l) => t + f(l), 0);
    const total = sum((l) => l.test_us);
    const ok = lines.every((l) => l.rolled_back);
    app.append(...header('cost report', ok, [stat('tests', lines.length), stat('source', c.source),
      stat('total', us(total)), stat('isolation', us(sum((l) => l.test_us - l.parts[5])))]));
    app.append(h('h2', {}, 'Where the time went'));
    app.append(h('table', {}, h('tr', {}, h('th', {}, 'part'), h('th', { class: 'num' }, 'total'), h('th', { class: 'num' }, 'share')),
      parts.map(([name, color], i) => {
        const t = sum((l) => l.parts[i]);
        return h('tr', {}, h('td', {}, h('span', { class: 'chip', style: 'border-color:' + color }, name)),
          h('td', { class: 'num' }, us(t)), h('td', { class: 'num' }, total ? (t * 100 / total).toFixed(1) + '%' : '-'));
      })));
    const slowest = lines.slice().sort((a, b) => b.test_us - a.test_us || (a.test < b.test ? -1 : 1));
    app.append(h('h2', { id: 'slowest' }, 'Slowest tests'));
    const max = slowest.length ? slowest[0].test_us : 1;
    const row = (cells) => h('div', { class: 'srow' }, cells);
    app.append(h('div', { class: 'slow' }, row([h('b', {}, 'time'), h('b', {}, 'where it went'), h('b', {}, 'dominated by'), h('b', {}, 'test')]),
      paged(slowest, (l) => row([h('span', { class: 'num' }, us(l.test_us)),
        h('div', { class: 'bar', style: 'width:' + Math.max(2, 320 * l.test_us / max) + 'px' },
          parts.map(([name, color], i) => h('span', { title: name + ' ' + us(l.parts[i]),
            style: 'background:' + color + ';width:' + (l.test_us ? 100 * l.parts[i] / l.test_us : 0) + '%' }))),
        h('span', {}, l.dominated_by[0] + ' ' + us(l.dominated_by[1])),
        h('span', {}, l.test + ' (' + l.backend + ', ' + l.outcome + (l.rolled_back ? '' : ', rollback FAILED') + ')')]))));
  }

  const kind = document.body.dataset.kind;
  if (kind === 'journey') journey(data);
  else if (kind === 'exploration') exploration(data);
  else if (kind === 'cost') cost(data);
  document.body.dataset.renderMs = String(performance.now() - started);
  document.body.dataset.rendered = 'true';
})();
