/* diffusion-atlas variants widget: choose a guidance scale and a seed; the x_t / predicted-x0 strips and
 * the final image swap in place (no reload), and the step stays where it was (follow.js draws it).
 *
 * Markup (generator/render/templates/sections/variants.html.j2): <figure data-atlas="variants"
 * data-variants='[{seed, guidance, noisy, predicted, final, alt}, ...]' data-seed data-guidance> with buttons
 * [data-guidance] / [data-seed] (aria-pressed) and sprites [data-role=noisy|predicted], img [data-role=final].
 * When the judge scored the variants, each one's verdict line is rendered in [data-variant=<index in
 * data-variants>]; only the shown variant's is visible (the wording stays in one Jinja macro, verdict.html.j2).
 * The choice is kept in the URL hash (#variants-<id>=s<seed>-g<guidance>). Announces it as a document event
 * "atlas:variant" {group, seed, guidance} (the trajectory map highlights that path, the guidance view shows its
 * parts); a variant chosen in the guidance view (the same event with from "guidance") is shown here too.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function mount(fig) {
    var items = JSON.parse(fig.dataset.variants || "[]");
    var state = { seed: Number(fig.dataset.seed), guidance: Number(fig.dataset.guidance) };

    function choose(seed, guidance) {
      var item = items.find(function (v) { return v.seed === seed && v.guidance === guidance; });
      if (!item) return;
      state = { seed: seed, guidance: guidance };
      fig.dataset.seed = String(seed);
      fig.dataset.guidance = String(guidance);
      ["noisy", "predicted"].forEach(function (role) {
        var el = fig.querySelector(".atlas-sprite[data-role=" + role + "]");
        if (!el || el.dataset.src === item[role]) return;
        el.dataset.src = item[role];
        delete el.dataset.atlasSheet; // drawSprite sets the new sheet on its next draw
      });
      var img = fig.querySelector("img[data-role=final]");
      if (img) {
        img.src = item.final;
        if (item.alt) img.alt = item.alt; // what it shows and what the judge found in it
      }
      fig.querySelectorAll("button[data-guidance]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.guidance) === guidance));
      });
      fig.querySelectorAll("button[data-seed]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.seed) === seed));
      });
      var shown = String(items.indexOf(item)); // the verdict line of the shown variant (rendered per variant)
      fig.querySelectorAll("[data-variant]").forEach(function (line) { line.hidden = line.dataset.variant !== shown; });
      var label = fig.querySelector("[data-role=variant-label]");
      if (label) label.textContent = "seed " + seed + ", guidance " + guidance;
      fig.dispatchEvent(new CustomEvent("atlas:redraw"));
      document.dispatchEvent(new CustomEvent("atlas:variant", {
        detail: { group: fig.dataset.followGroup, seed: seed, guidance: guidance }
      }));
    }

    var own = { seed: state.seed, guidance: state.guidance };
    var hashKey = fig.id; // permalink: #variants-<id>=s1-g7.5
    function pick(seed, guidance) {
      choose(seed, guidance);
      var isOwn = state.seed === own.seed && state.guidance === own.guidance;
      A.hashSet(hashKey, isOwn ? null : "s" + state.seed + "-g" + state.guidance);
    }

    fig.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-guidance], button[data-seed]");
      if (!b || !fig.contains(b)) return;
      if (b.dataset.guidance !== undefined) pick(state.seed, Number(b.dataset.guidance));
      else pick(Number(b.dataset.seed), state.guidance);
    });

    // a variant chosen in another widget of this trajectory (the guidance view) is shown here too
    document.addEventListener("atlas:variant", function (e) {
      var d = e.detail || {};
      if (d.from !== "guidance" || d.group !== fig.dataset.followGroup) return;
      if (d.seed !== state.seed || d.guidance !== state.guidance) pick(d.seed, d.guidance);
    });

    var linked = /^s(\d+)-g([0-9.]+)$/.exec(A.hashGet(hashKey) || "");
    if (linked) choose(Number(linked[1]), Number(linked[2]));
  }

  A.widget("variants", mount);
})();
