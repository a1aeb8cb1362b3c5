/* diffusion-atlas DAAM widget: where each word of the prompt acts, over the final image.
 *
 * Markup: <figure data-atlas="daam" data-group="traj-<id>" data-bins="B" data-tau="0.4"
 * data-levels="all,fine,coarse" data-bin-timesteps='[[...],...]' data-timesteps='[999, ...]'
 * data-entries='["a", ...]'> (generator/render/templates/sections/daam.html.j2) with the final <img>, an overlay
 * <canvas>, two grayscale sprite sheets ([data-role=aggregate]: frame entry*3 + level; [data-role=over-time]:
 * frame entry*B + bin), token buttons (data-entry), an opacity slider, a mask toggle with a tau slider, a time
 * slider (value B: all steps) with play, the end token's button ([data-action=special], data-entry: its map),
 * level buttons (all, fine, coarse, then the UNet parts down/mid/up the bake found: frame entry*levels + level).
 * Maps are 8-bit, each scaled to 255 at its maximum, so the DAAM mask (Eq. 7) is gray >= tau * 255. The
 * colormap is inferno, the polynomial fit used by generator/daam/overlay.py.
 * Time follows the trajectory: while the time slider shows a bin (not "all steps"), a step published on the
 * Atlas step bus (data-group: the trajectory's scrubbing, jump rows, ...) shows the bin holding that step's
 * timestep, and moving the slider or playing publishes the bin's first step, so the trajectory comes along.
 * "All steps" (and the levels other than "all", which exist only over all steps) leaves the bus alone.
 * Layers and heads (issue 19): a layer <select> ([data-role=layer], data-layers: labels, data-layer-heads: heads per
 * layer) shows one cross-attention layer over all steps ([data-role=by-layer] sheet: frame entry*layers + layer), a
 * head <select> one of its heads ([data-role=by-head][data-entry=e] sheet, one per entry: frame = the heads of the
 * layers before + head). Those sheets load only when first shown. data-shares gives each layer's and head's share
 * of the entry's attention for the label. The special-token buttons ([data-action=special], data-kind start, end,
 * padding) beside the time control pin their entry's map like a word's.
 * State for tests and assistive tech: data-entry, data-level, data-layer, data-head, data-bin, data-mode,
 * data-mask-fraction.
 */
