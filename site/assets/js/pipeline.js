/* diffusion-atlas pipeline overview: three levels of detail, blocks that open this prompt's live data.
 *
 * Markup (generator/render/templates/sections/pipeline.html.j2): <figure data-atlas="pipeline" data-level
 * data-timesteps data-alpha-bars> with level buttons [data-level], SVG blocks [data-block] (role=button,
 * tabindex=0) and panels [data-panel="<block ids>"]. Sprites in panels follow the step (follow.js); this
 * module fills in t and alpha-bar of the current step.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function mount(fig) {
    var timesteps = (fig.dataset.timesteps || "").split(",");
    var alphaBars = (fig.dataset.alphaBars || "").split(",");
    var steps = parseInt(fig.dataset.steps, 10);
    var hint = fig.querySelector("[data-role=hint]");
    var open = null;

    function setLevel(level) {
      fig.dataset.level = String(level);
      fig.querySelectorAll("button[data-level]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.dataset.level === String(level)));
      });
      if (open) choose(open, true); // re-mark the block in the diagram now shown
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
