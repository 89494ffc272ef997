// growth-stack tracker: page views (SPA too), events, conversions, Core Web Vitals.
//   <script defer src="https://HOST/gs.js" data-key="KEY" data-sample="1"></script>
// data-batch-size, data-flush-interval, data-web-vitals, data-custom-metrics override
// the server's [performance] settings, written in below as served. No cookies. Never throws into the page. Algorithms follow web-vitals (see README).
// Every item carries its timestamp and every beacon its sent_at (both by this clock):
// the server files events when they happened, correcting a device clock that is off.
(function (w, d, C) {
  var P = w.performance, N = w.navigator, PO = w.PerformanceObserver, L = w.location;
  var me = d.currentScript, api, key, rate, sid, queues = {}, timer, last, onHide = [], seen = [], batch, every, core, extra;
  function safe(f) {
    return function () {
      try { return f.apply(this, arguments); } catch (e) {}
    };
  }
  function uid() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
  }
  function post(path, items) {
    var url = api + path + key + Date.now(), body = JSON.stringify(items.length > 1 ? items : items[0]);
    // A string beacon is text/plain: no CORS preflight, and it survives the page closing.
    try { if (N.sendBeacon(url, body)) return; } catch (e) {}
    try { fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit" }).catch(function () {}); } catch (e) {}
  }
  function flush() {
    clearTimeout(timer);
    timer = 0;
    for (var p in queues) while (queues[p].length) post(p, queues[p].splice(0, batch));
  }
  function queue(path, item) {
    item.sessionId = sid;
    item.timestamp = Date.now();
    (queues[path] = queues[path] || []).push(item);
    if (queues[path].length >= batch) flush();
    else if (!timer) timer = setTimeout(safe(flush), every);
  }
  function obj(x) {
    return x && typeof x == "object" ? x : null;
  }
  function pageview() {
    var path = L.pathname, props = { url: L.href.split("#")[0] }, q = new URLSearchParams(L.search);
    if (path == last) return;
    var ref = last ? L.origin + last : d.referrer || null;
    last = path;
    ["source", "medium", "campaign"].forEach(function (k) {
      var v = q.get("utm_" + k);
      if (v) props["utm_" + k] = v;
    });
    queue("events", { event: "pageview", route: path, referrer: ref, properties: props });
  }

  function vitals() {
    var nav = (P.getEntriesByType && P.getEntriesByType("navigation")[0]) || {};
    var act = nav.activationStart || 0, types = PO.supportedEntryTypes || [];
    var hiddenAt = d.visibilityState == "hidden" ? 0 : 1 / 0;
    var m, id, n, sent, navType, page, lcpDone, lcpObs, cls, win, first, prev, ints, count, base;
    function reset(type) {
      m = {}; id = uid(); n = 0; sent = ""; navType = type; page = L.pathname;
      cls = win = first = prev = 0; ints = {}; count = 0; base = P.interactionCount || 0;
    }
    function observe(type, cb, opts) {
      try {
        var o = new PO(safe(function (list) { list.getEntries().forEach(cb); }));
        o.observe(Object.assign({ type: type, buffered: true }, opts));
        return o;
      } catch (e) {}
    }
    reset(d.prerendering || act > 0 ? "prerender" : (nav.type || "navigate").replace(/_/g, "-"));
    if (nav.responseStart > 0 && nav.responseStart < P.now()) m.ttfb = Math.max(nav.responseStart - act, 0);
    observe("paint", function (e) {
      if (e.name == "first-contentful-paint" && e.startTime < hiddenAt) m.fcp = Math.max(e.startTime - act, 0);
    });
    // LCP: the latest candidate before the first input or hide is final.
    function lcp(e) {
      if (!lcpDone && e.startTime < hiddenAt) m.lcp = Math.max(e.startTime - act, 0);
    }
    lcpObs = observe("largest-contentful-paint", lcp);
    function endLcp() {
      if (lcpObs && !lcpDone) lcpObs.takeRecords().forEach(lcp);
      lcpDone = 1;
    }
    ["keydown", "click"].forEach(function (t) {
      w.addEventListener(t, function (e) { if (e.isTrusted) setTimeout(safe(endLcp)); }, true);
    });
    // CLS: session windows (gaps under 1 s, at most 5 s long); the largest one counts.
    observe("layout-shift", function (e) {
      if (e.hadRecentInput) return;
      if (win && e.startTime - prev < 1000 && e.startTime - first < 5000) win += e.value;
      else { win = e.value; first = e.startTime; }
      prev = e.startTime;
      cls = Math.max(cls, win);
    });
    // INP: the longest duration per interaction; the p98 estimate is the
    // (interactions / 50)-th longest, counting only the 10 longest.
    function interaction(e) {
      var k = e.interactionId;
      if (!k) return;
      if (!(k in ints)) count++;
      ints[k] = Math.max(ints[k] || 0, e.duration);
    }
    observe("event", interaction, { durationThreshold: 40 });
    observe("first-input", function (e) {
      if (m.fid == null) m.fid = Math.max(e.processingStart - e.startTime, 0);
      interaction(e);
    });
    function report() {
      endLcp();
      var v = {}, k, all = [];
      // Core Web Vitals, and the guide's "custom metrics" FCP and TTFB, each when enabled.
      for (k in m) if (k == "fcp" || k == "ttfb" ? extra : core) v[k] = m[k];
      if (core && types.indexOf("layout-shift") >= 0 && (m.fcp != null || navType == "back-forward-cache")) v.cls = cls;
      for (k in ints) all.push(ints[k]);
      all.sort(function (a, b) { return b - a; });
      if (core && all.length) v.inp = all[Math.min(all.length - 1, 9, Math.floor(((P.interactionCount || 0) - base || count) / 50))];
      k = JSON.stringify(v);
      if (k == "{}" || k == sent) return;
      sent = k;
      v.metricId = id;
      v.report = ++n;
      v.path = page;
      v.navigationType = navType;
      if (N.connection) v.connection = N.connection.effectiveType;
      queue("performance", v);
    }
    onHide.push(function () {
      hiddenAt = Math.min(hiddenAt, P.now());
      report();
    });
    // Back/forward cache: a new page view for the metrics, timed from the restore.
    w.addEventListener("pageshow", safe(function (e) {
      if (!e.persisted) return;
      reset("back-forward-cache");
      hiddenAt = 1 / 0;
      lcpDone = 1;
      m.ttfb = 0;
      requestAnimationFrame(function () {
        requestAnimationFrame(function () { m.fcp = m.lcp = P.now() - e.timeStamp; });
      });
    }), true);
  }

  try {
    if (!me || w.growth) return;
    api = new URL(me.src).origin + "/api/analytics/";
    key = me.getAttribute("data-key");
    key = "?" + (key ? "key=" + encodeURIComponent(key) + "&" : "") + "sent_at=";
    rate = parseFloat(me.getAttribute("data-sample"));
    function opt(k) {
      var a = me.getAttribute("data-" + k);
      return a == null || a == "" ? C[k] : a;
    }
    batch = +opt("batch-size") || C["batch-size"];
    every = +opt("flush-interval") || C["flush-interval"];
    core = opt("web-vitals") + "" != "false";
    extra = opt("custom-metrics") + "" != "false";
    try { sid = sessionStorage.gs_sid || (sessionStorage.gs_sid = uid()); } catch (e) { sid = uid(); }
    // JavaScript errors and unhandled rejections: each message once, at most 10 per
    // page; the session id (set in queue) lets the session error rate count them.
    ["error", "unhandledrejection"].forEach(function (t) {
      w.addEventListener(t, safe(function (e, m) {
        m = e.message || e.reason + "";
        if (seen.indexOf(m) < 0 && seen.push(m) < 11) queue("errors", { message: m, source: e.filename, line: e.lineno, route: L.pathname });
      }));
    });
    w.growth = {
      track: safe(function (name, props) {
        if (name) queue("events", { event: String(name), route: L.pathname, properties: obj(props) });
      }),
      conversion: safe(function (funnel, step, props) {
        if (funnel && step) queue("conversions", { funnel: String(funnel), step: String(step), properties: obj(props) });
      }),
    };
    pageview();
    ["pushState", "replaceState"].forEach(function (k) {
      var orig = history[k];
      history[k] = function () {
        var r = orig.apply(this, arguments);
        safe(pageview)();
        return r;
      };
    });
    w.addEventListener("popstate", safe(pageview));
    if (PO && P && (core || extra) && Math.random() < (rate >= 0 ? rate : 1)) vitals();
    var hide = safe(function (e) {
      if (e.type == "pagehide" || d.visibilityState == "hidden") {
        onHide.forEach(function (f) { safe(f)(); });
        flush();
      }
    });
    d.addEventListener("visibilitychange", hide, true);
    w.addEventListener("pagehide", hide, true);
  } catch (e) {}
})(window, document, /*settings*/{});
