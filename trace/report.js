/* faultline report: draws report.html from the JSON that trace/report.c
 * embeds.  No network access, no libraries.  On success the body gets
 * data-rendered="ok" (the browser test checks it); on any exception
 * data-rendered="error" and the message is shown at the top. */
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var body = document.body;
  function fail(msg) {
    body.setAttribute('data-rendered', 'error');
    var app = document.getElementById('app') || body;
    var div = document.createElement('div');
    div.id = 'render-error';
    div.textContent = 'report rendering failed: ' + msg;
    app.insertBefore(div, app.firstChild);
  }
  window.addEventListener('error', function (e) { fail(e.message + ' (line ' + e.lineno + ')'); });

  /* ---------------------------------------------------------------- */
  /* helpers                                                          */
  /* ---------------------------------------------------------------- */
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in (attrs || {})) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'html') e.innerHTML = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function sv(tag, attrs, parent) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in (attrs || {})) {
      if (k === 'text') e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  function tip(node, text) { sv('title', { text: text }, node); return node; }
  function fmtT(ns) {
    var s = ns / 1e9, a = Math.abs(s);
    var t = a >= 100 ? s.toFixed(1) : a >= 10 ? s.toFixed(2) : s.toFixed(3);
    return (/^-0\.0*$/.test(t) ? t.slice(1) : t) + ' s';
  }
  function fmtD(ns) {
    if (ns === null || ns === undefined) return '–';
    var a = Math.abs(ns);
    if (a < 1e3) return ns + ' ns';
    if (a < 1e6) return (ns / 1e3).toPrecision(3) + ' µs';
    if (a < 1e9) return (ns / 1e6).toPrecision(3) + ' ms';
    return (ns / 1e9).toPrecision(3) + ' s';
  }
  function fmtB(n) {
    if (n === null || n === undefined) return '–';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
  }
  function fmtN(n) { return (n || 0).toLocaleString('en-US'); }
  function niceStep(range, target) {
    var raw = range / target, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }
  function short(s, n) { s = String(s); return s.length > n ? s.slice(0, Math.max(1, n - 1)) + '…' : s; }
  function plural(n, w) { return fmtN(n) + ' ' + w + (n === 1 ? '' : 's'); }

  var REASON_COLORS = {
    partition: '#c62828', loss: '#f08c00', queue: '#7c3aed', mtu: '#8d5524',
    'port-down': '#db2777', 'port-queue-full': '#475569', shutdown: '#a3a3a3',
    spoofed: '#be123c', internal: '#111827'
  };
  var EVENT_COLORS = {
    boot: '#9ca3af', ready: '#1f8f4e', partition: '#c62828', heal: '#1f8f4e', link: '#2563eb',
    crash: '#c62828', restart: '#d97706', pause: '#6b7280', resume: '#6b7280', exit: '#c62828',
    disconnect: '#d97706', check: '#7c3aed', disk: '#b45309', clock: '#0891b2', note: '#6b7280',
    error: '#c62828', late: '#ea580c'
  };
  var UNEXPECTED = { exit: 1, disconnect: 1, error: 1 };
  function reasonColor(r) { return REASON_COLORS[r] || '#555'; }
  function eventColor(k) { return EVENT_COLORS[k] || '#374151'; }

  /* ---------------------------------------------------------------- */
  /* data                                                             */
  /* ---------------------------------------------------------------- */
  var D = JSON.parse(document.getElementById('fl-data').textContent);
  var run = D.run[0] || [];
  var R = {
    name: run[0] || '(unnamed run)', path: run[1], seed: run[2], version: run[3], host: run[4],
    accel: run[5], wall: run[6], ended: run[7], verdict: run[8] || 'unfinished', detail: run[9],
    text: run[10]
  };
  var nodes = {}, nodeOrder = [];
  D.nodes.forEach(function (n) { nodes[n[0]] = { id: n[0], name: n[1], idx: nodeOrder.length }; nodeOrder.push(n[0]); });
  function nodeName(id) { return id && nodes[id] ? nodes[id].name : 'run'; }
  var links = {}, linkOrder = [];
  D.links.forEach(function (l) {
    links[l[0]] = { id: l[0], src: l[1], dst: l[2], net: l[3], sent: 0, delivered: 0, dropped: 0, dup: 0,
                    corrupt: 0, reord: 0, bytes: 0, drops: {}, params: [], series: {}, delays: D.delays[l[0]] };
    linkOrder.push(l[0]);
  });
  function linkName(id) { var l = links[id]; return l ? nodeName(l.src) + '→' + nodeName(l.dst) : '?'; }
  D.link_stats.forEach(function (s) {
    var l = links[s[0]]; if (!l) return;
    l.sent = s[1] || 0; l.delivered = s[2] || 0; l.dropped = s[3] || 0; l.dup = s[4] || 0;
    l.corrupt = s[5] || 0; l.reord = s[6] || 0; l.bytes = s[7] || 0;
  });
  D.link_drops.forEach(function (d) { if (links[d[0]]) links[d[0]].drops[d[1]] = d[2]; });
  D.link_params.forEach(function (p) { if (links[p[0]]) links[p[0]].params.push({ t: p[1], text: p[2] }); });
  D.series.forEach(function (s) {
    var l = links[s[0]]; if (!l) return;
    l.series[s[1]] = { d: s[2] || 0, x: s[3] || 0, delay: s[4], reasons: {} };
  });
  D.series_drops.forEach(function (s) {
    var l = links[s[0]]; if (!l || !l.series[s[1]]) return;
    l.series[s[1]].reasons[s[2]] = s[3];
  });
  var events = D.events.map(function (e) { return { id: e[0], t: e[1], end: e[2], kind: e[3], node: e[4], detail: e[5] }; });
  var windows = events.filter(function (e) { return e.end !== null && e.end !== undefined; });
  var disks = {}, diskOrder = [];
  D.disks.forEach(function (d) {
    disks[d[0]] = { id: d[0], node: d[1], name: d[2], size: d[3], count: d[4] || 0, reads: d[5] || 0,
                    writes: d[6] || 0, flushes: d[7] || 0, trims: d[8] || 0, errors: d[9] || 0,
                    faults: d[10] || 0, wbytes: d[11] || 0, rbytes: d[12] || 0, series: {}, lat: [] };
    diskOrder.push(d[0]);
  });
  function diskName(id) { var d = disks[id]; return d ? nodeName(d.node) + '/' + d.name : '?'; }
  D.io_series.forEach(function (s) { if (disks[s[0]]) disks[s[0]].series[s[1]] = { r: s[2], w: s[3], f: s[4], e: s[5] }; });
  D.io_latency.forEach(function (s) { if (disks[s[0]]) disks[s[0]].lat.push({ op: s[1], n: s[2], p50: s[3], p99: s[4], max: s[5] }); });
  var crashes = D.crashes.map(function (c) {
    return { id: c[0], disk: c[1], t: c[2], policy: c[3], lost: c[4] || 0, torn: c[5] || 0, kept: c[6] || 0,
             bytes: c[7] || 0, writes: [] };
  });
  var crashById = {};
  crashes.forEach(function (c) { crashById[c.id] = c; });
  D.crash_writes.forEach(function (w) {
    var c = crashById[w[0]];
    if (c) c.writes.push({ io: w[1], t: w[2], off: w[3], len: w[4], outcome: w[5], kept: w[6] });
  });
  var checks = D.checks.map(function (c) {
    return { name: c[0], node: c[1], cmd: c[2], exit: c[3], passed: !!c[4], start: c[5], end: c[6], out: c[7], err: c[8] };
  });
  /* recorded nodes and their segments (docs/record-replay.md) */
  var segments = (D.rr_segments || []).map(function (s) {
    return { node: s[0], k: s[1], start: s[2], end: s[3], ended: s[4], icount: s[5] };
  });
  var recorded = {};
  segments.forEach(function (s) { (recorded[s.node] = recorded[s.node] || []).push(s); });
  function shq(s) { s = String(s); return /^[A-Za-z0-9_.\/:=,+-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }
  /* A failed check's node replayed from the segment running when the check
   * began (else the last one that began before it). */
  function replayCommand(c) {
    var list = c.node ? recorded[c.node] : null;
    if (!list) return null;
    var pick = list[0];
    list.forEach(function (s) { if (c.start === null || c.start === undefined || s.start === null || s.start <= c.start) pick = s; });
    return 'faultline replay ' + shq(D.run_dir || '.') + ' ' + shq(nodeName(c.node)) + ' --segment ' + pick.k;
  }
  var T0 = D.t0, T1 = D.t1, BW = D.bucket_ns;
  /* drop reasons that occur in this run, in the canonical order */
  function presentReasons() {
    return D.reasons.filter(function (r) { return linkOrder.some(function (id) { return links[id].drops[r]; }); });
  }

  var app = document.getElementById('app');
  var W = Math.max(900, Math.min(1232, (app.clientWidth || 1232) - 48));

  /* ---------------------------------------------------------------- */
  /* header and "what happened"                                       */
  /* ---------------------------------------------------------------- */
  function header() {
    var facts = el('div', { class: 'facts' });
    function fact(k, v) { if (v !== null && v !== undefined && v !== '') facts.appendChild(el('span', {}, [k + ' ', el('b', { text: String(v) })])); }
    fact('seed', R.seed);
    fact('duration', R.ended !== null && R.ended !== undefined ? fmtT(R.ended) : null);
    fact('nodes', nodeOrder.length);
    fact('frames', fmtN(D.frame_count));
    fact('accel', R.accel);
    fact('recorded', Object.keys(recorded).map(function (id) { return nodeName(+id); }).join(', '));
    fact('host', R.host);
    fact('faultline', R.version);
    if (R.wall) fact('started', new Date(R.wall / 1e6).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'));
    var h = el('div', { class: 'header' }, [
      el('span', { class: 'badge ' + R.verdict, id: 'verdict', text: R.verdict }),
      el('h1', { text: R.name }),
      R.detail ? el('span', { class: 'muted', text: R.detail }) : null
    ]);
    app.appendChild(h);
    app.appendChild(facts);
  }

  function summary() {
    var ul = el('ul');
    function li(html) { ul.appendChild(el('li', { html: html })); }
    function esc(s) { return String(s === null || s === undefined ? '' : s).replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); }
    var failed = checks.filter(function (c) { return !c.passed; });
    if (checks.length) {
      li(failed.length
        ? '<b class="bad">' + failed.length + ' of ' + checks.length + ' checks failed</b>: ' +
          failed.map(function (c) { return '<code>' + esc(c.name) + '</code>' + (c.err ? ' — ' + esc(c.err.split('\n')[0]) : ''); }).join('; ')
        : 'All ' + checks.length + ' checks passed.');
    }
    failed.forEach(function (c) {
      var cmd = replayCommand(c);
      if (cmd) li('<code>' + esc(c.name) + '</code> failed on a recorded node; replay it instruction for instruction: <code class="replay">' + esc(cmd) + '</code>');
    });
    /* per window: per link, delivered and dropped by reason */
    var byWin = {};
    D.window_frames.forEach(function (w) {
      var m = byWin[w[0]] = byWin[w[0]] || {};
      var r = m[w[1]] = m[w[1]] || { link: w[1], d: 0, x: 0, reasons: {} };
      if (w[2] === 'delivered') r.d += w[3]; else { r.x += w[3]; r.reasons[w[2]] = (r.reasons[w[2]] || 0) + w[3]; }
    });
    windows.forEach(function (w) {
      var rows = Object.keys(byWin[w.id] || {}).map(function (k) { return byWin[w.id][k]; });
      /* a window's own drops (a partition's are reason "partition"),
       * then whatever else was dropped meanwhile */
      var own = function (r) { return r.reasons[w.kind] !== undefined ? r.reasons[w.kind] : (REASON_COLORS[w.kind] ? 0 : r.x); };
      var mine = rows.filter(function (r) { return own(r) > 0; });
      var total = mine.reduce(function (a, r) { return a + own(r); }, 0);
      var s = '<b>' + esc(w.kind) + '</b>' + (w.node ? ' of ' + esc(nodeName(w.node)) : '') +
        (w.detail ? ' <code>' + esc(w.detail) + '</code>' : '') + ' from ' + fmtT(w.t) + ' to ' + fmtT(w.end) +
        ' (' + fmtD(w.end - w.t) + '): ';
      if (total) {
        mine.sort(function (a, b) { return own(b) - own(a); });
        s += '<b class="bad">' + plural(total, 'frame') + ' dropped</b> — ' + mine.slice(0, 8).map(function (r) {
          var all = r.d + r.x;
          return esc(linkName(r.link)) + ' ' + fmtN(own(r)) + (own(r) === all ? ' (all)' : ' of ' + fmtN(all));
        }).join(', ') + (mine.length > 8 ? ', …' : '') + '.';
        var okLinks = rows.filter(function (r) { return own(r) === 0 && r.d > 0; });
        if (okLinks.length) s += ' Unaffected: ' + okLinks.map(function (r) { return esc(linkName(r.link)) + ' ' + fmtN(r.d) + ' delivered'; }).join(', ') + '.';
      } else {
        s += 'no frames dropped.';
      }
      li(s);
    });
    /* drops by reason over the run; partition drops are told per window
     * above when the run has windows */
    var totals = {};
    linkOrder.forEach(function (id) {
      Object.keys(links[id].drops).forEach(function (r) { totals[r] = (totals[r] || 0) + links[id].drops[r]; });
    });
    var other = Object.keys(totals).filter(function (r) { return r !== 'partition' || !windows.length; });
    if (other.length) {
      li('Drops by reason over the whole run: ' + other.map(function (r) {
        var per = linkOrder.filter(function (id) { return links[id].drops[r]; }).map(function (id) { return esc(linkName(id)) + ' ' + fmtN(links[id].drops[r]); });
        return '<span class="chip" style="background:' + reasonColor(r) + '">' + esc(r) + '</span> ' + fmtN(totals[r]) + ' (' + per.slice(0, 6).join(', ') + (per.length > 6 ? ', …' : '') + ')';
      }).join('; ') + '.');
    }
    var dup = 0, cor = 0, reo = 0;
    linkOrder.forEach(function (id) { dup += links[id].dup; cor += links[id].corrupt; reo += links[id].reord; });
    if (dup || cor || reo) {
      li([dup ? plural(dup, 'duplicate') : '', cor ? plural(cor, 'corrupted frame') : '', reo ? plural(reo, 'reordered frame') : '']
        .filter(Boolean).join(', ') + ' delivered.');
    }
    crashes.forEach(function (c) {
      li('<b>' + esc(diskName(c.disk)) + '</b> crashed at ' + fmtT(c.t) + (c.policy ? ' (<code>' + esc(c.policy) + '</code>)' : '') + ': ' +
        (c.lost || c.torn
          ? '<b class="bad">' + plural(c.lost, 'unflushed write') + ' lost' + (c.torn ? ', ' + fmtN(c.torn) + ' torn' : '') + '</b> — ' + fmtB(c.bytes) + ' the guest had written but not flushed'
          : 'no unflushed writes lost') + (c.kept ? '; ' + fmtN(c.kept) + ' unflushed writes survived' : '') + '.');
    });
    events.filter(function (e) { return UNEXPECTED[e.kind]; }).slice(0, 10).forEach(function (e) {
      li('<b>' + esc(nodeName(e.node)) + '</b>: ' + esc(e.kind) + ' at ' + fmtT(e.t) + (e.detail ? ' — ' + esc(e.detail) : ''));
    });
    /* events the controller played after their planned time (stopped, starved) */
    var late = events.filter(function (e) { return e.kind === 'late'; });
    if (late.length) {
      li('<b class="bad">' + plural(late.length, 'event') + ' played late</b> (the controller was stopped or starved): ' +
        late.slice(0, 5).map(function (e) { return esc(e.detail || ''); }).join('; ') + (late.length > 5 ? '; …' : '') + '.');
    }
    if (!ul.children.length) li('Nothing notable: no checks, faults or drops were recorded.');
    /* where to dig: the same questions on the command line */
    var hints = ['faultline trace RUN --links'];
    if (windows.length) {
      var w0 = windows[0];
      hints.push('faultline trace RUN --fate dropped --since ' + (w0.t / 1e9).toFixed(3) + 's --until ' + (w0.end / 1e9).toFixed(3) + 's');
    }
    if (crashes.length) hints.push('faultline trace RUN --lost');
    hints.push('faultline trace RUN --from N1 --to N2 --pcap out.pcap');
    ul.appendChild(el('li', { class: 'muted' }, ['Dig deeper: '].concat(hints.map(function (h, i) {
      return el('span', {}, [i ? ' · ' : '', el('code', { text: h })]);
    }))));
    app.appendChild(el('div', { class: 'summary', id: 'summary' }, [el('b', { text: 'What happened' }), ul]));
  }

  /* ---------------------------------------------------------------- */
  /* shared time axis                                                 */
  /* ---------------------------------------------------------------- */
  function timeAxis(svg, x0, x1, y, yTop, scale) {
    var g = sv('g', { class: 'axis' }, svg);
    var step = niceStep(T1 - T0, Math.max(4, Math.round((x1 - x0) / 110)));
    for (var t = Math.ceil(T0 / step) * step; t <= T1; t += step) {
      var x = scale(t);
      sv('line', { x1: x, x2: x, y1: yTop, y2: y, 'stroke-dasharray': t === 0 ? '' : '2,3' }, g);
      sv('text', { x: x, y: y + 13, 'text-anchor': 'middle', text: fmtT(t) }, g);
    }
    if (T0 < 0 && T1 > 0) {
      sv('line', { x1: scale(0), x2: scale(0), y1: yTop, y2: y, stroke: '#1f8f4e', 'stroke-width': 1.5 }, svg);
      sv('text', { x: scale(0) + 3, y: yTop + 10, text: 't=0 ready', fill: '#1f8f4e', 'font-size': 10 }, svg);
    }
  }
  function legend(items) {
    return el('div', { class: 'legend' }, items.map(function (it) {
      return el('span', {}, [el('i', { style: 'background:' + it[1] + (it[2] ? ';' + it[2] : '') }), it[0]]);
    }));
  }

  /* ---------------------------------------------------------------- */
  /* timeline: one lane per node                                      */
  /* ---------------------------------------------------------------- */
  function timeline() {
    app.appendChild(el('h2', { text: 'Timeline' }));
    app.appendChild(legend([['window (partition, fault)', 'rgba(198,40,40,.16)'], ['frames delivered (to/from node)', '#7d9cc4'],
     ].concat(presentReasons().map(function (r) { return ['dropped: ' + r, reasonColor(r)]; })).concat([
      ['crash / exit', '#c62828'], ['restart', '#d97706'], ['other event', '#374151']])));
    var L = 96, Rm = 12, top = 26, lane = 58, n = nodeOrder.length;
    var H = top + Math.max(1, n) * lane + 24;
    var svg = sv('svg', { width: W, height: H, id: 'timeline', viewBox: '0 0 ' + W + ' ' + H });
    var scale = function (t) { return L + (t - T0) / (T1 - T0) * (W - L - Rm); };
    /* per-node frame activity per bucket */
    var act = {};
    nodeOrder.forEach(function (id) { act[id] = {}; });
    linkOrder.forEach(function (lid) {
      var l = links[lid];
      Object.keys(l.series).forEach(function (b) {
        var s = l.series[b];
        [l.src, l.dst].forEach(function (nid) {
          if (!act[nid]) return;
          var a = act[nid][b] = act[nid][b] || { d: 0, x: 0, reasons: {} };
          a.d += s.d; a.x += s.x;
          Object.keys(s.reasons).forEach(function (r) { a.reasons[r] = (a.reasons[r] || 0) + s.reasons[r]; });
        });
      });
    });
    var maxAct = 1;
    nodeOrder.forEach(function (id) { Object.keys(act[id]).forEach(function (b) { maxAct = Math.max(maxAct, act[id][b].d + act[id][b].x); }); });
    var bw = Math.max(1, (W - L - Rm) / D.buckets);
    nodeOrder.forEach(function (id, i) {
      var y = top + i * lane;
      sv('rect', { x: L, y: y + 1, width: W - L - Rm, height: lane - 2, fill: i % 2 ? '#fafbfd' : '#f3f5f9' }, svg);
      sv('text', { x: 8, y: y + lane / 2 + 4, class: 'lane-label', text: nodes[id].name }, svg);
      var hBase = y + lane - 4, hMax = 20;
      Object.keys(act[id]).forEach(function (b) {
        var a = act[id][b], x = scale(T0 + b * BW);
        var hd = a.d / maxAct * hMax, hx = a.x / maxAct * hMax;
        if (a.d) tip(sv('rect', { x: x, y: hBase - hd - hx, width: bw, height: hd, fill: '#7d9cc4' }, svg), fmtT(T0 + b * BW) + ': ' + a.d + ' frames delivered');
        if (a.x) {
          var rs = Object.keys(a.reasons).sort(function (p, q) { return a.reasons[q] - a.reasons[p]; });
          tip(sv('rect', { x: x, y: hBase - hx, width: bw, height: Math.max(1, hx), fill: reasonColor(rs[0]) }, svg),
            fmtT(T0 + b * BW) + ': ' + a.x + ' frames dropped (' + rs.map(function (r) { return r + ' ' + a.reasons[r]; }).join(', ') + ')');
        }
      });
    });
    timeAxis(svg, L, W - Rm, top + n * lane, top, scale);
    /* windows */
    windows.forEach(function (w) {
      var x0 = scale(w.t), x1 = scale(Math.min(w.end, T1));
      var rows = w.node && nodes[w.node] ? [nodes[w.node].idx] : nodeOrder.map(function (_, i) { return i; });
      var col = eventColor(w.kind);
      rows.forEach(function (i) {
        tip(sv('rect', { x: x0, y: top + i * lane + 1, width: Math.max(2, x1 - x0), height: lane - 2, fill: col, 'fill-opacity': 0.14, stroke: col, 'stroke-opacity': 0.5, 'stroke-dasharray': '3,2' }, svg),
          w.kind + ' ' + fmtT(w.t) + ' – ' + fmtT(w.end) + (w.detail ? '\n' + w.detail : ''));
      });
      tip(sv('text', { x: x0 + 4, y: top + rows[0] * lane + 13, text: w.kind + (w.detail ? ' ' + short(w.detail, Math.max(8, Math.floor((x1 - x0) / 6.5) - w.kind.length)) : ''), fill: col, 'font-weight': 600 }, svg), w.detail || w.kind);
    });
    /* instant events */
    var lastLabel = {};
    events.forEach(function (e) {
      if (e.end !== null && e.end !== undefined) return;
      var x = scale(e.t), col = eventColor(e.kind);
      if (!e.node || !nodes[e.node]) {
        tip(sv('line', { x1: x, x2: x, y1: top, y2: top + n * lane, stroke: col, 'stroke-width': 1.5, 'stroke-dasharray': '4,3' }, svg), e.kind + ' at ' + fmtT(e.t) + (e.detail ? '\n' + e.detail : ''));
        var nearEnd = x > W - 140;
        sv('text', { x: nearEnd ? x - 3 : x + 3, y: top - 6, 'text-anchor': nearEnd ? 'end' : 'start', text: e.kind, fill: col, 'font-weight': 600 }, svg);
        return;
      }
      var i = nodes[e.node].idx, y = top + i * lane + 24;
      var big = e.kind === 'crash' || UNEXPECTED[e.kind];
      var m = big ? sv('path', { d: 'M' + (x - 6) + ',' + (y - 6) + 'l12,12m0,-12l-12,12', stroke: col, 'stroke-width': 3 }, svg)
                  : sv('path', { d: 'M' + x + ',' + (y - 6) + 'l5,6l-5,6l-5,-6z', fill: col }, svg);
      tip(m, nodes[e.node].name + ': ' + e.kind + ' at ' + fmtT(e.t) + (e.detail ? '\n' + e.detail : ''));
      if (lastLabel[i] === undefined || x - lastLabel[i] > 70) {
        var atEnd = x > W - 100;
        sv('text', { x: atEnd ? x - 8 : x + 7, y: y - 5, 'text-anchor': atEnd ? 'end' : 'start', text: e.kind, fill: col, 'font-weight': big ? 700 : 400 }, svg);
        lastLabel[i] = x;
      }
    });
    crashes.forEach(function (c) {
      var d = disks[c.disk]; if (!d || !nodes[d.node]) return;
      var i = nodes[d.node].idx, x = scale(c.t);
      tip(sv('text', { x: x + 7, y: top + i * lane + 38, text: (c.lost + c.torn) + ' writes lost', fill: '#c62828', 'font-size': 10 }, svg),
        diskName(c.disk) + ': ' + c.lost + ' lost, ' + c.torn + ' torn, ' + c.kept + ' kept');
    });
    app.appendChild(svg);
  }

  /* ---------------------------------------------------------------- */
  /* space-time (message sequence) diagram                            */
  /* ---------------------------------------------------------------- */
  function spacetime() {
    app.appendChild(el('h2', { text: 'Messages between nodes (space-time diagram)' }));
    if (!D.frame_count) { app.appendChild(el('p', { class: 'note', id: 'spacetime', text: 'No frames were recorded.' })); return; }
    var individual = !!D.frames && D.frames.length <= 300;
    app.appendChild(el('p', { class: 'note', text: individual
      ? 'Every frame copy: time runs downwards; an arrow goes from the sender\'s line at the time it was sent to the receiver\'s line at the time it was delivered. Red ✕: dropped (hover for the reason).'
      : 'Too many frames to draw one by one (' + fmtN(D.frame_count) + '): each line is one link during one time slice, its width grows with the frame count. Grey: delivered; red ✕: dropped (hover for counts and reasons).' }));
    app.appendChild(legend([['delivered', '#7d9cc4'], ['dropped', '#c62828'], ['duplicate', '#0891b2'], ['corrupted', '#d97706'], ['window', 'rgba(198,40,40,.16)']]));
    var n = Math.max(1, nodeOrder.length), top = 30, Hplot = individual ? Math.max(360, Math.min(900, 200 + D.frames.length * 2)) : 700;
    var L = 70, Rm = 20, H = top + Hplot + 20;
    var svg = sv('svg', { width: W, height: H, id: 'spacetime', viewBox: '0 0 ' + W + ' ' + H });
    var colW = (W - L - Rm) / n;
    function xOf(nid) { return L + (nodes[nid] ? nodes[nid].idx : 0) * colW + colW / 2; }
    var st0 = T0, st1 = T1;
    function y(t) { return top + (t - st0) / (st1 - st0) * Hplot; }
    /* time grid */
    var g = sv('g', { class: 'axis' }, svg);
    var step = niceStep(st1 - st0, 12);
    for (var t = Math.ceil(st0 / step) * step; t <= st1; t += step) {
      sv('line', { x1: L - 6, x2: W - Rm, y1: y(t), y2: y(t), 'stroke-dasharray': '2,4' }, g);
      sv('text', { x: L - 9, y: y(t) + 3, 'text-anchor': 'end', text: fmtT(t) }, g);
    }
    windows.forEach(function (w) {
      var col = eventColor(w.kind);
      var xs = L, xe = W - Rm;
      if (w.node && nodes[w.node]) { xs = xOf(w.node) - colW / 2; xe = xs + colW; }
      tip(sv('rect', { x: xs, y: y(w.t), width: xe - xs, height: Math.max(2, y(Math.min(w.end, st1)) - y(w.t)), fill: col, 'fill-opacity': 0.08 }, svg), w.kind + ' ' + fmtT(w.t) + ' – ' + fmtT(w.end));
      var whole = !(w.node && nodes[w.node]);
      /* a node's window: label inside its column; the detail is in the tooltip */
      tip(sv('text', { x: whole ? xe - 4 : xs + 4, y: y(w.t) + 12, 'text-anchor': whole ? 'end' : 'start',
        text: whole ? w.kind + (w.detail ? ' ' + short(w.detail, 60) : '') + ' ' + fmtT(w.t) + '–' + fmtT(w.end)
                    : w.kind + ' ' + fmtT(w.t) + '–' + fmtT(w.end),
        fill: col, 'font-weight': 600, stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke' }, svg), w.detail || w.kind);
    });
    nodeOrder.forEach(function (id) {
      var x = xOf(id);
      sv('line', { x1: x, x2: x, y1: top - 4, y2: top + Hplot, stroke: '#1d2330', 'stroke-width': 1.5 }, svg);
      sv('text', { x: x, y: top - 10, 'text-anchor': 'middle', class: 'lane-label', text: nodes[id].name }, svg);
    });
    var lastY = {};
    events.forEach(function (e) {
      if (!e.node || !nodes[e.node] || (e.kind !== 'crash' && e.kind !== 'restart' && !UNEXPECTED[e.kind])) return;
      var x = xOf(e.node), yy = y(e.t), col = eventColor(e.kind);
      tip(sv('rect', { x: x - 9, y: yy - 2, width: 18, height: 4, fill: col }, svg), nodes[e.node].name + ': ' + e.kind + ' at ' + fmtT(e.t) + (e.detail ? '\n' + e.detail : ''));
      var ly = lastY[e.node] !== undefined && yy - lastY[e.node] < 13 ? lastY[e.node] + 13 : yy;
      lastY[e.node] = ly;
      var lab = sv('text', { x: x + 12, y: ly + 4, text: e.kind + ' ' + fmtT(e.t), fill: col, 'font-weight': 700, stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke' }, svg);
      tip(lab, e.detail || e.kind);
    });
    var lines = sv('g', {}, svg);
    /* where a dropped frame's line ends: short of the first lifeline it
     * would cross, so the ✕ never sits on a node that had no part in it */
    function dropX(xs, xd) { return xs + Math.sign(xd - xs) * Math.min(Math.abs(xd - xs) * 0.45, colW * 0.4); }
    /* a dropped copy ends part of the way: it never reached the receiver */
    if (individual) {
      D.frames.forEach(function (f) {
        var l = links[f[0]]; if (!l) return;
        var xs = xOf(l.src), xd = xOf(l.dst), ys = y(f[1]);
        if (f[3] === 'dropped') {
          var xm = dropX(xs, xd);
          var g1 = sv('g', {}, lines);
          sv('line', { x1: xs, y1: ys, x2: xm, y2: ys, stroke: reasonColor(f[4]), 'stroke-width': 1.3 }, g1);
          sv('path', { d: 'M' + (xm - 4) + ',' + (ys - 4) + 'l8,8m0,-8l-8,8', stroke: reasonColor(f[4]), 'stroke-width': 2 }, g1);
          tip(g1, linkName(f[0]) + ' sent ' + fmtT(f[1]) + ', dropped: ' + f[4] + ' (' + f[8] + ' bytes)');
        } else {
          var col = f[6] ? '#d97706' : f[5] > 0 ? '#0891b2' : '#7d9cc4';
          tip(sv('line', { x1: xs, y1: ys, x2: xd, y2: Math.max(ys + 4, y(f[2])), stroke: col, 'stroke-width': 1.2, 'marker-end': 'url(#arrow)' }, lines),
            linkName(f[0]) + ' sent ' + fmtT(f[1]) + ', delivered ' + fmtT(f[2]) + ' (' + fmtD(f[2] - f[1]) + ')' + (f[5] ? ', duplicate #' + f[5] : '') + (f[6] ? ', corrupted' : '') + (f[7] ? ', reordered' : ''));
        }
      });
      var defs = sv('defs', {}, svg);
      var mk = sv('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' }, defs);
      sv('path', { d: 'M0,0L10,5L0,10z', fill: '#7d9cc4' }, mk);
    } else {
      /* aggregate buckets so that each slice is at least 14 px tall; an
       * arrow per link and slice, slanted so direction shows */
      var per = Math.max(1, Math.ceil(14 / (Hplot / D.buckets)));
      var defs2 = sv('defs', {}, svg);
      var mk2 = sv('marker', { id: 'arrow-agg', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 5, markerHeight: 5, orient: 'auto-start-reverse' }, defs2);
      sv('path', { d: 'M0,0L10,5L0,10z', fill: '#5b7fae' }, mk2);
      linkOrder.forEach(function (lid) {
        var l = links[lid], agg = {};
        Object.keys(l.series).forEach(function (b) {
          var k = Math.floor(b / per), s = l.series[b], a = agg[k] = agg[k] || { d: 0, x: 0, dl: 0, reasons: {} };
          a.d += s.d; a.x += s.x; a.dl += (s.delay || 0) * s.d;
          Object.keys(s.reasons).forEach(function (r) { a.reasons[r] = (a.reasons[r] || 0) + s.reasons[r]; });
        });
        var xs = xOf(l.src), xd = xOf(l.dst);
        Object.keys(agg).forEach(function (k) {
          var a = agg[k], t = T0 + k * per * BW, ys = y(t) + 2;
          var slice = fmtT(T0 + k * per * BW) + '–' + fmtT(T0 + (k + 1) * per * BW);
          if (a.d) {
            var delay = a.dl / a.d;
            tip(sv('line', { x1: xs, y1: ys, x2: xd, y2: Math.max(ys + 10, y(t + delay) + 2), stroke: '#5b7fae', 'stroke-opacity': 0.6, 'stroke-width': Math.min(4, 0.5 + Math.log2(1 + a.d) * 0.5), 'marker-end': 'url(#arrow-agg)' }, lines),
              linkName(lid) + ' ' + slice + ': ' + fmtN(a.d) + ' delivered, mean delay ' + fmtD(Math.round(delay)));
          }
          if (a.x) {
            var top1 = Object.keys(a.reasons).sort(function (p, q) { return a.reasons[q] - a.reasons[p]; })[0];
            var col = reasonColor(top1), xm = dropX(xs, xd), g1 = sv('g', {}, lines), yx = ys + 4;
            sv('line', { x1: xs, y1: ys, x2: xm, y2: yx, stroke: col, 'stroke-width': Math.min(4, 1 + Math.log2(1 + a.x) * 0.5) }, g1);
            sv('path', { d: 'M' + (xm - 4) + ',' + (yx - 4) + 'l8,8m0,-8l-8,8', stroke: col, 'stroke-width': 2.2 }, g1);
            tip(g1, linkName(lid) + ' ' + slice + ': ' + fmtN(a.x) + ' dropped (' + Object.keys(a.reasons).map(function (r) { return r + ' ' + a.reasons[r]; }).join(', ') + ')' + (a.d ? ', ' + fmtN(a.d) + ' delivered' : ''));
          }
        });
      });
    }
    app.appendChild(svg);
  }

  /* ---------------------------------------------------------------- */
  /* links: chart and table                                           */
  /* ---------------------------------------------------------------- */
  function linksSection() {
    app.appendChild(el('h2', { text: 'Links' }));
    var used = linkOrder.filter(function (id) { return links[id].sent || links[id].delivered || links[id].dropped || links[id].params.length; });
    if (!used.length) { app.appendChild(el('p', { class: 'note', text: 'No frames were recorded.' })); return; }
    var reasons = D.reasons.filter(function (r) { return used.some(function (id) { return links[id].drops[r]; }); });
    app.appendChild(legend([['delivered', '#7d9cc4']].concat(reasons.map(function (r) { return ['dropped: ' + r, reasonColor(r)]; }))));
    /* stacked bars */
    var L = 150, rowH = 20, H = used.length * rowH + 8;
    var svg = sv('svg', { width: W, height: H, id: 'link-chart', viewBox: '0 0 ' + W + ' ' + H });
    var max = 1;
    used.forEach(function (id) { max = Math.max(max, links[id].delivered + links[id].dropped); });
    used.forEach(function (id, i) {
      var l = links[id], y = 4 + i * rowH, x = L, scale = (W - L - 300) / max;
      sv('text', { x: L - 8, y: y + 13, 'text-anchor': 'end', text: linkName(id) + (l.net ? ' (' + l.net + ')' : '') }, svg);
      var parts = [['delivered', l.delivered, '#7d9cc4']].concat(reasons.map(function (r) { return [r, l.drops[r] || 0, reasonColor(r)]; }));
      parts.forEach(function (p) {
        if (!p[1]) return;
        tip(sv('rect', { x: x, y: y + 2, width: Math.max(1, p[1] * scale), height: rowH - 5, fill: p[2] }, svg), linkName(id) + ': ' + fmtN(p[1]) + ' ' + (p[0] === 'delivered' ? 'delivered' : 'dropped (' + p[0] + ')'));
        x += p[1] * scale;
      });
      var pct = l.delivered + l.dropped ? (100 * l.dropped / (l.delivered + l.dropped)) : 0;
      sv('text', { x: x + 6, y: y + 13, text: fmtN(l.delivered) + ' delivered' + (l.dropped ? ', ' + fmtN(l.dropped) + ' dropped (' + pct.toFixed(1) + '%)' : ''), fill: l.dropped ? '#c62828' : '#667085' }, svg);
    });
    app.appendChild(svg);
    /* table */
    var head = ['link', 'sent', 'delivered', 'dropped', 'dup', 'corrupt', 'reord', 'p50', 'p90', 'p99', 'max', 'activity', 'parameters'];
    var tb = el('table', { id: 'link-table' });
    tb.appendChild(el('tr', {}, head.map(function (h, i) { return el('th', { class: i && i < 11 ? 'num' : '', text: h }); })));
    used.forEach(function (id) {
      var l = links[id], d = l.delays || [null, null, null, null];
      var drops = el('td', { class: 'num' }, [fmtN(l.dropped)]);
      Object.keys(l.drops).forEach(function (r) { drops.appendChild(el('span', { class: 'chip', style: 'background:' + reasonColor(r), text: r + ' ' + fmtN(l.drops[r]) })); });
      var spark = sv('svg', { width: 160, height: 22 });
      var maxB = 1;
      Object.keys(l.series).forEach(function (b) { maxB = Math.max(maxB, l.series[b].d + l.series[b].x); });
      Object.keys(l.series).forEach(function (b) {
        var s = l.series[b], x = b / D.buckets * 160, w = Math.max(1, 160 / D.buckets);
        var hd = s.d / maxB * 20, hx = s.x / maxB * 20;
        if (s.d) sv('rect', { x: x, y: 21 - hd - hx, width: w, height: hd, fill: '#7d9cc4' }, spark);
        if (s.x) sv('rect', { x: x, y: 21 - hx, width: w, height: Math.max(1, hx), fill: '#c62828' }, spark);
      });
      var params = el('td', { class: 'mono' }, l.params.map(function (p, i) {
        var when = i === 0 && p.t <= 0 ? 'from boot' : 'at ' + fmtT(p.t);
        return el('div', { text: when + ': ' + (p.text === 'none' ? 'no impairment' : p.text) });
      }));
      tb.appendChild(el('tr', {}, [
        el('td', { text: linkName(id) + (l.net ? ' (' + l.net + ')' : '') }),
        el('td', { class: 'num', text: fmtN(l.sent) }), el('td', { class: 'num', text: fmtN(l.delivered) }), drops,
        el('td', { class: 'num', text: fmtN(l.dup) }), el('td', { class: 'num', text: fmtN(l.corrupt) }), el('td', { class: 'num', text: fmtN(l.reord) }),
        el('td', { class: 'num', text: fmtD(d[0]) }), el('td', { class: 'num', text: fmtD(d[1]) }), el('td', { class: 'num', text: fmtD(d[2]) }), el('td', { class: 'num', text: fmtD(d[3]) }),
        el('td', {}, [spark]), params
      ]));
    });
    app.appendChild(tb);
    app.appendChild(el('p', { class: 'note', text: 'sent: original copies; delivered/dropped count every copy (duplicates included). Delay = delivered − sent, over delivered copies. Activity spans the whole run (' + fmtT(T0) + ' … ' + fmtT(T1) + ').' }));
  }

  /* ---------------------------------------------------------------- */
  /* disks and crashes                                                */
  /* ---------------------------------------------------------------- */
  function disksSection() {
    app.appendChild(el('h2', { text: 'Disk I/O and crashes' }));
    if (!diskOrder.length) { app.appendChild(el('p', { class: 'note', text: 'No disks were recorded.' })); return; }
    app.appendChild(legend([['writes (per slice)', '#4f7cc4'], ['reads', '#5aa469'], ['flush', '#1d2330'], ['I/O error', '#c62828'], ['lost write', '#c62828'], ['torn write', '#d97706']]));
    diskOrder.forEach(function (id) {
      var d = disks[id];
      app.appendChild(el('h3', { text: diskName(id) + (d.size ? ' — ' + fmtB(d.size) : '') }));
      var lostTotal = crashes.filter(function (c) { return c.disk === id; }).reduce(function (a, c) { return a + c.lost + c.torn; }, 0);
      app.appendChild(el('div', { class: 'cards' }, [
        ['requests', fmtN(d.count)], ['reads', fmtN(d.reads) + ' · ' + fmtB(d.rbytes)], ['writes', fmtN(d.writes) + ' · ' + fmtB(d.wbytes)],
        ['flushes', fmtN(d.flushes)], ['errors', fmtN(d.errors), d.errors], ['lost at crashes', fmtN(lostTotal), lostTotal]
      ].map(function (c) { return el('div', { class: 'card' + (c[2] ? ' bad' : '') }, [el('div', { class: 'v', text: c[1] }), el('div', { class: 'k', text: c[0] })]); })));
      var L = 96, Rm = 12, top = 16, h = 110, H = top + h + 24;
      var svg = sv('svg', { width: W, height: H, class: 'disk-chart', viewBox: '0 0 ' + W + ' ' + H });
      var scale = function (t) { return L + (t - T0) / (T1 - T0) * (W - L - Rm); };
      timeAxis(svg, L, W - Rm, top + h, top, scale);
      /* writes and reads on their own scales: a few writes among many
       * reads must still show */
      var mid = top + 48, maxW = 1, maxR = 1;
      Object.keys(d.series).forEach(function (b) { maxW = Math.max(maxW, d.series[b].w); maxR = Math.max(maxR, d.series[b].r); });
      sv('text', { x: 8, y: top + 24, text: 'writes', fill: '#4f7cc4' }, svg);
      sv('text', { x: 8, y: mid + 26, text: 'reads', fill: '#5aa469' }, svg);
      sv('text', { x: 8, y: top + h - 14, text: 'lost', fill: '#c62828' }, svg);
      sv('line', { x1: L, x2: W - Rm, y1: mid, y2: mid, stroke: '#d9dee7' }, svg);
      var bw = Math.max(1, (W - L - Rm) / D.buckets);
      Object.keys(d.series).forEach(function (b) {
        var s = d.series[b], x = scale(T0 + b * BW);
        var what = fmtT(T0 + b * BW) + ': ' + s.w + ' writes, ' + s.r + ' reads, ' + s.f + ' flushes' + (s.e ? ', ' + s.e + ' errors' : '');
        if (s.w) tip(sv('rect', { x: x, y: mid - Math.max(2, s.w / maxW * 40), width: bw, height: Math.max(2, s.w / maxW * 40), fill: '#4f7cc4' }, svg), what);
        if (s.r) tip(sv('rect', { x: x, y: mid, width: bw, height: Math.max(2, s.r / maxR * 40), fill: '#5aa469' }, svg), what);
        if (s.f) tip(sv('rect', { x: x + bw / 2 - 1, y: mid - 46, width: 2, height: 6, fill: '#1d2330' }, svg), what);
        if (s.e) tip(sv('circle', { cx: x + bw / 2, cy: mid - 42, r: 3, fill: '#c62828' }, svg), what);
      });
      crashes.filter(function (c) { return c.disk === id; }).forEach(function (c) {
        var x = scale(c.t);
        sv('line', { x1: x, x2: x, y1: top, y2: top + h, stroke: '#c62828', 'stroke-width': 2 }, svg);
        sv('text', { x: x + 4, y: top + 10, text: 'crash: ' + c.lost + ' lost, ' + c.torn + ' torn', fill: '#c62828', 'font-weight': 700 }, svg);
        c.writes.forEach(function (w) {
          if (w.outcome === 'kept') return;
          var col = w.outcome === 'torn' ? '#d97706' : '#c62828';
          tip(sv('rect', { x: scale(w.t) - 1, y: top + h - 24, width: 3, height: 14, fill: col }, svg),
            w.outcome + ' write at ' + fmtT(w.t) + ': offset ' + w.off + ', ' + fmtB(w.len) + (w.outcome === 'torn' ? ' (' + fmtB(w.kept) + ' kept)' : ''));
        });
      });
      app.appendChild(svg);
      if (d.lat.length) {
        var lt = el('table', { class: 'latency' });
        lt.appendChild(el('tr', {}, ['op', 'completed', 'p50', 'p99', 'max'].map(function (x, i) { return el('th', { class: i ? 'num' : '', text: x }); })));
        d.lat.forEach(function (r) {
          lt.appendChild(el('tr', {}, [el('td', { text: r.op }), el('td', { class: 'num', text: fmtN(r.n) }), el('td', { class: 'num', text: fmtD(r.p50) }),
            el('td', { class: 'num', text: fmtD(r.p99) }), el('td', { class: 'num', text: fmtD(r.max) })]));
        });
        app.appendChild(lt);
      }
    });
    var errs = D.io_errors;
    if (errs.length) {
      app.appendChild(el('h3', { text: 'Failed requests' }));
      var et = el('table', { id: 'io-errors' });
      et.appendChild(el('tr', {}, ['time', 'disk', 'op', 'offset', 'length', 'error', 'injected'].map(function (x) { return el('th', { text: x }); })));
      errs.slice(0, 50).forEach(function (e) {
        et.appendChild(el('tr', {}, [fmtT(e[1]), diskName(e[0]), e[2], String(e[3]), fmtB(e[4]), e[5] ? 'errno ' + e[5] : 'ok', e[6]].map(function (x) { return el('td', { text: x }); })));
      });
      app.appendChild(et);
    }
    if (crashes.length) {
      app.appendChild(el('h3', { text: 'What each crash lost' }));
      var ct = el('table', { id: 'crash-table' });
      ct.appendChild(el('tr', {}, ['time', 'disk', 'policy', 'lost', 'torn', 'kept', 'bytes lost', 'unflushed writes (oldest first)'].map(function (x, i) { return el('th', { class: i >= 3 && i <= 6 ? 'num' : '', text: x }); })));
      crashes.forEach(function (c) {
        var ws = el('td', { class: 'mono' });
        c.writes.slice(0, 12).forEach(function (w) {
          ws.appendChild(el('div', { text: w.outcome + ' ' + fmtT(w.t) + ' @' + w.off + ' +' + w.len + (w.outcome === 'torn' ? ' (kept ' + w.kept + ')' : '') }));
        });
        if (c.writes.length > 12) ws.appendChild(el('div', { class: 'muted', text: '… ' + (c.writes.length - 12) + ' more (faultline trace RUN --lost)' }));
        ct.appendChild(el('tr', { class: c.lost || c.torn ? 'failed' : 'passed' }, [
          el('td', { text: fmtT(c.t) }), el('td', { text: diskName(c.disk) }), el('td', { class: 'mono', text: c.policy || '' }),
          el('td', { class: 'num', text: fmtN(c.lost) }), el('td', { class: 'num', text: fmtN(c.torn) }), el('td', { class: 'num', text: fmtN(c.kept) }),
          el('td', { class: 'num', text: fmtB(c.bytes) }), ws]));
      });
      app.appendChild(ct);
    }
  }

  /* ---------------------------------------------------------------- */
  /* checks, events, scenario                                         */
  /* ---------------------------------------------------------------- */
  function checksSection() {
    app.appendChild(el('h2', { text: 'Checks' }));
    if (!checks.length) { app.appendChild(el('p', { class: 'note', text: 'The scenario has no checks (or they did not run).' })); return; }
    var t = el('table', { id: 'checks' });
    t.appendChild(el('tr', {}, ['check', 'node', 'result', 'exit', 'took', 'command and output'].map(function (x) { return el('th', { text: x }); })));
    checks.forEach(function (c) {
      var out = el('td', {}, [el('code', { text: c.cmd || '' })]);
      if (c.out) out.appendChild(el('details', c.passed ? {} : { open: '' }, [el('summary', { text: 'stdout' }), el('pre', { text: c.out })]));
      if (c.err) out.appendChild(el('details', c.passed ? {} : { open: '' }, [el('summary', { text: 'stderr' }), el('pre', { text: c.err })]));
      var cmd = c.passed ? null : replayCommand(c);
      if (cmd) out.appendChild(el('div', {}, ['replay: ', el('code', { class: 'replay', text: cmd })]));
      t.appendChild(el('tr', { class: c.passed ? 'passed' : 'failed' }, [
        el('td', { text: c.name }), el('td', { text: c.node ? nodeName(c.node) + (recorded[c.node] ? ' (recorded)' : '') : 'controller' }),
        el('td', { class: c.passed ? 'pass-t' : 'fail-t', text: c.passed ? 'passed' : 'FAILED' }),
        el('td', { class: 'num', text: c.exit === -1 ? 'did not run' : String(c.exit) }),
        el('td', { class: 'num', text: c.start !== null && c.end !== null ? fmtD(c.end - c.start) : '–' }), out]));
    });
    app.appendChild(t);
  }
  function recordingSection() {
    if (!segments.length) return;
    app.appendChild(el('h2', { text: 'Recorded nodes' }));
    app.appendChild(el('p', { class: 'note', text: 'Each segment is one QEMU process of a recorded node (its first boot, then each restart); ' +
      'faultline replay runs it again alone, instruction for instruction (docs/record-replay.md).' }));
    var t = el('table', { id: 'segments' });
    t.appendChild(el('tr', {}, ['node', 'segment', 'start', 'duration', 'ended', 'instructions', 'replay'].map(function (x) { return el('th', { text: x }); })));
    segments.forEach(function (s) {
      var has = function (v) { return v !== null && v !== undefined; };
      t.appendChild(el('tr', { class: s.ended === 'quit' ? 'passed' : 'failed' }, [
        el('td', { text: nodeName(s.node) }), el('td', { class: 'num', text: String(s.k) }),
        el('td', { class: 'num', text: has(s.start) ? fmtT(s.start) : '–' }),
        el('td', { class: 'num', text: has(s.start) && has(s.end) ? fmtD(s.end - s.start) : '–' }),
        el('td', { class: s.ended === 'quit' ? 'pass-t' : 'fail-t', text: s.ended === 'quit' ? 'quit (replayable)' : s.ended }),
        el('td', { class: 'num', text: has(s.icount) ? fmtN(s.icount) : '–' }),
        el('td', {}, [el('code', { class: 'replay', text: 'faultline replay ' + shq(D.run_dir || '.') + ' ' + shq(nodeName(s.node)) + ' --segment ' + s.k })])]));
    });
    app.appendChild(t);
  }
  function eventsSection() {
    app.appendChild(el('h2', { text: 'Events' }));
    var t = el('table', { id: 'events' });
    t.appendChild(el('tr', {}, ['time', 'until', 'node', 'kind', 'detail'].map(function (x) { return el('th', { text: x }); })));
    events.slice(0, 1000).forEach(function (e) {
      t.appendChild(el('tr', {}, [el('td', { class: 'num', text: fmtT(e.t) }), el('td', { class: 'num', text: e.end !== null && e.end !== undefined ? fmtT(e.end) : '' }),
        el('td', { text: e.node ? nodeName(e.node) : '*' }), el('td', {}, [el('span', { class: 'chip', style: 'background:' + eventColor(e.kind), text: e.kind })]),
        el('td', { class: 'mono', text: e.detail || '' })]));
    });
    app.appendChild(t);
    if (events.length > 1000) app.appendChild(el('p', { class: 'note', text: (events.length - 1000) + ' more: faultline trace RUN --events' }));
    if (R.text) app.appendChild(el('details', {}, [el('summary', { text: 'Scenario ' + (R.path || '') }), el('pre', { text: R.text })]));
    app.appendChild(el('p', { class: 'note', text: 'Times are on the run clock (0 = every node ready). Schema version ' + D.schema_version + '; the data behind this page is in run.db (docs/run-database.md).' }));
  }

  try {
    header();
    summary();
    checksSection();
    recordingSection();
    timeline();
    spacetime();
    linksSection();
    disksSection();
    eventsSection();
    if (body.getAttribute('data-rendered') !== 'error') {
      body.setAttribute('data-rendered', 'ok');
      document.title = R.name + ' — ' + R.verdict + ' — faultline report';
    }
  } catch (e) {
    fail((e && e.stack) || String(e));
  }
})();
