/* diffusion-atlas core: shared state and helpers for every widget (no dependencies, no requests).
 *
 * window.Atlas
 *   ready(fn)                    run fn(document) on every page: through Material's document$
 *                                (survives instant navigation) or, on plain pages (embeds), on
 *                                DOMContentLoaded.
 *   widget(kind, mount)          mount(fig) once for each <figure data-atlas="kind"> of every page
 *                                (marks it data-atlas-mounted: a page seen again is not mounted twice).
 *   pinnable(stage, button, update) -> hover
 *                                a stage that shows its other state while a mouse hovers it and a toggle
 *                                button (aria-pressed) that pins it; a tap or Enter/Space on the stage
 *                                presses the button. update(pinned, hovering) redraws after every change
 *                                (and at once); hover(on) lets the widget add its own hover-like events.
 *   onStep(group, fn) -> off     subscribe to a step group; fn(step, source) is called at once
 *                                with the current step (source "init") if the group has one.
 *   setStep(group, step, source) publish a step to every subscriber of the group.
 *   getStep(group)               current step or undefined.
 *   sprite(el)                   read a sprite spec from an element's data-* attributes.
 *   drawSprite(el, spec, i)      show frame i of a sprite sheet in el (background offsets). The sheet itself
 *                                loads when el's widget (its <figure>) comes within a screen of the viewport
 *                                or is first shown, as does every .atlas-sprite of a page (thumbnails too);
 *                                the offsets are set at once: the frame a reader scrolls to is the one drawn.
 *   whenNear(el, fn)             fn() once el's widget comes within a screen of the viewport or is shown (the
 *                                rule sprite sheets load by; for widgets that fetch their own files).
 *   labelStep(el, step, last)    keep el's text alternative on the shown step: "... at step 3 of 25 ..."
 *                                ("the current step" becomes "step K of N" when last is given; an aria-label
 *                                with neither is left as it is).
 *   hashGet(key) / hashSet(key, value)   permalink state in the URL hash: #k1=v1&k2=v2.
 *   clamp(v, lo, hi)
 *
 * Group ids: "traj-<prompt id>" is the denoising step of a prompt's trajectory (0..steps). Later
 * widgets (attention maps over time, jump previews, prompt pairs) join the same group to follow
 * the same step; the trajectory widget mirrors the group into the URL hash.
 */
