/* diffusion-atlas charts: draws every <div class="atlas-plot" data-plot='{json}'> (generator/render/plot.py)
 * with the vendored uPlot (site/assets/vendor/uplot/, MIT), loaded only on a page that has such a chart.
 *
 *   hover          a line under the chart names the values at the pointer (the row of an interval chart, the
 *                  jump under the pointer on a beta-sum chart); the table under it holds every number
 *   light / dark   colours follow Material's scheme (body[data-md-color-scheme]), an embed's ?theme=
 *                  (html[data-theme]) or the reader's preference; a change redraws the charts
 *   resize         the chart takes its box's width
 *   follow         inside a [data-follow-group] figure (data-column-map: step -> column) a "marks" chart rings
 *                  the current step's point and a "column" chart draws the current series bold, the others
 *                  faint; a click on a mark or a series with a step moves the figure there (Atlas.setStep)
 * The drawn element gets data-current (the column it shows) and data-drawn="1" once it is drawn.
 */
(function () {
  "use strict";
  var A = window.Atlas;
  var SCRIPT = document.currentScript;
  var PALETTE = [["#3f51b5", "#8c9eff"], ["#d9480f", "#ffa94d"], ["#2b8a3e", "#69db7c"], ["#c2185b", "#f783ac"],
    ["#6c757d", "#adb5bd"], ["#1c2e8c", "#bac8ff"], ["#8e0e3f", "#fcc2d7"]];
  var INK = {
    light: { text: "rgba(0, 0, 0, .78)", grid: "rgba(0, 0, 0, .1)", stripe: "rgba(63, 81, 181, .05)", bg: "#fff" },
    dark: { text: "rgba(226, 228, 233, .82)", grid: "rgba(226, 228, 233, .14)", stripe: "rgba(140, 158, 255, .07)",
      bg: "#1e2129" }
  };
  var charts = [];
  var loading = null;

  function vendor(file) {
    return new URL("../vendor/uplot/" + file, SCRIPT ? SCRIPT.src : location.href).href;
  }

  function library() {
    if (window.uPlot) return Promise.resolve();
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var css = document.createElement("link");
        css.rel = "stylesheet";
        css.href = vendor("uPlot.min.css");
        document.head.appendChild(css);
        var script = document.createElement("script");
        script.src = vendor("uPlot.iife.min.js");
        script.async = true;
        script.addEventListener("load", function () { resolve(); });
        script.addEventListener("error", function () { reject(new Error("charts: could not load " + script.src)); });
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function scheme() {
    var md = document.body && document.body.getAttribute("data-md-color-scheme");
    if (md) return md === "slate" ? "dark" : "light";
    var forced = document.documentElement.getAttribute("data-theme");
    if (forced === "dark" || forced === "light") return forced;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function superscript(n) {
    return String(n).replace(/./g, function (c) { return "⁻⁰¹²³⁴⁵⁶⁷⁸⁹".charAt("-0123456789".indexOf(c)); });
  }

  function fmt(v, digits) {
    if (v == null || !isFinite(v)) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) {
      var e = Math.floor(Math.log10(a) + 1e-12);
      return String(Number((v / Math.pow(10, e)).toPrecision(Math.min(digits || 4, 3)))) + "·10" + superscript(e);
    }
    return String(Number(v.toPrecision(digits || 4)));
  }

  function colour(index, ink) { return PALETTE[(index || 0) % PALETTE.length][ink === INK.dark ? 1 : 0]; }

  function faded(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + ", " + ((n >> 8) & 255) + ", " + (n & 255) + ", " + alpha + ")";
  }

  // The last value of a series at or before x (a staircase holds its value until its next point).
  function heldAt(s, x) {
    var value = null;
    for (var k = 0; k < s.x.length && s.x[k] <= x; k++) value = s.y[k];
    return s.x.length && x <= s.x[s.x.length - 1] ? value : null;
  }

  function range(axis) {
    return function (u, min, max) {
      if (min == null || max == null) return [axis.min != null ? axis.min : 0, axis.max != null ? axis.max : 1];
      var r = axis.log ? [min / 1.15, max * 1.15] : uPlot.rangeNum(min, max, 0.1, true); // a log axis: tight
      return [axis.min != null ? axis.min : r[0], axis.max != null ? axis.max : r[1]];
    };
  }

  // Ticks of a log axis: powers of ten, every k-th so that about six remain (and 2 and 5 times them on a short one).
  function logSplits(u, axisIdx, min, max) {
    var low = Math.floor(Math.log10(min) + 1e-9), high = Math.ceil(Math.log10(max) - 1e-9);
    var stride = Math.max(1, Math.ceil((high - low) / 6)), out = [];
    for (var e = low; e <= high; e += stride) {
      (high - low <= 2 ? [1, 2, 5] : [1]).forEach(function (m) {
        var v = m * Math.pow(10, e);
        if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
      });
    }
    return out;
  }

  function tickValues(axis) {
    return function (u, splits) { return splits.map(function (v) { return v == null ? "" : fmt(v, 3); }); };
  }

  function rowLabels(rows, room, font) {
    var ctx = document.createElement("canvas").getContext("2d");
    ctx.font = font;
    return rows.map(function (label) {
      if (ctx.measureText(label).width <= room) return label;
      while (label.length > 1 && ctx.measureText(label + "…").width > room) label = label.slice(0, -1);
      return label + "…";
    });
  }

  function seriesOptions(s, index, chart, ink) {
    var base = colour(s.color, ink);
    var nothing = function () { return null; };
    var o = { label: s.label, width: s.width, spanGaps: true, stroke: base, points: { show: false } };
    if (s.kind === "steps") o.paths = uPlot.paths.stepped({ align: 1 });
    if (s.kind === "line") o.points = { size: 6, fill: base, stroke: ink.bg, width: 1 };
    if (s.kind === "points") {
      o.paths = nothing;
      o.points = { show: true, size: 8, fill: base, stroke: ink.bg, width: 1 };
    }
    if (s.kind === "ring") {
      o.paths = nothing;
      o.points = { show: true, size: 18, fill: "rgba(0, 0, 0, 0)", stroke: base, width: 2.5 };
    }
    if (s.kind === "dash") o.dash = [6, 4];
    if (s.kind === "hidden") { o.paths = nothing; o.stroke = "rgba(0, 0, 0, 0)"; }
    if (s.own_scale) o.scale = "own" + index;
    if (s.column != null) {
      o.stroke = function () {
        var on = chart.current == null || chart.current === s.column || chart.hover === index;
        return on ? base : faded(base, 0.3);
      };
    }
    return o;
  }

  function position(u, chart, x, y) {
    var a = u.valToPos(x, "x", true), b = u.valToPos(y, "y", true);
    return chart.spec.rows ? [b, a] : [a, b];
  }

  function drawUnder(u, chart) {
    var spec = chart.spec, ctx = u.ctx, px = uPlot.pxRatio, ink = chart.ink;
    ctx.save();
    if (spec.rows) { // stripes behind every other row
      ctx.fillStyle = ink.stripe;
      for (var r = 1; r < spec.rows.length; r += 2) {
        var top = u.valToPos(r - 0.5, "x", true), bottom = u.valToPos(r + 0.5, "x", true);
        ctx.fillRect(u.bbox.left, Math.min(top, bottom), u.bbox.width, Math.abs(bottom - top));
      }
    }
    if (spec.intervals) { // a bar from each low to its high
      var low = spec.series[spec.intervals[0]], high = spec.series[spec.intervals[1]];
      ctx.strokeStyle = faded(colour(spec.series[0].color, ink), 0.4);
      ctx.lineWidth = 6 * px;
      ctx.lineCap = "round";
      for (var k = 0; k < low.x.length; k++) {
        var p = position(u, chart, low.x[k], low.y[k]), q = position(u, chart, high.x[k], high.y[k]);
        ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
      }
    }
    ctx.restore();
  }

  function drawOver(u, chart) {
    var spec = chart.spec, ctx = u.ctx, px = uPlot.pxRatio;
    ctx.save();
    spec.series.forEach(function (s, i) {
      var si = i + 1;
      if (s.column != null && (s.column === chart.current || si === chart.hover) && u.series[si]._paths) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
        ctx.clip();
        ctx.strokeStyle = colour(s.color, chart.ink); // the current and the hovered series on top, bold
        ctx.lineWidth = (si === chart.hover ? 3.5 : 3) * px;
        ctx.stroke(u.series[si]._paths.stroke);
        ctx.restore();
      }
      if (s.marks && chart.current != null) {
        var k = s.marks.indexOf(chart.current);
        if (k < 0) return;
        var p = position(u, chart, s.x[k], s.y[k]);
        ctx.strokeStyle = colour(s.color, chart.ink);
        ctx.lineWidth = 3 * px;
        ctx.beginPath(); ctx.arc(p[0], p[1], 8 * px, 0, 2 * Math.PI); ctx.stroke();
      }
    });
    ctx.restore();
  }

  // The series under the pointer: the nearest staircase / mark within 12 px (CSS), or null.
  function nearest(u, chart) {
    var spec = chart.spec, left = u.cursor.left, top = u.cursor.top, best = null, bestDistance = 12;
    if (left == null || left < 0) return null;
    var x = u.posToVal(left, "x");
    spec.series.forEach(function (s, i) {
      if (s.column != null && u.series[i + 1].show) {
        var y = heldAt(s, x);
        var d = y == null ? Infinity : Math.abs(u.valToPos(y, "y") - top);
        if (d < bestDistance) { best = { series: i + 1, step: s.step }; bestDistance = d; }
      }
      if (s.marks) {
        s.x.forEach(function (mx, k) {
          var d = Math.hypot(u.valToPos(mx, "x") - left, u.valToPos(s.y[k], "y") - top);
          if (d < bestDistance) { best = { series: i + 1, step: s.marks[k] }; bestDistance = d; }
        });
      }
    });
    return best;
  }

  function readout(u, chart) {
    var spec = chart.spec, idx = u.cursor.idx;
    if (idx == null) return chart.hint;
    var x = u.data[0][idx], parts = [];
    if (spec.rows) {
      if (x !== Math.round(x) || !spec.rows[x]) return chart.hint;
      parts.push(spec.rows[x]);
    } else {
      parts.push((spec.x.short || spec.x.label) + " " + fmt(x, spec.x.digits));
    }
    spec.series.forEach(function (s, i) {
      var si = i + 1;
      if (s.column != null) {
        if (si === chart.hover) parts.push(s.text || s.label);
        return;
      }
      var v = s.kind === "dash" ? s.y[0] : u.data[si][idx];
      if (v == null) return;
      var k = s.marks ? s.x.indexOf(x) : -1;
      parts.push((k >= 0 ? s.label + " " + s.marks[k] + ": " : s.label + " ") + fmt(v, spec.y.digits));
    });
    return parts.join(" · ");
  }

  // The key under the chart: a swatch and the name of every drawn series (the staircases of a "column" chart
  // as one entry).
  function key(chart) {
    var list = document.createElement("div"), ink = chart.ink, stairs = false;
    list.className = "atlas-plot-key";
    list.setAttribute("aria-hidden", "true"); // the caption and the table say the same
    chart.spec.series.forEach(function (s) {
      if (s.kind === "hidden" || (s.column != null && stairs)) return;
      var item = document.createElement("span"), swatch = document.createElement("span");
      swatch.className = "atlas-plot-swatch atlas-plot-swatch-" + (s.column != null ? "steps" : s.kind);
      swatch.style.color = colour(s.color, ink);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.column != null ? "one staircase per jump (the current one bold)"
        : s.label));
      stairs = stairs || s.column != null;
      list.appendChild(item);
    });
    if (chart.key) chart.key.remove();
    chart.key = list;
    chart.readout.insertAdjacentElement("beforebegin", list);
  }

  function build(chart) {
    var spec = chart.spec, box = chart.box, ink = chart.ink = INK[scheme()];
    if (chart.plot) chart.plot.destroy();
    var font = "12px " + (getComputedStyle(box).fontFamily || "sans-serif");
    var width = Math.max(box.clientWidth, 160);
    var rows = spec.rows ? rowLabels(spec.rows, Math.min(260, width * 0.42), font) : null;
    var axis = { stroke: ink.text, font: font, labelFont: font, grid: { stroke: ink.grid, width: 1 },
      ticks: { stroke: ink.grid, width: 1, size: 4 } };
    var xAxis = Object.assign({}, axis, { label: spec.x.label || null, values: tickValues(spec.x), size: 26,
      labelSize: 18 });
    if (spec.x.log) xAxis.splits = logSplits;
    var yAxis = Object.assign({}, axis, { label: spec.y.label, values: tickValues(spec.y), size: 52, labelSize: 20 });
    if (spec.y.log) yAxis.splits = logSplits;
    var scales = { x: { time: false, distr: spec.x.log ? 3 : 1, range: range(spec.x) },
      y: { distr: spec.y.log ? 3 : 1, range: range(spec.y) } };
    if (rows) {
      scales.x = { time: false, ori: 1, dir: 1, range: function () { return [-0.5, spec.rows.length - 0.5]; } };
      scales.y.ori = 0;
      Object.assign(xAxis, { side: 3, label: null, size: Math.min(260, width * 0.42) + 12, grid: { show: false },
        splits: function () { return spec.rows.map(function (_, i) { return i; }); },
        values: function (u, splits) { return splits.map(function (i) { return rows[i] || ""; }); } });
      Object.assign(yAxis, { side: 2, size: 26, labelSize: 18 });
    }
    spec.series.forEach(function (s, i) { // a count or the like: its own scale, no axis
      if (s.own_scale) scales["own" + (i + 1)] = { ori: rows ? 0 : 1, auto: true };
    });
    var tables = spec.series.map(function (s) { return [s.x, s.y]; });
    var options = {
      width: width, height: spec.height, legend: { show: false },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 7 } },
      scales: scales, axes: [xAxis, yAxis],
      series: [{ label: spec.x.label }].concat(spec.series.map(function (s, i) {
        return seriesOptions(s, i + 1, chart, ink);
      })),
      hooks: {
        drawAxes: [function (u) { drawUnder(u, chart); }],
        draw: [function (u) { drawOver(u, chart); }],
        setCursor: [function (u) {
          var hit = nearest(u, chart), hover = hit ? hit.series : null;
          chart.target = hit;
          u.over.style.cursor = hit && hit.step != null && chart.group ? "pointer" : "";
          if (hover !== chart.hover && spec.follow === "column") { chart.hover = hover; u.redraw(false); }
          chart.hover = hover;
          chart.readout.textContent = readout(u, chart);
        }]
      }
    };
    chart.plot = new uPlot(options, uPlot.join(tables), box);
    chart.plot.over.addEventListener("click", function () {
      if (chart.target && chart.target.step != null && chart.group) A.setStep(chart.group, chart.target.step, "chart");
    });
    if (!spec.rows || spec.series.some(function (s) { return s.kind === "dash"; })) key(chart);
    chart.el.dataset.drawn = "1";
  }

  function mount(el) {
    if (el.dataset.plotMounted) return;
    el.dataset.plotMounted = "1";
    var chart = { el: el, spec: JSON.parse(el.dataset.plot), box: el.querySelector(".atlas-plot-box"),
      current: null, hover: null, hint: "Point at the chart for its values." };
    chart.readout = document.createElement("p");
    chart.readout.className = "atlas-plot-readout";
    chart.readout.setAttribute("aria-hidden", "true"); // the table under it holds the same numbers
    chart.readout.textContent = chart.hint;
    chart.box.insertAdjacentElement("afterend", chart.readout);
    charts.push(chart);
    build(chart);
    var figure = chart.spec.follow ? el.closest("[data-follow-group]") : null;
    if (figure && A) {
      chart.group = figure.dataset.followGroup;
      var map = (figure.dataset.columnMap || "").split(",").filter(function (s) { return s !== ""; }).map(Number);
      A.onStep(chart.group, function (step) {
        chart.current = map.length ? map[A.clamp(step, 0, map.length - 1)] : step;
        el.dataset.current = String(chart.current);
        if (chart.plot) chart.plot.redraw(false);
      });
    }
    if (window.ResizeObserver) {
      var width = chart.box.clientWidth;
      new ResizeObserver(function () {
        if (chart.box.clientWidth === width || !chart.plot) return;
        width = chart.box.clientWidth;
        chart.plot.setSize({ width: Math.max(width, 160), height: chart.spec.height });
      }).observe(chart.box);
    }
  }

  var shown = null;
  function restyle() {
    if (scheme() === shown) return;
    shown = scheme();
    charts = charts.filter(function (c) { return document.contains(c.el); });
    charts.forEach(build);
  }

  A.ready(function (root) {
    var plots = root.querySelectorAll(".atlas-plot[data-plot]");
    if (!plots.length) return;
    library().then(function () {
      shown = scheme();
      plots.forEach(mount);
    }).catch(function (err) { console.error(err); }); // eslint-disable-line no-console
  });

  var observer = new MutationObserver(function () { if (window.uPlot) restyle(); });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  document.addEventListener("DOMContentLoaded", function () {
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
  });
  if (document.body) observer.observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      if (window.uPlot) restyle();
    });
  }
})();
