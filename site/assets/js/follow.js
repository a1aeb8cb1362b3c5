/* diffusion-atlas "follow" behaviour: widgets that show something per denoising step of a trajectory
 * (jump rows, prompt pair, variants, pipeline overview) follow the trajectory's step group.
 *
 * Markup: a container [data-follow-group="traj-<id>"] with data-steps="N" (last step index), holding
 *   .atlas-sprite[data-follow=step]      drawn at frame = step, or data-frame-map[step] ("0,0,1,...")
 *   [data-column=k] + container's data-column-map ("0,0,1,..." step -> column): the matching column
 *                                        gets class atlas-current and aria-current="step"
 *   [data-set-step=s]                    click / Enter / Space publishes step s to the group; with
 *                                        data-hover also a mouse hover
 *   input[type=range][data-follow=range] a native slider (keys, touch) bound to the step
 *   [data-step-text]                     shows "step i / N" (data-step-text="final" adds "· final image")
 *   [data-step-values="v0|v1|..."]       shows the value of the current step (e.g. how far apart a pair is)
 * A sprite's text alternative that names its step ("... at step 0 of 25 ...") is kept on the shown step.
 * A container "atlas:redraw" event redraws its sprites (after a widget swapped a sprite's data-src).
 * Widgets on a page without the trajectory (embed pages) start the group from the URL hash or 0.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function numbers(text) {
    return (text || "").split(",").filter(function (s) { return s !== ""; }).map(Number);
  }

  function draw(el, step, last) {
    var map = el.dataset.frameMap ? numbers(el.dataset.frameMap) : null;
    var spec = A.sprite(el);
    var frame = map ? map[A.clamp(step, 0, map.length - 1)] : step;
    A.drawSprite(el, spec, frame);
    A.labelStep(el, step, last); // the group's step: what the reader scrubbed to
  }

  function mount(box) {
    if (box.dataset.followMounted) return;
    box.dataset.followMounted = "1";
    var group = box.dataset.followGroup;
    var last = parseInt(box.dataset.steps, 10);
    var columnMap = box.dataset.columnMap ? numbers(box.dataset.columnMap) : null;
    var current = 0;

    function render(step) {
      current = A.clamp(step, 0, isFinite(last) ? last : step);
      box.querySelectorAll(".atlas-sprite[data-follow=step]").forEach(function (el) { draw(el, current, last); });
      if (columnMap) {
        var column = String(columnMap[A.clamp(current, 0, columnMap.length - 1)]);
        box.querySelectorAll("[data-column]").forEach(function (el) {
          var on = el.dataset.column === column;
          el.classList.toggle("atlas-current", on);
          if (on) el.setAttribute("aria-current", "step"); else el.removeAttribute("aria-current");
        });
      }
      box.querySelectorAll("input[data-follow=range]").forEach(function (el) {
        if (String(el.value) !== String(current)) el.value = String(current);
        el.setAttribute("aria-valuetext", "step " + current + " of " + last);
      });
      box.querySelectorAll("[data-step-text]").forEach(function (el) {
        el.textContent = "step " + current + " / " + last + (current >= last ? " · final image" : "");
      });
      box.querySelectorAll("[data-step-values]").forEach(function (el) {
        var values = el.dataset.stepValues.split("|");
        el.textContent = values[A.clamp(current, 0, values.length - 1)];
      });
      box.dataset.step = String(current);
    }

    function activate(target) {
      var s = parseInt(target.dataset.setStep, 10);
      if (isFinite(s)) A.setStep(group, s, "follow");
    }
    box.addEventListener("click", function (e) {
      var target = e.target.closest("[data-set-step]");
      if (target && box.contains(target)) activate(target);
    });
    box.addEventListener("keydown", function (e) {
      var target = e.target.closest("[data-set-step]");
      if (!target || !box.contains(target) || target.tagName === "BUTTON") return;
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(target); }
    });
    box.addEventListener("pointerover", function (e) {
      var target = e.target.closest("[data-set-step][data-hover]");
      if (target && box.contains(target) && e.pointerType === "mouse") activate(target);
    });
    box.addEventListener("input", function (e) {
      if (e.target.matches && e.target.matches("input[data-follow=range]")) A.setStep(group, parseInt(e.target.value, 10), "follow");
    });
    box.addEventListener("atlas:redraw", function () { render(current); });

    A.onStep(group, function (step) { render(step); });
    if (A.getStep(group) === undefined) {
      var fromHash = parseInt(A.hashGet(group), 10);
      A.setStep(group, isFinite(fromHash) ? A.clamp(fromHash, 0, last) : 0, "hash");
    }
    if (A.getStep(group) === undefined) render(0);
  }

  A.ready(function (root) {
    root.querySelectorAll("[data-follow-group]").forEach(mount);
  });
})();
