// tcpeek's live page: asks the daemon for its counters every second and
// draws them. Plain JavaScript, no library; everything comes from the
// daemon that served this file (relative URLs only).
'use strict';

(function () {
  const POLL_MS = 1000;      // how often the page asks
  const TIMEOUT_MS = 3000;   // an answer later than this counts as none
  const TOP_N = 10;          // peers per list
  const WINDOW_MS = 10000;   // the window of the rates and of the failure %
  const GAP_MS = 30000;      // failures further apart than this are two episodes
  const RECENT_MS = 60000;   // a filter whose last failure is older is not failing now
  const CAUSES = ['timeout', 'reject', 'unreach', 'abort'];

  // The SVG namespace, taken from the parser rather than written here.
  const SVGNS = (function () {
    const d = document.createElement('div');
    d.innerHTML = '<svg></svg>';
    return d.firstChild.namespaceURI;
  })();

  const st = {
    stats: null,     // the last STATS answer
    top: null,       // the last TOP answer
    hist: null,      // the last histogram answer
    series: null,    // {start, historyMS, intervalMS, last, filters, points}
    start: null,     // the daemon's start, to see a restart
    restartedAt: 0,  // when the page saw one (local ms)
    lastOK: 0,       // when the last answer came (local ms)
    downSince: 0,    // when the daemon stopped answering (local ms), 0 if it answers
    error: '',
  };

  // ---- fetching -----------------------------------------------------------

  async function getJSON(url, signal) {
    const r = await fetch(url, { signal: signal, cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) {
      let msg = 'HTTP ' + r.status;
      try {
        const j = await r.json();
        if (j && j.error) msg += ': ' + j.error;
      } catch (e) { /* not JSON */ }
      throw new Error(url + ': ' + msg);
    }
    return r.json();
  }

  async function poll() {
    const began = Date.now();
    const ctl = new AbortController();
    const timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    try {
      const after = st.series ? st.series.last : 0;
      const all = await Promise.all([
        getJSON('api/stats', ctl.signal),
        getJSON('api/series?after=' + after, ctl.signal),
        getJSON('api/top?n=' + TOP_N, ctl.signal),
        getJSON('api/histogram', ctl.signal),
      ]);
      accept(all[0], all[1], all[2], all[3]);
    } catch (e) {
      if (!st.downSince) st.downSince = Date.now();
      st.error = e && e.name === 'AbortError'
        ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s'
        : String((e && e.message) || e);
    } finally {
      clearTimeout(timer);
    }
    try {
      render();
    } catch (e) {
      console.error(e); // keep asking: the next answer may draw
    }
    setTimeout(poll, Math.max(100, POLL_MS - (Date.now() - began)));
  }

  function accept(stats, series, top, hist) {
    if (st.start !== null && stats.start !== st.start) st.restartedAt = Date.now();
    st.start = stats.start;
    st.stats = stats;
    st.top = top;
    st.hist = hist;
    // The history must be the same daemon's: just after a restart, the
    // sampler may not have seen the new one yet.
    if (series.start === stats.start) mergeSeries(series);
    else st.series = null;
    st.lastOK = Date.now();
    st.downSince = 0;
    st.error = '';
  }

  // mergeSeries adds the new points of an answer of api/series; another
  // daemon (a restart) replaces the history.
  function mergeSeries(a) {
    let s = st.series;
    if (!s || s.start !== a.start || s.filters.join('\n') !== a.filters.join('\n') || a.last < s.last) {
      s = st.series = {
        start: a.start, historyMS: a.history_ms, intervalMS: a.interval_ms,
        last: 0, filters: a.filters, points: [],
      };
    }
    for (const p of a.points) {
      if (p.seq > s.last) s.points.push(p);
    }
    s.last = Math.max(s.last, a.last);
    if (s.points.length) {
      const cut = s.points[s.points.length - 1].t - s.historyMS;
      let i = 0;
      while (i < s.points.length && s.points[i].t - s.points[i].dt < cut) i++;
      if (i) s.points.splice(0, i);
    }
  }

  // ---- derived figures ------------------------------------------------------

  function failuresOf(c) {
    return c ? (c.timeout || 0) + (c.reject || 0) + (c.unreach || 0) + (c.abort || 0) : 0;
  }

  function countsOf(p, fi) {
    return (fi >= 0 && p.counts[fi]) || {};
  }

  // recent returns a filter's rates over the last WINDOW_MS of history.
  function recent(fi) {
    const pts = st.series ? st.series.points : [];
    if (fi < 0 || !pts.length) return null;
    const end = pts[pts.length - 1].t;
    const sum = { success: 0, timeout: 0, reject: 0, unreach: 0, abort: 0 };
    let dt = 0;
    for (let i = pts.length - 1; i >= 0 && pts[i].t > end - WINDOW_MS; i--) {
      const c = countsOf(pts[i], fi);
      for (const k in sum) sum[k] += c[k] || 0;
      dt += pts[i].dt;
    }
    if (dt <= 0) return null;
    const s = dt / 1000;
    const failures = failuresOf(sum);
    const attempts = sum.success + failures;
    const r = { attempts: attempts / s, success: sum.success / s, failPct: attempts ? 100 * failures / attempts : null };
    for (const k of CAUSES) r[k] = sum[k] / s;
    return r;
  }

  // episode tells whether a filter fails now and since when: the failures
  // in the history, grouped into episodes no more than GAP_MS apart.
  function episode(fi) {
    const pts = st.series ? st.series.points : [];
    if (fi < 0 || !pts.length) return { state: 'unknown' };
    const end = pts[pts.length - 1].t;
    const oldest = pts[0].t - pts[0].dt;
    let last = -1;
    for (let i = pts.length - 1; i >= 0; i--) {
      if (failuresOf(countsOf(pts[i], fi)) > 0) { last = i; break; }
    }
    const full = end - oldest >= st.series.historyMS - 2 * st.series.intervalMS;
    if (last < 0) return { state: 'none', span: end - oldest, full: full, oldest: oldest };
    const lastT = pts[last].t;
    if (end - lastT > RECENT_MS) return { state: 'past', last: lastT, end: end };
    let since = lastT - pts[last].dt;
    for (let i = last - 1; i >= 0; i--) {
      if (failuresOf(countsOf(pts[i], fi)) === 0) continue;
      if (since - pts[i].t > GAP_MS) break;
      since = pts[i].t - pts[i].dt;
    }
    // When the history is full and the episode starts at its beginning,
    // it may have started before.
    const before = full && since - oldest < GAP_MS;
    return { state: 'now', since: before ? oldest : since, before: before, end: end, last: lastT };
  }

  function episodeText(e) {
    switch (e.state) {
      case 'now':
        if (e.end - e.last > WINDOW_MS) {
          // Failures stopped a little while ago: say when.
          return 'failed ' + (e.before ? 'from before ' : 'from ') + fmtTime(e.since) + ' to ' + fmtTime(e.last) +
            ' (' + fmtDur(e.last - e.since) + '), ' + fmtDur(e.end - e.last) + ' ago';
        }
        return e.before
          ? 'failing since before ' + fmtTime(e.since) + ' (for more than ' + fmtDur(e.end - e.since) + ')'
          : 'failing since ' + fmtTime(e.since) + ' (for ' + fmtDur(e.end - e.since) + ')';
      case 'past':
        return 'last failure at ' + fmtTime(e.last) + ' (' + fmtDur(e.end - e.last) + ' ago)';
      case 'none':
        return e.full ? 'no failures in the last ' + fmtDur(e.span) : 'no failures since ' + fmtTime(e.oldest);
      default:
        return 'no history yet';
    }
  }

  // ---- formatting -----------------------------------------------------------

  function fmtInt(n) { return Number(n).toLocaleString('en-US'); }

  function fmtRate(v) {
    if (v === null || v === undefined) return '–';
    if (v === 0) return '0';
    if (v < 10) return v.toFixed(1);
    return fmtInt(Math.round(v));
  }

  function fmtPct(v) { return v === null || v === undefined ? '–' : v.toFixed(1); }

  function fmtMS(v) {
    if (v >= 1000) return +(v / 1000).toPrecision(3) + ' s';
    if (v >= 1) return +v.toPrecision(3) + ' ms';
    return +(v * 1000).toPrecision(3) + ' µs';
  }

  function fmtTime(ms) {
    return new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  function fmtDateTime(ms) {
    const d = new Date(ms);
    const p = function (n) { return String(n).padStart(2, '0'); };
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + fmtTime(ms);
  }

  function fmtDur(ms) {
    let s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    let m = Math.floor(s / 60);
    s %= 60;
    if (m < 60) return s ? m + ' min ' + s + ' s' : m + ' min';
    let h = Math.floor(m / 60);
    m %= 60;
    if (h < 24) return m ? h + ' h ' + m + ' min' : h + ' h';
    const d = Math.floor(h / 24);
    h %= 24;
    return h ? d + ' d ' + h + ' h' : d + ' d';
  }

  // ---- DOM helpers ----------------------------------------------------------

  function el(tag, attrs, kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function svg(tag, attrs, kids) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.setAttribute('class', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(e, kids) {
    if (kids === undefined || kids === null) return;
    if (!Array.isArray(kids)) kids = [kids];
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      e.appendChild(typeof k === 'string' ? document.createTextNode(k) : k);
    }
  }

  // td is a number cell; key names it for tests and scripts.
  function td(key, text, cls) {
    return el('td', { 'data-k': key, class: cls || null, text: text });
  }

  function countCell(key, n, bad) {
    return td(key, fmtInt(n), n === 0 ? 'zero' : bad ? 'bad' : null);
  }

  // ---- charts -----------------------------------------------------------------

  const W = 420, H = 140, PL = 44, PR = 8, PT = 8, PB = 20;

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
    return 10 * e;
  }

  // lineChart draws lines of [t, v] (v null: no value) over [t0, t1].
  function lineChart(label, t0, t1, lines, ymax, fmtY, interval) {
    const iw = W - PL - PR, ih = H - PT - PB;
    const x = function (t) { return PL + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * iw; };
    const y = function (v) { return PT + (1 - Math.min(v, ymax) / ymax) * ih; };
    const kids = [svg('title', { text: label })];
    for (const g of [0, 0.5, 1]) {
      const gy = y(g * ymax).toFixed(1);
      kids.push(svg('line', { class: 'grid', x1: PL, x2: W - PR, y1: gy, y2: gy }));
      kids.push(svg('text', { x: PL - 4, y: +gy + 3, 'text-anchor': 'end', text: fmtY(g * ymax) }));
    }
    const mins = Math.round((t1 - t0) / 60000);
    kids.push(svg('text', { x: PL, y: H - 5, text: mins > 0 ? '−' + mins + ' min' : '' }));
    kids.push(svg('text', { x: PL + iw / 2, y: H - 5, 'text-anchor': 'middle', text: mins > 1 ? '−' + mins / 2 + ' min' : '' }));
    kids.push(svg('text', { x: W - PR, y: H - 5, 'text-anchor': 'end', text: 'now' }));
    let points = 0;
    for (const line of lines) {
      let d = '', area = '', seg = [], prevT = null;
      const flush = function () {
        if (!seg.length) return;
        d += 'M' + seg.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L');
        if (seg.length === 1) d += 'h0.1'; // a lone point: a dot, by the round cap
        area += 'M' + seg[0][0].toFixed(1) + ',' + y(0).toFixed(1) + 'L' +
          seg.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L') +
          'L' + seg[seg.length - 1][0].toFixed(1) + ',' + y(0).toFixed(1) + 'Z';
        seg = [];
      };
      for (const pv of line.values) {
        if (pv[1] === null || (prevT !== null && pv[0] - prevT > 2.5 * interval)) flush();
        if (pv[1] !== null) {
          seg.push([x(pv[0]), y(pv[1])]);
          points++;
        }
        prevT = pv[0];
      }
      flush();
      if (line.area && area) kids.push(svg('path', { class: line.cls + '-area', d: area }));
      if (d) kids.push(svg('path', { class: line.cls, d: d }));
    }
    if (!points) {
      kids.push(svg('text', { class: 'empty', x: PL + iw / 2, y: PT + ih / 2, 'text-anchor': 'middle', text: 'no data yet' }));
    }
    return svg('svg', {
      class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label,
      'data-points': points, preserveAspectRatio: 'xMidYMid meet',
    }, kids);
  }

  function barChart(label, bounds, counts) {
    const iw = W - PL - PR, ih = H - PT - PB - 6;
    const total = counts.reduce(function (a, b) { return a + b; }, 0);
    const ymax = niceMax(Math.max.apply(null, counts.concat([2])));
    const bw = iw / counts.length;
    const kids = [svg('title', { text: label })];
    for (const g of [0, 0.5, 1]) {
      const gy = (PT + (1 - g) * ih).toFixed(1);
      kids.push(svg('line', { class: 'grid', x1: PL, x2: W - PR, y1: gy, y2: gy }));
      kids.push(svg('text', { x: PL - 4, y: +gy + 3, 'text-anchor': 'end', text: fmtInt(Math.round(g * ymax)) }));
    }
    counts.forEach(function (n, i) {
      const bx = PL + i * bw;
      const bh = ih * n / ymax;
      const range = i < bounds.length ? '≤ ' + fmtMS(bounds[i]) : '> ' + fmtMS(bounds[bounds.length - 1]);
      const pct = total ? ' (' + (100 * n / total).toFixed(1) + ' %)' : '';
      kids.push(svg('rect', {
        class: 'bar', x: (bx + 1).toFixed(1), y: (PT + ih - bh).toFixed(1),
        width: Math.max(1, bw - 2).toFixed(1), height: bh.toFixed(1),
      }, svg('title', { text: range + ': ' + fmtInt(n) + pct })));
      if (i % 3 === 0 || i === counts.length - 1) {
        kids.push(svg('text', {
          x: (bx + bw / 2).toFixed(1), y: H - 5, 'text-anchor': 'middle',
          text: i < bounds.length ? fmtMS(bounds[i]).replace(' ', '') : '>' + fmtMS(bounds[bounds.length - 1]).replace(' ', ''),
        }));
      }
    });
    if (!total) {
      kids.push(svg('text', { class: 'empty', x: PL + iw / 2, y: PT + ih / 2, 'text-anchor': 'middle', text: 'no completed handshake yet' }));
    }
    return svg('svg', {
      class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label,
      'data-points': counts.length, preserveAspectRatio: 'xMidYMid meet',
    }, kids);
  }

  // ---- rendering --------------------------------------------------------------

  function render() {
    const down = st.downSince !== 0;
    document.body.classList.toggle('down', down);
    renderStatus(down);
    if (!st.stats) return;
    renderMeta(down);
    const names = st.series ? st.series.filters : [];
    const failing = [];
    const rows = [];
    const sections = [];
    for (const f of st.stats.filters) {
      const fi = names.indexOf(f.name);
      const r = recent(fi);
      const ep = episode(fi);
      if (ep.state === 'now') failing.push(f.name);
      rows.push(summaryRow(f, r, ep));
      sections.push(filterSection(f, fi, r, ep));
    }
    patch(document.querySelector('#summary tbody'), rows);
    patch(document.getElementById('filters'), sections);
    const title = failing.length ? 'tcpeek: ' + failing.join(', ') + ' failing' : 'tcpeek';
    if (document.title !== title) document.title = title;
  }

  // patch makes the children of parent look like kids, changing only what
  // differs, so that a selection (a peer's address being copied) and the
  // keyboard focus survive the redraw every second.
  function patch(parent, kids) {
    for (let i = 0; i < kids.length; i++) {
      const old = parent.childNodes[i], neu = kids[i];
      if (!old) parent.appendChild(neu);
      else if (old.isEqualNode(neu)) continue;
      else if (old.nodeType === Node.TEXT_NODE && neu.nodeType === Node.TEXT_NODE) old.nodeValue = neu.nodeValue;
      else if (old.nodeType === Node.ELEMENT_NODE && old.nodeName === neu.nodeName) {
        for (const a of Array.from(old.attributes)) if (!neu.hasAttribute(a.name)) old.removeAttribute(a.name);
        for (const a of Array.from(neu.attributes)) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
        patch(old, Array.from(neu.childNodes));
      } else parent.replaceChild(neu, old);
    }
    while (parent.childNodes.length > kids.length) parent.removeChild(parent.lastChild);
  }

  // renderStatus writes the status line, a live region: its text changes
  // only when the state does, so that a screen reader is not told the
  // time every second.
  function renderStatus(down) {
    const p = document.getElementById('status');
    let cls, t;
    if (down) {
      cls = 'status down';
      t = 'tcpeek is not answering since ' + fmtTime(st.downSince) + ': ' + st.error + '.';
      if (st.lastOK) t += ' The figures below are from ' + fmtTime(st.lastOK) + '.';
    } else if (!st.stats) {
      cls = 'status wait';
      t = 'Asking tcpeek…';
    } else {
      cls = 'status ok';
      t = 'Live';
      if (st.restartedAt && Date.now() - st.restartedAt < 10 * 60000) {
        t += ': tcpeek restarted at ' + fmtTime(Date.parse(st.stats.start));
      }
    }
    if (p.className !== cls) p.className = cls;
    if (p.textContent !== t) p.textContent = t;
  }

  function renderMeta(down) {
    const s = st.stats;
    const started = Date.parse(s.start);
    const now = Date.parse(s.now);
    const c = s.capture, ss = s.sessions;
    const parts = [
      down ? 'no answer for ' + fmtDur(Date.now() - st.downSince) : 'updated ' + fmtTime(st.lastOK),
      'tcpeek ' + s.version,
      'started ' + fmtDateTime(started) + ' (' + fmtDur(now - started) + ' ago)',
      fmtInt(c.packets) + ' packets' + (c.kernel_filter ? ' (' + c.kernel_filter + ' filter)' : ''),
    ];
    const warn = [];
    if (c.drops) warn.push(fmtInt(c.drops) + ' dropped by the kernel');
    if (c.ifdrops) warn.push(fmtInt(c.ifdrops) + ' dropped by the interface');
    if (c.bad_checksum) parts.push(fmtInt(c.bad_checksum) + ' bad checksums');
    parts.push(fmtInt(ss.in_progress) + ' handshakes in progress of at most ' + fmtInt(ss.max));
    if (ss.displaced) warn.push(fmtInt(ss.displaced) + ' displaced from a full table');
    if (s.pending) parts.push(fmtInt(s.pending) + ' pending');
    patch(document.getElementById('meta'), [
      document.createTextNode(parts.join(' · ')),
      warn.length ? el('strong', { class: 'warn', text: ' · ' + warn.join(' · ') }) : document.createTextNode(''),
    ]);
  }

  function summaryRow(f, r, ep) {
    const attempts = f.success.total + f.failure.total;
    const pct = attempts ? 100 * f.failure.total / attempts : null;
    const cells = [
      el('th', { scope: 'row' }, [
        el('a', { href: '#filter-' + f.name, text: f.name }),
        el('span', { class: 'dir', text: f.direction }),
      ]),
      td('rate_attempts', r ? fmtRate(r.attempts) : '–'),
      td('rate_success', r ? fmtRate(r.success) : '–'),
    ];
    for (const k of CAUSES) cells.push(td('rate_' + k, r ? fmtRate(r[k]) : '–', r && r[k] > 0 ? 'bad' : null));
    cells.push(td('rate_fail_pct', r ? fmtPct(r.failPct) : '–', r && r.failPct > 0 ? 'bad' : null));
    const hs = f.handshake_ms;
    cells.push(td('p50', hs.count ? fmtNum(hs.p50) : '–'));
    cells.push(td('p99', hs.count ? fmtNum(hs.p99) : '–'));
    cells.push(countCell('attempts', attempts));
    cells.push(countCell('failures', f.failure.total, true));
    cells.push(td('fail_pct', fmtPct(pct), pct > 0 ? 'bad' : pct === null ? 'zero' : null));
    cells.push(countCell('displaced', f.displaced || 0, true));
    cells.push(el('td', {
      'data-k': 'episode', class: 'text' + (ep.state === 'now' ? ' bad' : ''),
      text: ep.state === 'now'
        ? (ep.before ? 'before ' : '') + fmtTime(ep.since) + (ep.end - ep.last > WINDOW_MS ? ' to ' + fmtTime(ep.last) : '')
        : ep.state === 'past' ? 'last ' + fmtTime(ep.last) : '–',
    }));
    return el('tr', { 'data-filter': f.name, class: ep.state === 'now' ? 'failing' : null }, cells);
  }

  function fmtNum(v) {
    if (v >= 100) return fmtInt(Math.round(v));
    return String(+v.toPrecision(3));
  }

  function filterSection(f, fi, r, ep) {
    const attempts = f.success.total + f.failure.total;
    const id = 'filter-' + f.name;
    const head = el('h2', { id: id + '-title' }, [
      f.name,
      el('span', { class: 'dir', text: f.direction + ' ' + f.rules.join(' ') }),
      el('span', { class: 'badge ' + (ep.state === 'now' ? 'bad' : 'ok'), 'data-k': 'episode', text: episodeText(ep) }),
    ]);
    const sec = el('section', { id: id, class: 'filter' + (ep.state === 'now' ? ' failing' : ''), 'aria-labelledby': id + '-title', 'data-filter': f.name }, head);
    const pts = st.series ? st.series.points : [];
    if (attempts === 0 && !pts.some(function (p) { const c = countsOf(p, fi); return (c.success || 0) + failuresOf(c) > 0; })) {
      sec.appendChild(el('p', { class: 'quiet', text: 'No attempts seen yet.' }));
      return sec;
    }
    const fl = f.failure;
    sec.appendChild(el('p', { class: 'totals' }, [
      'Since start: ', el('b', { text: fmtInt(attempts) }), ' attempts, ',
      el('b', { text: fmtInt(f.success.total) }), ' succeeded, ',
      el('b', { text: fmtInt(fl.total) }), ' failed (' +
        CAUSES.map(function (k) { return fmtInt(fl[k]) + ' ' + k; }).join(', ') + '), ',
      el('b', { text: fmtPct(attempts ? 100 * fl.total / attempts : null) + ' %' }), ' failed; ',
      'SYN retransmitted in ' + fmtInt(f.success.dupsyn + fl.dupsyn) + ', SYN/ACK in ' + fmtInt(f.success.dupsynack + fl.dupsynack) +
        '; ' + fmtInt(f.displaced || 0) + ' displaced.',
    ]));
    sec.appendChild(el('div', { class: 'charts' }, [
      attemptsFigure(f, fi),
      failPctFigure(f, fi),
      histogramFigure(f),
    ]));
    sec.appendChild(topTables(f));
    return sec;
  }

  function window0() {
    const s = st.series;
    const pts = s ? s.points : [];
    const t1 = pts.length ? pts[pts.length - 1].t : Date.parse(st.stats.now);
    return [t1 - (s ? s.historyMS : 600000), t1, s ? s.intervalMS : 1000];
  }

  function attemptsFigure(f, fi) {
    const w = window0();
    const pts = st.series ? st.series.points : [];
    const all = [], failed = [];
    let max = 0;
    for (const p of pts) {
      if (p.dt <= 0) continue;
      const c = countsOf(p, fi);
      const fails = failuresOf(c);
      const a = ((c.success || 0) + fails) * 1000 / p.dt;
      const b = fails * 1000 / p.dt;
      all.push([p.t, a]);
      failed.push([p.t, b]);
      max = Math.max(max, a);
    }
    const ymax = niceMax(max);
    const last = all.length ? all[all.length - 1][1] : null;
    const label = 'Attempts per second of ' + f.name + ' over the last ' + fmtDur(w[1] - w[0]) +
      (last !== null ? ': now ' + fmtRate(last) + '/s, at most ' + fmtRate(max) + '/s' : ': no data yet');
    return el('figure', { 'data-chart': 'attempts' }, [
      el('figcaption', {}, ['Attempts/s ', el('span', { class: 'sub', text: 'per second, last ' + fmtDur(w[1] - w[0]) })]),
      lineChart(label, w[0], w[1], [
        { cls: 'attempts', area: true, values: all },
        { cls: 'fail', area: true, values: failed },
      ], ymax, fmtRate, w[2]),
      el('p', { class: 'legend' }, [el('span', { class: 'sw attempts' }), 'all attempts', el('span', { class: 'sw fail' }), 'failed']),
    ]);
  }

  function failPctFigure(f, fi) {
    const w = window0();
    const pts = st.series ? st.series.points : [];
    const values = [];
    let max = 0, lo = 0, att = 0, fails = 0;
    // A trailing WINDOW_MS window at every point, as the table's failure %.
    for (let i = 0; i < pts.length; i++) {
      const c = countsOf(pts[i], fi);
      att += (c.success || 0) + failuresOf(c);
      fails += failuresOf(c);
      while (pts[lo].t <= pts[i].t - WINDOW_MS) {
        const o = countsOf(pts[lo], fi);
        att -= (o.success || 0) + failuresOf(o);
        fails -= failuresOf(o);
        lo++;
      }
      const v = att > 0 ? 100 * fails / att : null;
      values.push([pts[i].t, v]);
      if (v !== null) max = Math.max(max, v);
    }
    const ymax = Math.min(100, niceMax(Math.max(max, 1)));
    const last = values.length ? values[values.length - 1][1] : null;
    const label = 'Failure % of ' + f.name + ' over 10 s windows, last ' + fmtDur(w[1] - w[0]) +
      (last !== null ? ': now ' + fmtPct(last) + ' %, at most ' + fmtPct(max) + ' %' : '');
    return el('figure', { 'data-chart': 'failpct' }, [
      el('figcaption', {}, ['Failure % ', el('span', { class: 'sub', text: 'of the attempts of the 10 s before each point' })]),
      lineChart(label, w[0], w[1], [{ cls: 'fail', area: false, values: values }], ymax,
        function (v) { return +v.toPrecision(3) + '%'; }, w[2]),
    ]);
  }

  function histogramFigure(f) {
    const h = st.hist && st.hist.filters.find(function (x) { return x.name === f.name; });
    const hs = f.handshake_ms;
    const sub = hs.count
      ? 'since start, ' + fmtInt(hs.count) + ' handshakes, p50 ' + fmtMS(hs.p50) + ', p99 ' + fmtMS(hs.p99) + ', max ' + fmtMS(hs.max)
      : 'since start: no completed handshake yet';
    const kids = [el('figcaption', {}, ['Handshake time ', el('span', { class: 'sub', text: sub })])];
    if (h) {
      kids.push(barChart('Handshake times of ' + f.name + ' since start, ' + sub, st.hist.bounds_ms, h.counts));
    } else {
      kids.push(el('p', { class: 'quiet', text: 'This daemon serves no histogram.' }));
    }
    return el('figure', { 'data-chart': 'histogram' }, kids);
  }

  function topTables(f) {
    const t = st.top && st.top.filters.find(function (x) { return x.name === f.name; });
    const box = el('div', { class: 'tops' });
    const lists = [
      ['last_minute', 'Top failing peers, last minute', 'No failures in the last minute.'],
      ['since_start', 'Top failing peers since start', 'No failures since the start.'],
    ];
    for (const l of lists) {
      box.appendChild(peerTable(f, l[0], l[1], l[2], t ? t[l[0]] || [] : null));
    }
    if (t && t.services && t.services.length) {
      box.appendChild(el('p', {
        class: 'services',
        text: 'Failing services since start: ' + t.services.map(function (s) { return 'port ' + s.port + ' (' + fmtInt(s.failures) + ')'; }).join(', '),
      }));
    }
    return box;
  }

  function peerTable(f, key, caption, none, peers) {
    const peerHead = { RX: 'Client', TX: 'Server' }[f.direction] || 'Peer';
    const head = el('thead', {}, el('tr', {}, [peerHead, 'Port', 'Failures', 'Timeout', 'Reject', 'Unreach', 'Abort', '±', 'Last failure']
      .map(function (h, i) { return el('th', { scope: 'col', class: i === 0 ? 'text' : null, title: h === '±' ? 'how much the count may be too high (0: exact)' : null, text: h }); })));
    const body = el('tbody');
    if (peers === null) {
      body.appendChild(el('tr', {}, el('td', { class: 'text quiet', colspan: 9, text: 'No answer to TOP.' })));
    } else if (!peers.length) {
      body.appendChild(el('tr', {}, el('td', { class: 'text quiet', colspan: 9, text: none })));
    }
    for (const p of peers || []) {
      const last = Date.parse(p.last);
      body.appendChild(el('tr', { 'data-peer': p.peer, 'data-port': p.port }, [
        el('th', { scope: 'row', class: 'text mono', text: p.peer }),
        td('port', String(p.port)),
        countCell('failures', p.failures, true),
        countCell('timeout', p.timeout), countCell('reject', p.reject),
        countCell('unreach', p.unreach), countCell('abort', p.abort),
        td('error', p.error ? '±' + fmtInt(p.error) : '', null),
        el('td', { 'data-k': 'last', title: isNaN(last) ? null : fmtDateTime(last), text: isNaN(last) ? '' : fmtTime(last) }),
      ]));
    }
    return el('table', { 'data-list': key }, [el('caption', { text: caption }), head, body]);
  }

  poll();
})();