(function () {
  "use strict";
  var A = window.Atlas;
  var FRAME_MS = 450;
  var INFERNO = [
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172]
  ];
  var LUT = (function () {
    var lut = new Uint8ClampedArray(256 * 3);
    for (var v = 0; v < 256; v++) {
      var t = v / 255;
      for (var c = 0; c < 3; c++) {
        var acc = 0;
        for (var k = INFERNO.length - 1; k >= 0; k--) acc = acc * t + INFERNO[k][c];
        lut[v * 3 + c] = Math.round(A.clamp(acc, 0, 1) * 255);
      }
    }
    return lut;
  })();

  /* The stylesheet travels with the script: embed pages load only atlas.css, MkDocs pages list daam.css. */
  var SCRIPT_SRC = document.currentScript && document.currentScript.src;
  function ensureStyles() {
    if (!SCRIPT_SRC || document.querySelector("link[href*='daam.css']")) return;
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = SCRIPT_SRC.replace(/js\/daam\.js(\?.*)?$/, "css/daam.css");
    document.head.appendChild(link);
  }

  function json(text, fallback) {
    try { return JSON.parse(text); } catch (err) { return fallback; }
  }

  /* Trajectory step -> time bin: step i (timestep timesteps[i]) lies in the bin whose recorded timesteps hold
   * that timestep (the nearest one, so the manifest's rounding cannot break the match); the last entry, for
   * the final image (step = timesteps.length), repeats the last step's bin. -1: no bin recorded anything. */
  function stepBins(timesteps, binTimesteps) {
    var out = timesteps.map(function (t) {
      var best = -1, nearest = Infinity;
      binTimesteps.forEach(function (recorded, b) {
        recorded.forEach(function (u) {
          var d = Math.abs(u - t);
          if (d < nearest) { nearest = d; best = b; }
        });
      });
      return best;
    });
    if (out.length) out.push(out[out.length - 1]);
    return out;
  }

  /* A sheet's image starts loading at once (nearby: a layer or head just chosen) or, for the two sheets every
   * page has, when the widget comes within a screen of the viewport (Atlas.whenNear, as sprite sheets do). */
  function loadSheet(el, whenNear) {
    var spec = {
      src: el.dataset.src,
      frameWidth: parseInt(el.dataset.frameWidth, 10),
      frameHeight: parseInt(el.dataset.frameHeight, 10),
      columns: parseInt(el.dataset.columns, 10),
      count: parseInt(el.dataset.count, 10),
      image: new Image(),
      ready: false,
      failed: false
    };
    spec.promise = new Promise(function (resolve) {
      spec.image.onload = function () { spec.ready = true; resolve(spec); };
      spec.image.onerror = function () { spec.failed = true; resolve(spec); };
    });
    var start = function () { spec.image.src = spec.src; };
    if (whenNear && A.whenNear) A.whenNear(el, start); else start();
    return spec;
  }

  function mount(fig) {
    ensureStyles();
    var bins = parseInt(fig.dataset.bins, 10) || 1;
    var levels = (fig.dataset.levels || "all").split(",");
    var binTimesteps = json(fig.dataset.binTimesteps, []);
    var entries = json(fig.dataset.entries, []);
    var group = fig.dataset.group;
    var stepBin = stepBins(json(fig.dataset.timesteps, []), binTimesteps);
    var tokens = Array.prototype.slice.call(fig.querySelectorAll(".atlas-daam-token"));
    var canvas = fig.querySelector("[data-role=overlay]");
    var ctx = canvas.getContext("2d", { willReadFrequently: true }); // small; read back by tests and tools
    var scratch = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    var aggregate = loadSheet(fig.querySelector("[data-role=aggregate]"), true);
    var overTime = loadSheet(fig.querySelector("[data-role=over-time]"), true);
    var opacity = fig.querySelector("[data-role=opacity]");
    var tauInput = fig.querySelector("[data-role=tau]");
    var tauOut = fig.querySelector("[data-role=tau-value]");
    var binInput = fig.querySelector("[data-role=bin]");
    var maskBtn = fig.querySelector("[data-action=mask]");
    var playBtn = fig.querySelector("[data-action=play]");
    var levelBtns = Array.prototype.slice.call(fig.querySelectorAll("[data-level]"));
    var specialBtns = Array.prototype.slice.call(fig.querySelectorAll("[data-action=special]"));
    var status = fig.querySelector("[data-role=status]");
    var layers = json(fig.dataset.layers, []);
    var layerHeads = json(fig.dataset.layerHeads, []);
    var layerRes = json(fig.dataset.layerResolutions, []);
    var shares = json(fig.dataset.shares, {});
    var layerInput = fig.querySelector("[data-role=layer]");
    var headInput = fig.querySelector("[data-role=head]");
    var lazySheets = {}; // by-layer and by-head sheets, loaded the first time they are shown
    var state = { pinned: null, shown: null, level: 0, layer: -1, head: -1, bin: bins, mask: false, tau: tauInput.value / 100 };
    var timer = 0;

    canvas.width = aggregate.frameWidth;
    canvas.height = aggregate.frameHeight;

    function lazySheet(selector) {
      if (!(selector in lazySheets)) {
        var el = fig.querySelector(selector);
        lazySheets[selector] = el ? loadSheet(el) : null;
      }
      return lazySheets[selector];
    }

    function headOffset(layer) {
      var offset = 0;
      for (var l = 0; l < layer; l++) offset += layerHeads[l] || 0;
      return offset;
    }

    function frameOf() {
      if (state.bin < bins) return { sheet: overTime, index: state.shown * bins + state.bin };
      if (state.layer >= 0 && state.head >= 0) {
        return { sheet: lazySheet("[data-role=by-head][data-entry='" + state.shown + "']"), index: headOffset(state.layer) + state.head };
      }
      if (state.layer >= 0) return { sheet: lazySheet("[data-role=by-layer]"), index: state.shown * layers.length + state.layer };
      return { sheet: aggregate, index: state.shown * levels.length + state.level };
    }

    function share(kind, index) {
      var rows = shares[kind] && shares[kind][state.shown];
      return rows && rows[index] !== undefined ? " · " + (rows[index] * 100).toFixed(rows[index] < 0.1 ? 1 : 0) + "% of its attention" : "";
    }

    function layerText() {
      if (state.layer < 0) return levels[state.bin < bins ? 0 : state.level] + " layers";
      var res = layerRes[state.layer] || [];
      var text = "layer " + layers[state.layer] + (res.length ? " (" + res[0] + "×" + res[1] + ")" : "");
      if (state.head >= 0) return text + " · head " + (state.head + 1) + " of " + layerHeads[state.layer] + share("by_head", headOffset(state.layer) + state.head);
      return text + (layerHeads[state.layer] ? " · all " + layerHeads[state.layer] + " heads" : "") + share("by_layer", state.layer);
    }

    function binLabel(b) {
      if (b >= bins) return "all steps";
      var ts = binTimesteps[b] || [];
      if (!ts.length) return "time bin " + (b + 1) + " / " + bins + " (no step)";
      var hi = Math.round(ts[0]), lo = Math.round(ts[ts.length - 1]);
      return "time bin " + (b + 1) + " / " + bins + " (t = " + (hi === lo ? hi : hi + "…" + lo) + ")";
    }

    function describe(fraction) {
      if (state.shown === null) return "Hover, focus or tap a word.";
      var parts = ["“" + entries[state.shown] + "”", binLabel(state.bin), layerText()];
      if (state.mask) parts.push("mask τ " + state.tau.toFixed(2) + " covers " + Math.round(fraction * 100) + "% of the image");
      return parts.join(" · ");
    }

    function draw() {
      fig.dataset.level = state.layer >= 0 ? "" : levels[state.level];
      fig.dataset.layer = state.layer >= 0 ? String(state.layer) : "";
      fig.dataset.head = state.head >= 0 ? String(state.head) : "";
      fig.dataset.bin = state.bin >= bins ? "all" : String(state.bin);
      fig.dataset.mode = state.mask ? "mask" : "heat";
      canvas.style.opacity = String(opacity.value / 100);
      if (state.shown === null) {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        fig.dataset.entry = "";
        fig.classList.remove("atlas-daam-active");
        status.textContent = describe(0);
        return;
      }
      fig.dataset.entry = String(state.shown);
      fig.classList.add("atlas-daam-active");
      var f = frameOf(), sheet = f.sheet;
      if (!sheet || sheet.failed) { ctx.clearRect(0, 0, canvas.width, canvas.height); status.textContent = "This map could not be loaded."; return; }
      if (!sheet.ready) { sheet.promise.then(draw); return; }
      var w = sheet.frameWidth, h = sheet.frameHeight;
      var sx = (f.index % sheet.columns) * w, sy = Math.floor(f.index / sheet.columns) * h;
      scratch.canvas.width = w;
      scratch.canvas.height = h;
      scratch.clearRect(0, 0, w, h);
      scratch.drawImage(sheet.image, sx, sy, w, h, 0, 0, w, h);
      var gray;
      try {
        gray = scratch.getImageData(0, 0, w, h).data;
      } catch (err) { // file:// pages taint the canvas: show the plain grayscale map instead
        ctx.clearRect(0, 0, w, h);
        ctx.drawImage(scratch.canvas, 0, 0);
        fig.dataset.fallback = "1";
        status.textContent = describe(0);
        return;
      }
      var out = ctx.createImageData(w, h), px = out.data, threshold = state.tau * 255, inside = 0;
      for (var i = 0, n = w * h; i < n; i++) {
        var v = gray[i * 4];
        if (state.mask) {
          var on = v >= threshold;
          inside += on ? 1 : 0;
          px[i * 4 + 3] = on ? 0 : 215; // outside the mask: darkened
        } else {
          px[i * 4] = LUT[v * 3];
          px[i * 4 + 1] = LUT[v * 3 + 1];
          px[i * 4 + 2] = LUT[v * 3 + 2];
          px[i * 4 + 3] = Math.min(255, 40 + v);
        }
      }
      ctx.putImageData(out, 0, 0);
      var fraction = inside / (w * h);
      fig.dataset.maskFraction = state.mask ? fraction.toFixed(4) : "";
      status.textContent = describe(fraction);
    }

    function show(entry) {
      state.shown = entry;
      tokens.forEach(function (t) {
        t.classList.toggle("atlas-daam-lit", entry !== null && t.dataset.entry === String(entry));
      });
      draw();
    }

    function entryOf(btn) {
      return btn && btn.dataset.entry !== "" ? parseInt(btn.dataset.entry, 10) : null;
    }

    function pin(entry) {
      state.pinned = state.pinned === entry ? null : entry;
      tokens.forEach(function (t) {
        t.setAttribute("aria-pressed", state.pinned !== null && t.dataset.entry === String(state.pinned) ? "true" : "false");
      });
      specialBtns.forEach(function (b) {
        b.setAttribute("aria-pressed", state.pinned !== null && b.dataset.entry === String(state.pinned) ? "true" : "false");
      });
      show(state.pinned);
    }

    tokens.forEach(function (btn, i) {
      btn.tabIndex = i === 0 ? 0 : -1; // roving focus: Tab enters the prompt once, arrows move within
      btn.addEventListener("pointerenter", function (e) { if (e.pointerType === "mouse") show(entryOf(btn)); });
      btn.addEventListener("pointerleave", function (e) { if (e.pointerType === "mouse") show(state.pinned); });
      btn.addEventListener("focus", function () { show(entryOf(btn)); });
      btn.addEventListener("blur", function () { show(state.pinned); });
      btn.addEventListener("click", function () { pin(entryOf(btn)); btn.focus(); });
      btn.addEventListener("keydown", function (e) {
        var to = { ArrowLeft: i - 1, ArrowUp: i - 1, ArrowRight: i + 1, ArrowDown: i + 1, Home: 0, End: tokens.length - 1 }[e.key];
        if (to === undefined || e.altKey || e.ctrlKey || e.metaKey) return;
        e.preventDefault();
        var step = to < i ? -1 : 1;
        to = A.clamp(to, 0, tokens.length - 1);
        while (tokens[to] && tokens[to].disabled && to + step >= 0 && to + step < tokens.length) to += step;
        if (!tokens[to] || tokens[to].disabled) return;
        tokens[i].tabIndex = -1;
        tokens[to].tabIndex = 0;
        tokens[to].focus();
      });
    });
    var firstEnabled = tokens.filter(function (t) { return !t.disabled; })[0];
    /* The special tokens' buttons beside the time control (start, end, padding): pin (or unpin) their map, so time,
     * levels, layers and the mask apply to it like to any word. */
    specialBtns.forEach(function (b) { b.addEventListener("click", function () { pin(entryOf(b)); }); });
    tokens.forEach(function (t) { t.tabIndex = t === firstEnabled ? 0 : -1; });

    function setMask(on) {
      state.mask = on;
      maskBtn.setAttribute("aria-pressed", on ? "true" : "false");
      draw();
    }

    opacity.addEventListener("input", draw);
    tauInput.addEventListener("input", function () {
      state.tau = tauInput.value / 100;
      tauOut.textContent = state.tau.toFixed(2);
      if (!state.mask) setMask(true); else draw();
    });
    maskBtn.addEventListener("click", function () { setMask(!state.mask); });

    function setBin(b, fromSlider, fromBus) {
      state.bin = A.clamp(b, 0, bins);
      if (!fromSlider) binInput.value = String(state.bin);
      binInput.setAttribute("aria-valuetext", binLabel(state.bin));
      if (state.bin < bins && (state.level !== 0 || state.layer >= 0)) setLevel(0, true);
      draw();
      if (!fromBus) publish();
    }
    binInput.addEventListener("input", function () { stop(); setBin(parseInt(binInput.value, 10), true); });

    /* The shown bin's first step goes to the bus, unless the bus's step already lies in that bin (moving
     * within a bin must not snap the trajectory back to the bin's start). Empty bins publish nothing. */
    function publish() {
      if (!group || state.bin >= bins) return;
      var now = A.getStep(group);
      if (now !== undefined && stepBin[A.clamp(now, 0, stepBin.length - 1)] === state.bin) return;
      var first = stepBin.indexOf(state.bin);
      if (first >= 0) A.setStep(group, first, "daam");
    }

    /* Follow the bus while a time bin is shown; a step from elsewhere also ends our own playback. */
    function follow(step, source) {
      if (source === "daam" || state.bin >= bins || !stepBin.length) return;
      var b = stepBin[A.clamp(step, 0, stepBin.length - 1)];
      if (b < 0) return;
      stop();
      if (b !== state.bin) setBin(b, false, true);
    }

    function allSteps() {
      stop();
      state.bin = bins;
      binInput.value = String(bins);
      binInput.setAttribute("aria-valuetext", binLabel(bins));
    }

    function setLevel(level, quiet) {
      state.level = level;
      levelBtns.forEach(function (b) { b.setAttribute("aria-pressed", parseInt(b.dataset.level, 10) === level ? "true" : "false"); });
      if (state.layer >= 0) setLayer(-1, true);
      if (level !== 0 && state.bin < bins) allSteps();
      if (!quiet) draw();
    }

    /* One layer (-1: none, the level buttons decide) and one of its heads (-1: all of them). Both exist over all
     * steps only, so choosing one leaves a time bin for "all steps", and a time bin clears them. */
    function setLayer(layer, quiet) {
      state.layer = layer;
      state.head = -1;
      if (layerInput) layerInput.value = String(layer);
      if (headInput) {
        var count = layer >= 0 && fig.querySelector("[data-role=by-head]") ? layerHeads[layer] || 0 : 0;
        var options = ['<option value="-1">all</option>'];
        for (var h = 0; h < count; h++) options.push('<option value="' + h + '">' + (h + 1) + ' of ' + count + '</option>');
        headInput.innerHTML = options.join("");
        headInput.disabled = count === 0;
      }
      if (layer >= 0) {
        levelBtns.forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
        if (state.bin < bins) allSteps();
      } else {
        levelBtns.forEach(function (b) { b.setAttribute("aria-pressed", parseInt(b.dataset.level, 10) === state.level ? "true" : "false"); });
      }
      if (!quiet) draw();
    }
    if (layerInput) layerInput.addEventListener("change", function () { state.level = 0; setLayer(parseInt(layerInput.value, 10)); });
    if (headInput) headInput.addEventListener("change", function () { state.head = parseInt(headInput.value, 10); draw(); });
    levelBtns.forEach(function (b) { b.addEventListener("click", function () { setLevel(parseInt(b.dataset.level, 10)); }); });

    function stop() {
      clearInterval(timer);
      timer = 0;
      playBtn.setAttribute("aria-pressed", "false");
    }
    function play() {
      if (state.shown === null) pin(entryOf(firstEnabled));
      playBtn.setAttribute("aria-pressed", "true");
      setBin(0);
      timer = setInterval(function () {
        if (!fig.isConnected) { stop(); return; }
        if (state.bin >= bins - 1) { stop(); setBin(bins); return; }
        setBin(state.bin + 1);
      }, FRAME_MS);
    }
    playBtn.addEventListener("click", function () { if (timer) stop(); else play(); });

    binInput.setAttribute("aria-valuetext", binLabel(state.bin));
    if (group) A.onStep(group, follow);
    draw();
  }

  A.widget("daam", mount);
})();
