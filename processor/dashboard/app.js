/*
 * declstream dashboard: polls the processor's JSON API every 2 s and renders
 * per-gate and per-heading totals (today, last hour), flows, a per-minute
 * customs value chart (uPlot, vendored), dead letters and lag.
 *
 * Plain JavaScript, no build step. Every figure is written with textContent
 * (API strings are never parsed as HTML). Numbers carry stable hooks for
 * scripts and tests:
 *   <tr data-gate="MONGCAI">      <td data-view="today|last_1h" data-field="declarations" data-value="123">
 *   <tr data-heading="0810">      (same cells)
 *   <span data-view="today" data-field="export_value_usd_cents" data-value="..."> (flow bar segments)
 *   <body data-state="connecting|live|error">, #updated[data-value] = summary.updated_at,
 *   #now[data-value] = summary.now, [data-kpi][data-value].
 * data-value is always the raw integer the API returned (cents, grams, counts).
 */
(function () {
  'use strict';

  var POLL_MS = 2000;
  var TIMEOUT_MS = 5000;
  var MIN_MS = 60000;
  var VN_OFFSET_MS = 7 * 3600000; /* customs days are local days in Vietnam, UTC+7, no DST */
  var FLOWS = [
    { id: 'export', field: 'export_value_usd_cents', label: 'export' },
    { id: 'import', field: 'import_value_usd_cents', label: 'import' },
    { id: 'transit', field: 'transit_value_usd_cents', label: 'transit' },
    { id: 'border_resident', field: 'border_resident_value_usd_cents', label: 'border-resident' }
  ];
  var MEASURES = ['declarations', 'items', 'customs_value_usd_cents', 'gross_weight_g'].concat(
    FLOWS.map(function (f) { return f.field; }));

  var st = {
    everConnected: false,
    lastOkWall: 0,      /* browser clock of the last complete refresh */
    summary: null,
    gate: null,         /* selected gate code, or null: all gates */
    range: 60,          /* chart minutes */
    sort: {
      gates: { key: 'today.customs_value_usd_cents', asc: false },
      headings: { key: 'today.customs_value_usd_cents', asc: false }
    },
    last: null,         /* the last data set rendered, re-rendered on sort */
    timer: null,
    inFlight: false,
    again: false,
    failures: 0,
    chart: null,
    chartKey: ''
  };

  /* ---------------------------------------------------------------- formatting */
  var nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  var nf1 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var nf2 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function num(v) { return v == null || isNaN(v) ? '–' : nf0.format(v); }
  /* US cents -> whole dollars with thousands separators: 1234567890 -> "12,345,679" */
  function usd(cents) { return cents == null ? '–' : nf0.format(Math.round(cents / 100)); }
  /* US cents -> "12.3 M USD" */
  function usdCompact(cents) {
    if (cents == null) return '–';
    var d = cents / 100, a = Math.abs(d);
    if (a >= 1e9) return nf1.format(d / 1e9) + ' B USD';
    if (a >= 1e6) return nf1.format(d / 1e6) + ' M USD';
    if (a >= 1e4) return nf1.format(d / 1e3) + ' k USD';
    return nf0.format(d) + ' USD';
  }
  /* grams -> tonnes, one decimal: 1234567000 -> "1,234.6" */
  function tonnes(g) { return g == null ? '–' : nf1.format(g / 1e6); }
  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return nf1.format(v / 1e9) + 'B';
    if (a >= 1e6) return nf1.format(v / 1e6) + 'M';
    if (a >= 1e3) return nf0.format(v / 1e3) + 'k';
    return nf0.format(v);
  }
  function rate(v) { return v == null || isNaN(v) ? '–' : (v >= 100 ? nf0.format(v) : v >= 10 ? nf1.format(v) : nf2.format(v)); }
  function isTime(ms) { return typeof ms === 'number' && isFinite(ms) && ms > 0; }
  /* ms since the epoch -> "2026-11-23 14:05" in UTC+7 */
  function vnDateTime(ms) {
    if (!isTime(ms)) return '–';
    var s = new Date(ms + VN_OFFSET_MS).toISOString();
    return s.slice(0, 10) + ' ' + s.slice(11, 16);
  }
  function vnClock(ms) { return isTime(ms) ? new Date(ms + VN_OFFSET_MS).toISOString().slice(11, 19) : '–'; }
  function vnDay(ms) { return isTime(ms) ? new Date(ms + VN_OFFSET_MS).toISOString().slice(0, 10) : '–'; }

  /* ---------------------------------------------------------------- DOM helpers */
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] != null) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function setText(id, text, raw) {
    var e = $(id);
    if (!e) return;
    e.textContent = text;
    if (raw !== undefined) e.setAttribute('data-value', raw == null ? '' : String(raw));
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  /* A number cell: shown formatted, the raw integer in data-value. */
  function cell(view, field, raw, text, cls) {
    var td = el('td', { 'class': 'num' + (cls ? ' ' + cls : ''), 'data-view': view, 'data-field': field,
                        'data-value': String(raw == null ? 0 : raw) }, text);
    return td;
  }

  /* ---------------------------------------------------------------- API */
  function ApiError(path, message, status) {
    this.path = path;
    this.message = message;
    this.status = status;
  }
  ApiError.prototype.toString = function () { return 'GET ' + this.path + ': ' + this.message; };

  /* Relative URLs: the page works at "/" and behind a reverse proxy prefix. */
  function getJSON(path) {
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, TIMEOUT_MS);
    return fetch(path, { cache: 'no-store', signal: ctl ? ctl.signal : undefined, headers: { Accept: 'application/json' } })
      .then(function (r) {
        return r.text().then(function (text) {
          var body = null;
          try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
          if (!r.ok) {
            var why = 'HTTP ' + r.status;
            if (body && body.error) why += ': ' + body.error + (body.parameter ? ' (parameter ' + body.parameter + ')' : '');
            throw new ApiError(path, why, r.status);
          }
          if (body === null || typeof body !== 'object') throw new ApiError(path, 'the answer is not JSON', r.status);
          return body;
        });
      }, function (e) {
        throw new ApiError(path, e && e.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s'
                                                              : 'unreachable (' + (e && e.message || e) + ')', 0);
      })
      .then(function (v) { clearTimeout(timer); return v; }, function (e) { clearTimeout(timer); throw e; });
  }

  function qs(params) {
    var out = [];
    for (var k in params) if (params[k] != null) out.push(encodeURIComponent(k) + '=' + encodeURIComponent(params[k]));
    return out.join('&');
  }

  /* One refresh: the summary, then everything else at the same data time. */
  function refresh() {
    return getJSON('api/summary').then(function (s) {
      var now = isTime(s.now) ? s.now : null;
      var seriesTo = now || Math.floor(Date.now() / MIN_MS) * MIN_MS;
      var seriesFrom = seriesTo - (st.range - 1) * MIN_MS;
      var series = { window: 'minute', from: seriesFrom, to: seriesTo };
      if (st.gate) { series.dimension = 'gate'; series.key = st.gate; }
      var reqs = [
        getJSON('api/rolling?' + qs({ view: 'today', dimension: 'gate', now: now })),
        getJSON('api/rolling?' + qs({ view: 'last_1h', dimension: 'gate', now: now })),
        getJSON('api/rolling?' + qs({ view: 'today', dimension: 'commodity', now: now })),
        getJSON('api/rolling?' + qs({ view: 'last_1h', dimension: 'commodity', now: now })),
        getJSON('api/series?' + qs(series))
      ];
      /* the top list is optional: a failure shows in its table, not as an outage */
      var gate = st.gate;
      var top = gate ? getJSON('api/top?' + qs({ gate: gate, day: 'today' })).then(null, function (e) { return { error: String(e) }; })
                     : Promise.resolve(null);
      reqs.push(top);
      return Promise.all(reqs).then(function (r) {
        return { summary: s, gatesToday: r[0], gates1h: r[1], headsToday: r[2], heads1h: r[3], series: r[4],
                 seriesFrom: seriesFrom, seriesTo: seriesTo, seriesGate: gate, top: r[5], topGate: gate };
      });
    });
  }

  function poll() {
    if (st.inFlight) { st.again = true; return; }
    clearTimeout(st.timer);
    st.inFlight = true;
    var t0 = Date.now();
    refresh().then(function (d) {
      st.failures = 0;
      st.everConnected = true;
      st.lastOkWall = Date.now();
      st.last = d;
      render(d);
      setState('live');
    }, function (e) {
      st.failures++;
      setState(st.everConnected ? 'error' : 'connecting', e);
      if (!(e instanceof ApiError) && window.console) console.error(e);
    }).then(function () {
      st.inFlight = false;
      var wait = st.again ? 0 : Math.max(200, POLL_MS - (Date.now() - t0));
      st.again = false;
      st.timer = setTimeout(poll, wait);
    });
  }

  /* ---------------------------------------------------------------- state, banner */
  function setState(state, err) {
    document.body.setAttribute('data-state', state);
    var pill = $('status');
    pill.setAttribute('data-state', state);
    var banner = $('banner');
    if (state === 'live') {
      pill.textContent = 'live';
      var s = st.summary;
      if (s && s.ready === false) {
        banner.className = 'banner info';
        banner.textContent = 'Not ready yet: partitions are being assigned or their state restored, or the ' +
          'processor is catching up — the figures may be incomplete.';
        banner.hidden = false;
      } else {
        banner.hidden = true;
      }
      return;
    }
    banner.className = 'banner';
    banner.hidden = false;
    if (state === 'connecting') {
      pill.textContent = 'connecting...';
      banner.textContent = 'Cannot reach the declstream API' + (err ? ' (' + err + ')' : '') +
        '. Retrying every ' + POLL_MS / 1000 + ' s (attempt ' + (st.failures + 1) + ') — no data yet.';
    } else {
      pill.textContent = 'API unreachable';
      banner.textContent = 'The declstream API is unreachable' + (err ? ' (' + err + ')' : '') +
        '. Retrying every ' + POLL_MS / 1000 + ' s; the figures below are from ' + vnClock(st.summary && st.summary.updated_at) +
        ' (UTC+7), ' + Math.round((Date.now() - st.lastOkWall) / 1000) + ' s ago.';
    }
  }

  function tick() {
    if (!st.lastOkWall) return;
    var ago = Math.round((Date.now() - st.lastOkWall) / 1000);
    var s = st.summary;
    $('updated').textContent = vnClock(s && s.updated_at) + ' (' + (ago <= 1 ? 'just now' : ago + ' s ago') + ')';
    if (document.body.getAttribute('data-state') === 'live' && ago > 3 * POLL_MS / 1000 + 5) {
      $('status').setAttribute('data-state', 'stale');
      $('status').textContent = 'stale';
    }
  }

  /* ---------------------------------------------------------------- render */
  function zero() { var o = {}; MEASURES.forEach(function (m) { o[m] = 0; }); return o; }

  /* Joins the today and last-hour rows of one dimension by key. */
  function join(today, lastHour) {
    var by = {}, order = [];
    function take(rows, view) {
      (rows || []).forEach(function (r) {
        var k = String(r.key);
        if (!by[k]) { by[k] = { key: k, name: null, today: zero(), last_1h: zero() }; order.push(k); }
        if (r.name) by[k].name = r.name;
        MEASURES.forEach(function (m) { if (typeof r[m] === 'number') by[k][view][m] = r[m]; });
      });
    }
    take(today && today.rows, 'today');
    take(lastHour && lastHour.rows, 'last_1h');
    return order.map(function (k) { return by[k]; });
  }

  function sortRows(rows, sort) {
    var path = sort.key.split('.');
    function val(r) { return path.length === 1 ? r[path[0]] : r[path[0]][path[1]]; }
    rows.sort(function (a, b) {
      var x = val(a), y = val(b), c;
      if (typeof x === 'string') c = x.localeCompare(y);
      else c = x - y;
      if (c === 0) c = a.key.localeCompare(b.key);
      return sort.asc ? c : -c;
    });
    return rows;
  }

  function sum(rows, view) {
    var t = zero();
    rows.forEach(function (r) { MEASURES.forEach(function (m) { t[m] += r[view][m]; }); });
    return t;
  }

  function nameCell(code, name, lang) {
    var td = el('td', { 'class': 'name', title: name ? code + ' · ' + name : code });
    td.appendChild(el('span', { 'class': 'code', 'data-field': 'key' }, code));
    if (name) td.appendChild(el('span', { 'class': 'vi', lang: lang, 'data-field': 'name' }, name));
    return td;
  }

  function flowBar(m, view) {
    var total = 0;
    FLOWS.forEach(function (f) { total += m[f.field]; });
    var bar = el('div', { 'class': 'flowbar', 'data-view': view,
      title: FLOWS.map(function (f) { return f.label + ': ' + usd(m[f.field]) + ' USD' + (total ? ' (' + Math.round(100 * m[f.field] / total) + ' %)' : ''); }).join('\n') });
    FLOWS.forEach(function (f) {
      var s = el('span', { 'class': 'f-' + f.id, 'data-view': view, 'data-field': f.field, 'data-value': String(m[f.field]) });
      s.style.width = (total ? 100 * m[f.field] / total : 0) + '%';
      bar.appendChild(s);
    });
    return bar;
  }

  function renderGates(rows, selected) {
    var tbody = $('gates').tBodies[0];
    var tfoot = $('gates').tFoot;
    clear(tbody);
    clear(tfoot);
    if (!rows.length) {
      tbody.appendChild(el('tr', { 'class': 'placeholder' })).appendChild(el('td', { colspan: 7 }, 'no declarations today yet'));
      return;
    }
    rows.forEach(function (r) {
      var tr = el('tr', { 'data-gate': r.key });
      if (r.key === selected) tr.className = 'selected';
      tr.appendChild(nameCell(r.key, r.name, 'vi'));
      tr.appendChild(cell('today', 'declarations', r.today.declarations, num(r.today.declarations)));
      tr.lastChild.title = num(r.today.items) + ' line items';
      tr.appendChild(cell('today', 'customs_value_usd_cents', r.today.customs_value_usd_cents, usd(r.today.customs_value_usd_cents)));
      tr.appendChild(cell('today', 'gross_weight_g', r.today.gross_weight_g, tonnes(r.today.gross_weight_g)));
      tr.appendChild(el('td', { 'class': 'flow' })).appendChild(flowBar(r.today, 'today'));
      tr.appendChild(cell('last_1h', 'declarations', r.last_1h.declarations, num(r.last_1h.declarations), 'last1h'));
      tr.appendChild(cell('last_1h', 'customs_value_usd_cents', r.last_1h.customs_value_usd_cents, usd(r.last_1h.customs_value_usd_cents), 'last1h'));
      tbody.appendChild(tr);
    });
    var t = sum(rows, 'today'), h = sum(rows, 'last_1h');
    var tr = el('tr', { 'data-total': 'gates' });
    tr.appendChild(el('td', null, rows.length + ' gates'));
    tr.appendChild(cell('today', 'declarations', t.declarations, num(t.declarations)));
    tr.appendChild(cell('today', 'customs_value_usd_cents', t.customs_value_usd_cents, usd(t.customs_value_usd_cents)));
    tr.appendChild(cell('today', 'gross_weight_g', t.gross_weight_g, tonnes(t.gross_weight_g)));
    tr.appendChild(el('td', { 'class': 'flow' })).appendChild(flowBar(t, 'today'));
    tr.appendChild(cell('last_1h', 'declarations', h.declarations, num(h.declarations), 'last1h'));
    tr.appendChild(cell('last_1h', 'customs_value_usd_cents', h.customs_value_usd_cents, usd(h.customs_value_usd_cents), 'last1h'));
    tfoot.appendChild(tr);
  }

  function renderHeadings(rows) {
    var tbody = $('headings').tBodies[0];
    clear(tbody);
    if (!rows.length) {
      tbody.appendChild(el('tr', { 'class': 'placeholder' })).appendChild(el('td', { colspan: 5 }, 'no declarations today yet'));
      return;
    }
    rows.forEach(function (r) {
      var tr = el('tr', { 'data-heading': r.key });
      tr.appendChild(nameCell(r.key, r.name, 'vi'));
      tr.appendChild(cell('today', 'declarations', r.today.declarations, num(r.today.declarations)));
      tr.lastChild.title = num(r.today.items) + ' line items';
      tr.appendChild(cell('today', 'customs_value_usd_cents', r.today.customs_value_usd_cents, usd(r.today.customs_value_usd_cents)));
      /* no room for a weight column next to the names: it is in the tooltip and in data-gross-weight-g */
      tr.lastChild.title = tonnes(r.today.gross_weight_g) + ' t gross weight';
      tr.setAttribute('data-gross-weight-g', String(r.today.gross_weight_g));
      tr.appendChild(cell('last_1h', 'declarations', r.last_1h.declarations, num(r.last_1h.declarations), 'last1h'));
      tr.appendChild(cell('last_1h', 'customs_value_usd_cents', r.last_1h.customs_value_usd_cents, usd(r.last_1h.customs_value_usd_cents), 'last1h'));
      tbody.appendChild(tr);
    });
  }

  function renderTop(d, gateRow) {
    var table = $('top'), tbody = table.tBodies[0];
    var title = $('headings-title');
    clear(title);
    if (!d.topGate) {
      table.hidden = true;
      $('headings').hidden = false;
      $('clear-gate').hidden = true;
      title.appendChild(document.createTextNode('HS headings '));
      title.appendChild(el('span', { 'class': 'hint' }, 'all gates · today and last hour'));
      return;
    }
    table.hidden = false;
    $('headings').hidden = true;
    $('clear-gate').hidden = false;
    title.appendChild(document.createTextNode('Top headings at ' + d.topGate + ' '));
    title.appendChild(el('span', { 'class': 'hint', lang: 'vi' },
      (gateRow && gateRow.name ? gateRow.name + ' · ' : '') + 'customs day ' + vnDay(d.top && d.top.day)));
    title.title = title.textContent;
    clear(tbody);
    if (!d.top || d.top.error) {
      tbody.appendChild(el('tr', { 'class': 'placeholder' })).appendChild(el('td', { colspan: 6 }, d.top ? d.top.error : 'no data'));
      return;
    }
    var list = d.top.headings || [];
    if (!list.length) {
      tbody.appendChild(el('tr', { 'class': 'placeholder' })).appendChild(el('td', { colspan: 6 }, 'no declarations at this gate today'));
      return;
    }
    list.forEach(function (h) {
      var tr = el('tr', { 'data-top-rank': String(h.rank), 'data-heading': h.heading });
      tr.appendChild(el('td', { 'class': 'num' }, String(h.rank)));
      tr.appendChild(nameCell(h.heading, h.name, 'vi'));
      tr.appendChild(cell('top', 'declarations', h.declarations, num(h.declarations)));
      tr.appendChild(cell('top', 'items', h.items, num(h.items)));
      tr.appendChild(cell('top', 'customs_value_usd_cents', h.customs_value_usd_cents, usd(h.customs_value_usd_cents)));
      tr.appendChild(cell('top', 'gross_weight_g', h.gross_weight_g, tonnes(h.gross_weight_g)));
      tbody.appendChild(tr);
    });
  }

  function renderFlows(gates) {
    var t = sum(gates, 'today'), h = sum(gates, 'last_1h');
    var total = 0;
    FLOWS.forEach(function (f) { total += t[f.field]; });
    var tbody = $('flows').tBodies[0];
    clear(tbody);
    FLOWS.forEach(function (f) {
      var tr = el('tr', { 'data-flow': f.id });
      var name = el('td');
      name.appendChild(el('span', { 'class': 'sw f-' + f.id }));
      name.appendChild(document.createTextNode(f.label));
      tr.appendChild(name);
      tr.appendChild(cell('today', f.field, t[f.field], usd(t[f.field])));
      var share = total ? t[f.field] / total : 0;
      var bar = el('td', { 'class': 'share', title: nf1.format(100 * share) + ' % of today\'s value' });
      var b = bar.appendChild(el('div', { 'class': 'bar f-' + f.id }));
      b.style.width = (100 * share).toFixed(1) + '%';
      tr.appendChild(bar);
      tr.appendChild(cell('last_1h', f.field, h[f.field], usd(h[f.field])));
      tbody.appendChild(tr);
    });
  }

  function renderSummary(s, gates) {
    setText('instance', s.instance || '–');
    setText('role', s.role || '–');
    var ready = $('ready');
    ready.textContent = s.ready ? 'ready' : 'not ready';
    ready.className = s.ready ? '' : 'no';
    ready.setAttribute('data-value', s.ready ? '1' : '0');
    setText('now', vnDateTime(s.now) + ' UTC+7', s.now);
    $('updated').setAttribute('data-value', String(s.updated_at));

    var t = sum(gates, 'today'), h = sum(gates, 'last_1h');
    setText('k-decl-today', num(t.declarations), t.declarations);
    setText('k-decl-1h', 'last hour ' + num(h.declarations));
    setText('k-value-today', usdCompact(t.customs_value_usd_cents), t.customs_value_usd_cents);
    $('k-value-today').title = usd(t.customs_value_usd_cents) + ' USD';
    setText('k-value-1h', 'last hour ' + usdCompact(h.customs_value_usd_cents));
    setText('k-weight-today', tonnes(t.gross_weight_g) + ' t', t.gross_weight_g);
    setText('k-items-today', num(t.items) + ' line items');
    setText('k-rate', rate(s.rate_per_s) + ' msg/s', s.rate_per_s);
    setText('k-consumed', num(s.consumed) + ' consumed · ' + num(s.applied) + ' applied');
    setText('k-dlq-rate', rate(s.dead_letter_rate_per_s) + ' /s', s.dead_letter_rate_per_s);
    var share = s.consumed ? 100 * s.dead_lettered / s.consumed : 0;
    setText('k-dlq', num(s.dead_lettered) + ' total · ' + nf2.format(share) + ' % of consumed');
    $('k-dlq-rate').className = 'big' + (share >= 5 ? ' bad' : share >= 1 ? ' warn' : '');
    setText('k-lag', num(s.lag), s.lag);
    var parts = s.partitions || [], max = null;
    parts.forEach(function (p) { if (!max || p.lag > max.lag) max = p; });
    setText('k-lag-max', parts.length + ' partitions' + (max ? ' · max ' + num(max.lag) + ' (p' + max.partition + ')' : ''));

    var ul = $('dlq-reasons');
    clear(ul);
    var reasons = Object.keys(s.dead_lettered_by_reason || {}).map(function (k) { return [k, s.dead_lettered_by_reason[k]]; })
      .filter(function (kv) { return kv[1] > 0; })
      .sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); });
    if (!reasons.length) ul.appendChild(el('li', { 'class': 'muted' }, 'none'));
    reasons.forEach(function (kv) {
      var li = el('li', { 'data-reason': kv[0] });
      li.appendChild(document.createTextNode(kv[0] + ' '));
      li.appendChild(el('b', { 'data-field': 'dead_lettered', 'data-value': String(kv[1]) }, num(kv[1])));
      ul.appendChild(li);
    });

    var box = $('partitions');
    clear(box);
    if (!parts.length) box.appendChild(el('span', { 'class': 'muted' }, 'no partitions assigned'));
    parts.slice().sort(function (a, b) { return a.partition - b.partition; }).forEach(function (p) {
      box.appendChild(el('span', { 'class': 'p' + (p.lag > 1000 ? ' lagging' : ''), 'data-partition': String(p.partition),
        'data-value': String(p.lag), title: 'partition ' + p.partition + ': lag ' + num(p.lag) + ', epoch ' + p.epoch +
        ', next offset ' + num(p.next_offset) }, 'p' + p.partition + ' ' + compact(p.lag)));
    });
  }

  /* ---------------------------------------------------------------- chart */
  /* uPlot draws in the browser's time zone; shift so the axis reads UTC+7. */
  function tzDate(ts) {
    var d = new Date(ts * 1000 + VN_OFFSET_MS);
    return new Date(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds());
  }

  function chartSize() {
    var box = $('chart');
    return { width: Math.max(200, box.clientWidth), height: Math.max(100, box.clientHeight - 30) };
  }

  function renderChart(d) {
    var box = $('chart');
    var title = 'Customs value per minute · ' + (d.seriesGate ? d.seriesGate : 'all gates') + ' · last ' +
      (st.range >= 120 ? st.range / 60 + ' hours' : 'hour') + ' to ' + vnClock(d.seriesTo).slice(0, 5) + ' UTC+7';
    $('chart-title').textContent = title;
    if (typeof window.uPlot !== 'function') {
      box.textContent = 'The chart library (vendor/uPlot.iife.min.js) did not load.';
      return;
    }
    var byT = {};
    ((d.series && d.series.points) || []).forEach(function (p) { byT[p.t] = p; });
    var xs = [], value = [], decl = [], total = 0;
    for (var t = d.seriesFrom; t <= d.seriesTo; t += MIN_MS) {
      var p = byT[t];
      xs.push(t / 1000);
      value.push(p ? p.customs_value_usd_cents / 100 : 0);
      decl.push(p ? p.declarations : 0);
      total += p ? p.declarations : 0;
    }
    box.setAttribute('data-points', String(((d.series && d.series.points) || []).length));
    box.setAttribute('data-from', String(d.seriesFrom));
    box.setAttribute('data-to', String(d.seriesTo));
    var data = [xs, value, decl];
    if (!st.chart) {
      clear(box);
      var size = chartSize();
      st.chart = new window.uPlot({
        width: size.width,
        height: size.height,
        tzDate: tzDate,
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, usd: { range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.08 : 1]; } },
                  n: { range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.08 : 1]; } } },
        series: [
          { value: function (u, v) { return v == null ? '–' : vnDateTime(v * 1000); } },
          { label: 'customs value (USD)', scale: 'usd', stroke: '#0b6bcb', width: 1.5, fill: 'rgba(11,107,203,0.12)',
            value: function (u, v) { return v == null ? '–' : nf0.format(v) + ' USD'; } },
          { label: 'declarations', scale: 'n', stroke: '#e67700', width: 1,
            value: function (u, v) { return v == null ? '–' : nf0.format(v); } }
        ],
        axes: [
          { stroke: '#68727d', grid: { stroke: '#eef1f4' },
            /* 24-hour clock in UTC+7 (splits are epoch seconds; tzDate aligned them to UTC+7 boundaries) */
            values: function (u, splits) {
              return splits.map(function (s, i) {
                var hm = vnClock(s * 1000).slice(0, 5);
                return i === 0 || hm === '00:00' ? vnDay(s * 1000).slice(5) + ' ' + hm : hm;
              });
            } },
          { scale: 'usd', stroke: '#0b6bcb', size: 52, grid: { stroke: '#eef1f4' },
            values: function (u, vals) { return vals.map(function (v) { return compact(v); }); } },
          { scale: 'n', side: 1, stroke: '#e67700', size: 40, grid: { show: false },
            values: function (u, vals) { return vals.map(function (v) { return compact(v); }); } }
        ]
      }, data, box);
      if (typeof ResizeObserver === 'function') {
        new ResizeObserver(function () { if (st.chart) st.chart.setSize(chartSize()); }).observe(box);
      }
    } else {
      st.chart.setData(data);
    }
    var empty = box.querySelector('.empty');
    if (!total && !empty) box.appendChild(el('div', { 'class': 'empty' }, 'no declarations in this range'));
    if (total && empty) box.removeChild(empty);
  }

  function render(d) {
    st.summary = d.summary;
    var gates = sortRows(join(d.gatesToday, d.gates1h), st.sort.gates);
    var heads = sortRows(join(d.headsToday, d.heads1h), st.sort.headings);
    var gateRow = null;
    gates.forEach(function (r) { if (r.key === d.topGate) gateRow = r; });
    renderSummary(d.summary, gates);
    renderGates(gates, st.gate);
    renderHeadings(heads);
    renderTop(d, gateRow);
    renderFlows(gates);
    renderChart(d);
    document.body.setAttribute('data-today-from', String(d.gatesToday && d.gatesToday.from));
    markSorted();
    tick();
  }

  /* ---------------------------------------------------------------- interaction */
  function markSorted() {
    ['gates', 'headings'].forEach(function (id) {
      var ths = $(id).querySelectorAll('th[data-sort]');
      for (var i = 0; i < ths.length; i++) {
        var on = ths[i].getAttribute('data-sort') === st.sort[id].key;
        ths[i].classList.toggle('sorted', on);
        ths[i].classList.toggle('asc', on && st.sort[id].asc);
      }
    });
  }

  function readHash() {
    var h = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) h[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    st.gate = h.gate && /^[A-Za-z0-9_.-]{1,32}$/.test(h.gate) ? h.gate : null;
    st.range = h.range === '180' ? 180 : 60;
    var btns = document.querySelectorAll('.range button');
    for (var i = 0; i < btns.length; i++) btns[i].classList.toggle('on', +btns[i].getAttribute('data-range') === st.range);
  }

  function writeHash() {
    var parts = [];
    if (st.gate) parts.push('gate=' + encodeURIComponent(st.gate));
    if (st.range !== 60) parts.push('range=' + st.range);
    var h = parts.length ? '#' + parts.join('&') : ' ';
    if (history.replaceState) history.replaceState(null, '', h === ' ' ? location.pathname + location.search : h);
  }

  function selectGate(code) {
    st.gate = code === st.gate ? null : code;
    writeHash();
    var trs = $('gates').querySelectorAll('tbody tr[data-gate]');
    for (var i = 0; i < trs.length; i++) trs[i].classList.toggle('selected', trs[i].getAttribute('data-gate') === st.gate);
    poll();
  }

  function init() {
    readHash();
    $('gates').addEventListener('click', function (ev) {
      var th = ev.target.closest('th[data-sort]');
      if (th) return resort('gates', th.getAttribute('data-sort'));
      var tr = ev.target.closest('tbody tr[data-gate]');
      if (tr) selectGate(tr.getAttribute('data-gate'));
    });
    $('headings').addEventListener('click', function (ev) {
      var th = ev.target.closest('th[data-sort]');
      if (th) resort('headings', th.getAttribute('data-sort'));
    });
    $('clear-gate').addEventListener('click', function () { if (st.gate) selectGate(st.gate); });
    var btns = document.querySelectorAll('.range button');
    for (var i = 0; i < btns.length; i++) {
      btns[i].addEventListener('click', function (ev) {
        st.range = +ev.currentTarget.getAttribute('data-range');
        for (var j = 0; j < btns.length; j++) btns[j].classList.toggle('on', btns[j] === ev.currentTarget);
        writeHash();
        poll();
      });
    }
    window.addEventListener('hashchange', function () { readHash(); poll(); });
    setInterval(tick, 1000);
    poll();
  }

  function resort(table, key) {
    var s = st.sort[table];
    if (s.key === key) s.asc = !s.asc;
    else { s.key = key; s.asc = key === 'key'; }
    if (st.last) render(st.last);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
