/* diffusion-atlas guidance view: shows what guidance did in the trajectory the reader is looking at.
 *
 * Markup (generator/render/templates/sections/guidance.html.j2): <figure data-atlas="guidance"
 * data-sources='[{key, side, seed, guidance, what, decomposed, scale, sheets: {role: url}, rms: {role: series}}]'
 * data-source="main" data-variants-key="variants-<id>"> with
 *   buttons [data-side=a|b]                 the prompt pair's two prompts (B: the pair's second trajectory)
 *   buttons [data-guidance] / [data-seed]   the guidance x seed variants of prompt A
 *   .atlas-sprite[data-role=<sheet>]        the eight panes; their data-src is swapped (follow.js draws the step)
 *   [data-role=rms-<sheet>]                 per-step sizes (data-step-values, shown by follow.js)
 *   [data-role=guide-parts]                 hidden when the shown trajectory has nothing to take apart (0 or 1)
 *   [data-guide-source=<key>]               per trajectory: its RMS chart or its note; only the shown one visible
 *   [data-role=guide-what], [data-role=guide-scale]
 * Follows the variants widget: its "atlas:variant" event {group, seed, guidance} shows that variant here, and a
 * variant chosen here is announced with the same event (the variants widget and the map follow it). The prompt's
 * own seed and guidance is the source "main". On a page without the variants widget (an embed) the choice is read
 * from the variants widget's hash key.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function mount(fig) {
    var sources = JSON.parse(fig.dataset.sources || "[]");
    if (sources.length < 2) return;
    var main = sources[0];
    var state = { side: "a", seed: main.seed, guidance: main.guidance };

    function current() {
      if (state.side === "b") return sources.find(function (s) { return s.side === "b"; }) || main;
      if (state.seed === main.seed && state.guidance === main.guidance) return main;
      return sources.find(function (s) {
        return s.side === "a" && s.seed === state.seed && s.guidance === state.guidance;
      }) || { key: "s" + state.seed + "-g" + state.guidance, side: "a", seed: state.seed, guidance: state.guidance,
              decomposed: false, missing: true };
    }

    function press(selector, attribute, value) {
      fig.querySelectorAll(selector).forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.dataset[attribute] === String(value)));
      });
    }

    function show() {
      var source = current();
      fig.dataset.source = source.key;
      press("button[data-side]", "side", state.side);
      fig.querySelectorAll("button[data-guidance]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.guidance) === source.guidance));
      });
      press("button[data-seed]", "seed", source.seed);
      var parts = fig.querySelector("[data-role=guide-parts]");
      if (parts) parts.hidden = !source.decomposed;
      fig.querySelectorAll("[data-guide-source]").forEach(function (el) { el.hidden = el.dataset.guideSource !== source.key; });
      var what = fig.querySelector("[data-role=guide-what]");
      if (what && source.what) what.textContent = source.what;
      if (source.decomposed) {
        var scale = fig.querySelector("[data-role=guide-scale]");
        if (scale) scale.textContent = String(source.scale);
        fig.querySelectorAll(".atlas-sprite[data-role]").forEach(function (el) {
          var url = source.sheets[el.dataset.role];
          if (!url) return;
          if (el.dataset.src !== url) {
            el.dataset.src = url;
            delete el.dataset.atlasSheet; // drawSprite sets the new sheet on its next draw
          }
          // its text alternative names the trajectory; follow.js puts the shown step back in
          var label = el.getAttribute("aria-label") || "";
          var of = label.lastIndexOf(" of “");
          var base = of >= 0 ? label.slice(0, of) : label.replace(/ at step \d+ of \d+$/, "");
          el.setAttribute("aria-label", base + " of " + source.what + " at the current step");
        });
        Object.keys(source.rms || {}).forEach(function (role) {
          var el = fig.querySelector("[data-role=rms-" + role + "]");
          if (el) el.dataset.stepValues = source.rms[role];
        });
      }
      fig.dispatchEvent(new CustomEvent("atlas:redraw"));
    }

    function announce() {
      document.dispatchEvent(new CustomEvent("atlas:variant", {
        detail: { group: fig.dataset.followGroup, seed: state.seed, guidance: state.guidance, from: "guidance" }
      }));
    }

    fig.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-side], button[data-guidance], button[data-seed]");
      if (!b || !fig.contains(b)) return;
      if (b.dataset.side !== undefined) {
        state.side = b.dataset.side;
        show();
        return;
      }
      state.side = "a"; // the variants are of prompt A
      if (b.dataset.guidance !== undefined) state.guidance = Number(b.dataset.guidance);
      else state.seed = Number(b.dataset.seed);
      show();
      announce();
    });

    document.addEventListener("atlas:variant", function (e) {
      var d = e.detail || {};
      if (d.from === "guidance" || d.group !== fig.dataset.followGroup) return;
      if (state.side === "a" && state.seed === d.seed && state.guidance === d.guidance) return;
      state = { side: "a", seed: d.seed, guidance: d.guidance };
      show();
    });

    // start from the variants widget's choice (whichever script mounted first), or its permalink
    var variants = document.querySelector("[data-atlas=variants][data-follow-group='" + fig.dataset.followGroup + "']");
    var linked = /^s(\d+)-g([0-9.]+)$/.exec(A.hashGet(fig.dataset.variantsKey || "") || "");
    if (variants) state = { side: "a", seed: Number(variants.dataset.seed), guidance: Number(variants.dataset.guidance) };
    else if (linked) state = { side: "a", seed: Number(linked[1]), guidance: Number(linked[2]) };
    show();
  }

  A.widget("guidance", mount);
})();
