/* diffusion-atlas pipeline overview: three levels of detail, blocks that open this prompt's live data.
 *
 * Markup (generator/render/templates/sections/pipeline.html.j2): <figure data-atlas="pipeline" data-level
 * data-timesteps data-alpha-bars> with level buttons [data-level], SVG blocks [data-block] (role=button,
 * tabindex=0) and panels [data-panel="<block ids>"]. Sprites in panels follow the step (follow.js); this
 * module fills in t and alpha-bar of the current step.
 *
 * Changing the level of detail is animated (as Diffusion Explainer's transitions are): from the overview to the
 * components, each block grows out of the block it details ("Text representation" splits into tokenizer and
 * text encoder, "Image refiner" into the loop's blocks) and the arrows fade in; back, the parts merge into it;
 * the math lines fade in. Nothing moves when the reader prefers reduced motion (prefers-reduced-motion: reduce).
 */
(function () {
  "use strict";
  var A = window.Atlas;
  var MOTION_MS = 450;
  var EASING = "cubic-bezier(.2, .7, .2, 1)";
  // which overview block each component details (the blocks both levels share are their own parents)
  var PARENT = { tokenizer: "text", encoder: "text", noise: "loop", denoiser: "loop", guidance: "loop",
                 scheduler: "loop", decoder: "loop" };

  function reducedMotion() {
    return !window.matchMedia || window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  function blockRects(svg) {
    var rects = {};
    if (!svg) return rects;
    svg.querySelectorAll("[data-block]").forEach(function (b) {
      var r = b.getBoundingClientRect();
      if (r.width || r.height) rects[b.dataset.block] = r;
    });
    return rects;
  }

  function union(rects) {
    if (!rects.length) return null;
    var left = Math.min.apply(null, rects.map(function (r) { return r.left; }));
    var top = Math.min.apply(null, rects.map(function (r) { return r.top; }));
    var right = Math.max.apply(null, rects.map(function (r) { return r.right; }));
    var bottom = Math.max.apply(null, rects.map(function (r) { return r.bottom; }));
    return { left: left, top: top, width: right - left, height: bottom - top };
  }

  /* Where block ``id`` of the new level comes from on the screen: the same block, the block it details, or
   * the blocks that detail it, merged. */
  function source(id, before) {
    if (before[id]) return before[id];
    if (before[PARENT[id]]) return before[PARENT[id]];
    return union(Object.keys(before).filter(function (k) { return PARENT[k] === id; })
      .map(function (k) { return before[k]; }));
  }

  /* Every block of ``svg`` moves from where ``before`` had it (screen rectangles) to its own place (FLIP);
   * arrows and labels fade in after. Transforms are in the SVG's user units (transform-box: view-box). */
  function morph(svg, before) {
    var m = svg.getScreenCTM();
    if (!m || !m.a || !m.d) return;
    function user(r) {
      return { x: (r.left - m.e) / m.a, y: (r.top - m.f) / m.d, w: r.width / m.a, h: r.height / m.d };
    }
    svg.querySelectorAll("[data-block]").forEach(function (b) {
      var from = source(b.dataset.block, before), to = b.getBoundingClientRect();
      if (!from || !to.width || !to.height) {
        b.animate([{ opacity: 0 }, { opacity: 1 }], { duration: MOTION_MS, easing: EASING });
        return;
      }
      var f = user(from), t = user(to);
      var start = "translate(" + f.x + "px, " + f.y + "px) scale(" + f.w / t.w + ", " + f.h / t.h + ") " +
                  "translate(" + -t.x + "px, " + -t.y + "px)";
      b.animate([{ transform: start }, { transform: "translate(0px, 0px) scale(1, 1) translate(0px, 0px)" }],
                { duration: MOTION_MS, easing: EASING });
    });
    svg.querySelectorAll(".atlas-flow-arrow, .atlas-flow-loop, svg > text").forEach(function (el) {
      el.animate([{ opacity: 0 }, { opacity: 1 }],
                 { duration: MOTION_MS * 0.6, delay: MOTION_MS * 0.5, easing: "ease-out", fill: "backwards" });
    });
  }

  function fadeIn(elements) {
    elements.forEach(function (el) {
      if (el.offsetParent === null) return; // not shown
      el.animate([{ opacity: 0, transform: "translateY(-0.3em)" }, { opacity: 1, transform: "none" }],
                 { duration: MOTION_MS * 0.7, easing: EASING });
    });
  }

  function mount(fig) {
    var timesteps = (fig.dataset.timesteps || "").split(",");
    var alphaBars = (fig.dataset.alphaBars || "").split(",");
    var steps = parseInt(fig.dataset.steps, 10);
    var hint = fig.querySelector("[data-role=hint]");
    var open = null;

    function diagram(level) { return fig.querySelector(level === "1" ? ".atlas-flow-l1" : ".atlas-flow-l2"); }

    function setLevel(level) {
      var from = fig.dataset.level;
      level = String(level);
      var before = blockRects(diagram(from));
      fig.dataset.level = level;
      fig.querySelectorAll("button[data-level]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.dataset.level === level));
      });
      if (open) choose(open, true); // re-mark the block in the diagram now shown
      if (from === level || reducedMotion() || typeof Element.prototype.animate !== "function") return;
      if (diagram(from) !== diagram(level)) morph(diagram(level), before);
      if (level === "3") fadeIn(fig.querySelectorAll("[data-level-min='3']"));
    }

    function choose(id, keep) {
      if (open === id && !keep) id = null; // a second activation closes it
      open = id;
      fig.querySelectorAll("[data-block]").forEach(function (b) {
        var on = b.dataset.block === id;
        b.classList.toggle("atlas-current", on);
        b.setAttribute("aria-expanded", String(on));
      });
      var any = false;
      fig.querySelectorAll("[data-panel]").forEach(function (panel) {
        var on = id !== null && panel.dataset.panel.split(" ").indexOf(id) >= 0;
        panel.hidden = !on;
        any = any || on;
      });
      if (hint) hint.hidden = any;
      fig.dispatchEvent(new CustomEvent("atlas:redraw"));
    }

    fig.addEventListener("click", function (e) {
      var level = e.target.closest("button[data-level]");
      if (level && fig.contains(level)) { setLevel(level.dataset.level); return; }
      var block = e.target.closest("[data-block]");
      if (block && fig.contains(block)) choose(block.dataset.block);
    });
    fig.addEventListener("keydown", function (e) {
      var block = e.target.closest && e.target.closest("[data-block]");
      if (!block || !fig.contains(block)) return;
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(block.dataset.block); }
    });

    A.onStep(fig.dataset.followGroup, function (step) {
      var i = A.clamp(step, 0, steps);
      var final = i >= steps;
      fig.querySelectorAll("[data-role=flow-step]").forEach(function (el) {
        el.textContent = final ? "the end" : "step " + i + " / " + steps;
      });
      fig.querySelectorAll("[data-role=flow-t]").forEach(function (el) {
        el.textContent = final ? "0 (done)" : (timesteps[i] || "?");
      });
      fig.querySelectorAll("[data-role=flow-alpha]").forEach(function (el) {
        el.textContent = final ? "1" : (alphaBars[i] || "?");
      });
    });
  }

  A.widget("pipeline", mount);
})();