(function () {
  "use strict";
  if (window.Atlas) return;

  var groups = new Map(); // group -> {step, listeners: Set}

  function group(name) {
    var g = groups.get(name);
    if (!g) {
      g = { step: undefined, listeners: new Set() };
      groups.set(name, g);
    }
    return g;
  }

  function onStep(name, fn) {
    var g = group(name);
    g.listeners.add(fn);
    if (g.step !== undefined) fn(g.step, "init");
    return function off() { g.listeners.delete(fn); };
  }

  function setStep(name, step, source) {
    var g = group(name);
    step = Math.round(Number(step));
    if (!isFinite(step) || step === g.step) return;
    g.step = step;
    g.listeners.forEach(function (fn) {
      try { fn(step, source); } catch (err) { console.error(err); } // eslint-disable-line no-console
    });
  }

  function getStep(name) {
    var g = groups.get(name);
    return g ? g.step : undefined;
  }

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  function num(el, key, fallback) {
    var v = parseInt(el.dataset[key], 10);
    return isFinite(v) ? v : fallback;
  }

  function sprite(el) {
    var columns = num(el, "columns", 1);
    var count = num(el, "count", 1);
    return {
      src: el.dataset.src,
      frameWidth: num(el, "frameWidth", 1),
      frameHeight: num(el, "frameHeight", 1),
      columns: columns,
      count: count,
      sheetColumns: num(el, "sheetColumns", columns),
      sheetRows: num(el, "sheetRows", Math.ceil(count / columns))
    };
  }

  /* Percent offsets scale with the element, so the frame fills it at any size: with a sheet
   * sheetColumns times as wide as the element, position p% puts column p/100*(sheetColumns-1)
   * at the left edge. */
  function drawSprite(el, spec, i) {
    i = clamp(Math.round(i), 0, spec.count - 1);
    var col = i % spec.columns, row = Math.floor(i / spec.columns);
    var x = spec.sheetColumns > 1 ? (col / (spec.sheetColumns - 1)) * 100 : 0;
    var y = spec.sheetRows > 1 ? (row / (spec.sheetRows - 1)) * 100 : 0;
    if (!el.dataset.atlasSheet) {
      el.style.backgroundImage = "url(\"" + spec.src + "\")";
      el.style.backgroundSize = spec.sheetColumns * 100 + "% " + spec.sheetRows * 100 + "%";
      el.dataset.atlasSheet = "1";
      loadSheetWhenNear(el);
    }
    el.style.backgroundPosition = round(x) + "% " + round(y) + "%";
    el.dataset.frame = String(i);
  }

  function round(v) { return Math.round(v * 1000) / 1000; }

  /* Lazy sheets (issue 20: a prompt page loads at most 1 MB before the reader scrolls). A prompt page holds a
   * dozen widgets, most far below the fold. The templates keep each sheet in the sprite's inline style (frame 0
   * without JavaScript); atlas.css hides every sheet while scripting is on, until this marks the sprite
   * data-sheet-near: when its widget (the closest <figure>, so a state shown on hover is there when asked for)
   * comes within a screen of the viewport or is first shown. Without IntersectionObserver: at once. */
  var SHEET_MARGIN = "100% 0px 100% 0px"; // a screen above and below: loaded before it scrolls in
  var nearWidgets = new WeakSet(); // widgets that came near once: what waits for them runs at once
  var waiting = new WeakMap(); // widget -> functions waiting for it to come near
  var nearObserver = null;

  function observer() {
    if (!nearObserver && typeof window.IntersectionObserver === "function") {
      nearObserver = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) { if (entry.isIntersecting) widgetNear(entry.target); });
      }, { rootMargin: SHEET_MARGIN });
    }
    return nearObserver;
  }

  function widgetNear(box) {
    nearObserver.unobserve(box);
    nearWidgets.add(box);
    var fns = waiting.get(box) || [];
    waiting.delete(box);
    fns.forEach(function (fn) {
      try { fn(); } catch (err) { console.error(err); } // eslint-disable-line no-console
    });
  }

  /* fn() once el's widget (its closest <figure>) is within a screen of the viewport or first shown; at once
   * if it was already, if el is not in the page, or without IntersectionObserver. For widgets that fetch
   * their own files (DAAM's map sheets, charts' data): the same rule as sprite sheets. */
  function whenNear(el, fn) {
    var box = el.isConnected ? el.closest("figure") || el : null;
    var io = box && observer();
    if (!io || nearWidgets.has(box)) { fn(); return; }
    var fns = waiting.get(box);
    if (!fns) {
      fns = [];
      waiting.set(box, fns);
      io.observe(box);
    }
    fns.push(fn);
  }

  function loadSheetWhenNear(el, retried) {
    if (el.dataset.sheetNear || el.dataset.sheetWaits) return;
    if (!el.isConnected && !retried) {
      // a sprite drawn before it is inserted (trajectory strip cells): find its widget once it is in the page
      Promise.resolve().then(function () { loadSheetWhenNear(el, true); });
      return;
    }
    el.dataset.sheetWaits = "1";
    whenNear(el, function () { el.dataset.sheetNear = "1"; delete el.dataset.sheetWaits; });
  }

  var STEP_OF = /\bstep \d+ of (\d+)/g;
  function labelStep(el, step, last) {
    var label = el.getAttribute("aria-label") || "";
    if (last !== undefined && isFinite(last) && label.indexOf("the current step") >= 0) {
      label = label.replace("the current step", "step 0 of " + last); // then kept on the shown step below
    }
    var found = null, match;
    STEP_OF.lastIndex = 0;
    while ((match = STEP_OF.exec(label))) found = match; // the last one: a prompt's own words come first
    if (!found) return;
    var last = Number(found[1]);
    var words = "step " + clamp(Math.round(step), 0, last) + " of " + last;
    el.setAttribute("aria-label", label.slice(0, found.index) + words + label.slice(found.index + found[0].length));
  }

  function hashParams() {
    var out = new Map();
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq > 0) out.set(decodeURIComponent(part.slice(0, eq)), decodeURIComponent(part.slice(eq + 1)));
    });
    return out;
  }

  function hashGet(key) { return hashParams().get(key); }

  var pendingHash = null, hashTimer = 0;
  /* Debounced (scrubbing fires many steps a second; browsers throttle replaceState) and via
   * replaceState, so scrubbing does not flood the back button. */
  function hashSet(key, value) {
    pendingHash = pendingHash || new Map();
    pendingHash.set(key, value);
    clearTimeout(hashTimer);
    hashTimer = setTimeout(flushHash, 200);
  }

  function flushHash() {
    if (!pendingHash) return;
    var params = hashParams();
    pendingHash.forEach(function (v, k) {
      if (v === null || v === undefined) params.delete(k); else params.set(k, String(v));
    });
    pendingHash = null;
    var parts = [];
    params.forEach(function (v, k) { parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(v)); });
    var url = location.pathname + location.search + (parts.length ? "#" + parts.join("&") : "");
    try { history.replaceState(history.state, "", url); } catch (err) { /* sandboxed iframes */ }
  }

  var readyFns = [];
  function ready(fn) {
    readyFns.push(fn);
    if (window.document$ && typeof window.document$.subscribe === "function") {
      window.document$.subscribe(function () { fn(document); });
    } else if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", function () { fn(document); });
    } else {
      fn(document);
    }
  }

  function widget(kind, mount) {
    ready(function (root) {
      Array.prototype.forEach.call(root.querySelectorAll("[data-atlas=" + kind + "]"), function (fig) {
        if (fig.dataset.atlasMounted) return;
        fig.dataset.atlasMounted = "1";
        mount(fig);
      });
    });
  }

  function pinnable(stage, button, update) {
    var hovering = false;
    function pinned() { return button.getAttribute("aria-pressed") === "true"; }
    function hover(on) { hovering = on; update(pinned(), hovering); }
    button.addEventListener("click", function () {
      button.setAttribute("aria-pressed", pinned() ? "false" : "true");
      update(pinned(), hovering);
    });
    stage.addEventListener("pointerenter", function (e) { if (e.pointerType === "mouse") hover(true); });
    stage.addEventListener("pointerleave", function (e) { if (e.pointerType === "mouse") hover(false); });
    stage.addEventListener("pointerup", function (e) { if (e.pointerType !== "mouse") button.click(); });
    stage.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); button.click(); }
    });
    update(pinned(), hovering);
    return hover;
  }

  /* A new page (instant navigation) starts with fresh step groups; this subscription is made
   * before any widget's, so it runs first on every page. */
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(function () {
      clearTimeout(hashTimer);
      pendingHash = null; // belonged to the previous page
      if (nearObserver) nearObserver.disconnect(); // the previous page's widgets (the new ones observe anew)
      groups.clear();
    });
  }

  /* Every sprite of a page, also those no widget draws (fixed-frame thumbnails), waits for its widget. */
  ready(function (root) {
    root.querySelectorAll(".atlas-sprite").forEach(function (el) { loadSheetWhenNear(el); });
  });

  /* Material's search is a role=dialog without a name (axe-core: aria-dialog-name); name it on every page. */
  ready(function (root) {
    root.querySelectorAll(".md-search[role=dialog]:not([aria-label])").forEach(function (el) {
      el.setAttribute("aria-label", "Search");
    });
  });

  window.Atlas = {
    version: 1,
    ready: ready,
    widget: widget,
    pinnable: pinnable,
    onStep: onStep,
    setStep: setStep,
    getStep: getStep,
    sprite: sprite,
    drawSprite: drawSprite,
    whenNear: whenNear,
    labelStep: labelStep,
    hashGet: hashGet,
    hashSet: hashSet,
    flushHash: flushHash,
    clamp: clamp
  };
})();
